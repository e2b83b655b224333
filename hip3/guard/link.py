"""The guard's own connection to the exchange.

The guard does not share the bot's socket (it would die with the bot), and it does not open
one only when the bot dies: a connection kept up while watching lets it act at once. It is a
websocket on the configured endpoint, kept open with `{"method": "ping"}` (the exchange closes
a connection it has sent nothing to for 60 s; docs/exchange/websocket.md#heartbeat) and
reopened with a doubling backoff whenever it drops. Requests are WebSocket posts
(docs/exchange/websocket.md#post-requests): info requests, whose answers are checked by
`hip3.protocol.info_answers` before anything reads them, and signed L1 actions.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from typing import Any

import websockets

from hip3.protocol import frames as F
from hip3.protocol.info_answers import BadAnswer, check_info_answer
from hip3.protocol.signing import NonceSource

log = logging.getLogger("hip3.guard")

_BACKOFF_MIN_S = 0.25
_BACKOFF_MAX_S = 10.0


class LinkError(RuntimeError):
    """A request that got no usable answer: not connected in time, no answer, or refused."""


class ExchangeLink:
    """One websocket kept open in the background; `info` and `action` post over it."""

    def __init__(
        self,
        url: str,
        *,
        signer: Any,
        mainnet: bool,
        request_timeout_s: float,
        ping_interval_s: float,
        nonces: NonceSource | None = None,
    ) -> None:
        self.url = url
        self._signer = signer
        self._mainnet = mainnet
        self._timeout_s = request_timeout_s
        self._ping_interval_s = ping_interval_s
        self._nonces = nonces or NonceSource()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[F.PostFrame]] = {}
        self._ws: Any = None
        self._up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connects = 0
        self.last_error: str | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="guard-link")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_pending("the guard closed its connection")

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    async def wait_connected(self, timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                await self._up.wait()
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        backoff = _BACKOFF_MIN_S
        while True:
            opened = False
            try:
                async with websockets.connect(
                    self.url, ping_interval=None, open_timeout=self._timeout_s, max_size=2**24
                ) as ws:
                    self._ws = ws
                    opened = True
                    self.connects += 1
                    self._up.set()
                    if self.connects > 1:
                        log.info("guard: reconnected to %s", self.url)
                    backoff = _BACKOFF_MIN_S
                    pinger = asyncio.get_running_loop().create_task(self._ping(ws))
                    try:
                        async for raw in ws:
                            self._deliver(raw)
                    finally:
                        pinger.cancel()
                    self.last_error = "the exchange closed the connection"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of the socket: reopen after the backoff
                self.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                self._up.clear()
                self._ws = None
                self._fail_pending(f"connection lost ({self.last_error})")
            log.warning(
                "guard: connection to %s %s (%s); retrying in %.2g s",
                self.url,
                "lost" if opened else "failed",
                self.last_error,
                backoff,
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def _ping(self, ws: Any) -> None:
        while True:
            await asyncio.sleep(self._ping_interval_s)
            await ws.send(F.encode_ping(), text=True)

    def _deliver(self, raw: Any) -> None:
        frame = F.decode_frame(raw)
        if not isinstance(frame, F.PostFrame):
            return  # pongs, the greeting, anything not an answer to a post
        future = self._pending.pop(frame.data.id, None)
        if future is not None and not future.done():
            future.set_result(frame)

    def _fail_pending(self, why: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(LinkError(why))

    async def _post(self, encode: Any, what: str) -> F.PostFrame:
        ws = self._ws if await self.wait_connected(self._timeout_s) else None
        if ws is None:
            raise LinkError(f"{what}: not connected to {self.url} ({self.last_error})")
        post_id = next(self._ids)
        future: asyncio.Future[F.PostFrame] = asyncio.get_running_loop().create_future()
        self._pending[post_id] = future
        try:
            await ws.send(encode(post_id), text=True)
            async with asyncio.timeout(self._timeout_s):
                return await future
        except TimeoutError:
            raise LinkError(f"{what}: no answer within {self._timeout_s:g} s") from None
        except (OSError, websockets.ConnectionClosed) as exc:
            raise LinkError(f"{what}: {type(exc).__name__}: {exc}") from None
        finally:
            self._pending.pop(post_id, None)

    async def info(self, payload: dict) -> Any:
        """The checked answer to one info request (plain JSON); LinkError if none came or it
        failed its checks."""
        kind = payload["type"]
        frame = await self._post(lambda i: F.encode_post_info(i, payload), kind)
        error = F.action_error(frame)
        if error is not None:
            raise LinkError(f"{kind}: refused: {error}")
        response = frame.data.response
        if not isinstance(response, F.InfoResponse):
            raise LinkError(f"{kind}: answered with a {type(response).__name__}")
        answer = check_info_answer(kind, response.payload.data)
        if isinstance(answer, BadAnswer):
            raise LinkError(answer.reason)
        return answer

    async def action(self, action: dict) -> F.PostFrame:
        """Sign `action` with a fresh nonce and post it; the answer frame (per-order statuses
        via `frames.order_statuses`). LinkError if the whole action was refused."""
        nonce = self._nonces.next()
        signature = self._signer.sign_l1(action, nonce, mainnet=self._mainnet)
        frame = await self._post(
            lambda i: F.encode_post_action(i, action=action, nonce=nonce, signature=signature),
            action["type"],
        )
        error = F.action_error(frame)
        if error is not None:
            raise LinkError(f"{action['type']}: refused: {error}")
        return frame
