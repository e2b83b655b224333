"""Discovery before the run, for whole-dex entries (`coin = "xyz:*"`): the dexes' metas,
asked once on a connection of their own, so the configuration can be expanded before the
bot subscribes. Every later epoch discovers again through its reconciliation plan, and a
live connection every `discovery.rediscover_s` (hip3/runtime/rediscovery.py)."""

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
            # every request goes out at once and the answers are matched by post id: one
            # round trip, not one per dex
            asks = {1: {"type": "perpDexs"}}
            asks.update({i: {"type": "meta", "dex": d} for i, d in enumerate(dexes, start=2)})
            for post_id, payload in asks.items():
                await ws.send(F.encode_post_info(post_id, payload), text=True)
            answers = await _answers(ws, asks)
            perp_dexs = _checked(asks[1], answers[1])
            listed = {""} | {d["name"] for d in perp_dexs[1:] if isinstance(d, dict)}
            # a dex perpDexs does not list is the caller's to refuse by name, whatever its
            # meta request got
            return {
                d: _checked(asks[i], answers[i])
                for i, d in enumerate(dexes, start=2)
                if d in listed
            }
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        raise DiscoveryUnreachable(
            f"could not discover the markets of {', '.join(dexes)} on {ws_url}: "
            f"{type(exc).__name__}: {exc}"
        ) from None


async def _answers(ws: Any, asks: dict[int, dict]) -> dict[int, Any]:
    """post id -> its answer frame, for every request in `asks` (already sent)."""
    answers: dict[int, Any] = {}
    while len(answers) < len(asks):
        frame = F.decode_frame(await ws.recv())
        if isinstance(frame, F.PostFrame) and frame.data.id in asks:
            answers[frame.data.id] = frame
    return answers


def _checked(payload: dict, frame: Any) -> Any:
    """The answer a frame carries once its schema accepts it; refused or bad: unreachable."""
    err = F.action_error(frame)
    if err is not None:
        raise DiscoveryUnreachable(f"{payload['type']} refused: {err}")
    answer = check_info_answer(payload["type"], frame.data.response.payload.data)
    if isinstance(answer, BadAnswer):
        raise DiscoveryUnreachable(answer.reason)
    return answer
