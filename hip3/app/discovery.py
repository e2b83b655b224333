"""Discovery before the run, for whole-dex entries (`coin = "xyz:*"`): the dexes' metas,
asked once on a connection of their own, so the configuration can be expanded before the
bot subscribes. Every later epoch discovers again through its reconciliation plan."""

from __future__ import annotations

import asyncio
from typing import Any

import websockets

from hip3.protocol import frames as F
from hip3.protocol.info_answers import BadAnswer, check_info_answer


class DiscoveryUnreachable(RuntimeError):
    """The exchange could not be asked (the run never became ready)."""


async def fetch_metas(ws_url: str, dexes: list[str], timeout_s: float = 10.0) -> dict[str, Any]:
    """dex -> its meta answer, for each of `dexes` that perpDexs lists ("" always is)."""
    try:
        async with (
            asyncio.timeout(timeout_s),
            websockets.connect(ws_url, ping_interval=None, max_size=None) as ws,
        ):
            perp_dexs = await _ask(ws, 1, {"type": "perpDexs"})
            listed = {""} | {d["name"] for d in perp_dexs[1:] if isinstance(d, dict)}
            wanted = [d for d in dexes if d in listed]
            metas: dict[str, Any] = {}
            for i, dex in enumerate(wanted, start=2):
                metas[dex] = await _ask(ws, i, {"type": "meta", "dex": dex})
            return metas
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        raise DiscoveryUnreachable(
            f"could not discover the markets of {', '.join(dexes)} on {ws_url}: "
            f"{type(exc).__name__}: {exc}"
        ) from None


async def _ask(ws: Any, post_id: int, payload: dict) -> Any:
    await ws.send(F.encode_post_info(post_id, payload), text=True)
    while True:
        frame = F.decode_frame(await ws.recv())
        if not isinstance(frame, F.PostFrame) or frame.data.id != post_id:
            continue
        err = F.action_error(frame)
        if err is not None:
            raise DiscoveryUnreachable(f"{payload['type']} refused: {err}")
        answer = check_info_answer(payload["type"], frame.data.response.payload.data)
        if isinstance(answer, BadAnswer):
            raise DiscoveryUnreachable(answer.reason)
        return answer
