"""The websocket: the only reader of the socket and its only writer.

The reader decodes each frame and puts it in the dispatcher's inbox — it never interprets it,
so reconnect, resubscribe and live traffic all pass through the same dispatcher (the seed's
`drain_and_wait` was a second reader that swallowed the snapshot READY waited for). The writer
drains one queue of already-encoded frames; frames queued for a connection that is gone are
dropped deliberately and their owners told (a post must never leak onto the next connection).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import websockets
from websockets.protocol import State as WsState

from hip3.events import FrameIn, SocketClosed, SocketOpened, WriteFailed

log = logging.getLogger(__name__)


class WsTransport:
    """One websocket connection at a time, each tagged with the epoch that opened it."""

    def __init__(
        self,
        url: str,
        put: Callable[[Any], None],
        decode: Callable[[bytes | str], Any],
        *,
        connect_timeout_s: float = 5.0,
        max_frame_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.url = url
        self._put = put
        self._decode = decode
        self._connect_timeout_s = connect_timeout_s
        self._max_frame_bytes = max_frame_bytes
        self._epoch = 0
        self._ws: Any = None
        self._ws_epoch = 0
        self._task: asyncio.Task | None = None
        self._writer: asyncio.Task | None = None
        self._queue: collections.deque[tuple[int, bytes | str, int | None]] = collections.deque()
        self._wake = asyncio.Event()
        self.frames_in = 0
        self.frames_out = 0

    @property
    def epoch(self) -> int:
        return self._epoch

    def open(self, epoch: int) -> None:
        """Start connecting for `epoch`; the result arrives as SocketOpened or SocketClosed."""
        self.close(self._epoch, "superseded")
        self._epoch = epoch
        self._task = asyncio.get_running_loop().create_task(
            self._run(epoch), name=f"ws-reader-{epoch}"
        )

    def close(self, epoch: int, reason: str = "closing") -> None:
        if epoch != self._epoch:
            return
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
        self._fail_queued(reason)

    def send(self, data: bytes | str, post_id: int | None = None) -> None:
        """Write one encoded frame to the current connection, now if possible.

        When nothing is queued, the frame goes straight to the socket inside this call (the
        same steps websockets' `send` takes before it waits for the buffer to drain): an order
        reaches the wire before the dispatcher does its bookkeeping. Otherwise it joins the
        queue behind the frames already waiting, so order is always kept.
        """
        ws = self._ws
        if (
            ws is not None
            and not self._queue
            and self._ws_epoch == self._epoch
            and ws.protocol.state is WsState.OPEN
            and ws.send_in_progress is None  # no fragmented message being written
        ):
            try:
                ws.protocol.send_text(data.encode() if isinstance(data, str) else data)
                ws.send_data()
                self.frames_out += 1
            except Exception as exc:
                # part of the frame may have left: never retry it, let its owner reconcile
                log.error("websocket write failed: %s", exc)
                if post_id is not None:
                    self._put(WriteFailed(self._epoch, post_id, f"write failed: {exc}"))
            return
        self._queue.append((self._epoch, data, post_id))
        self._wake.set()

    async def aclose(self) -> None:
        self.close(self._epoch, "shutdown")
        for t in (self._task, self._writer):
            if t is not None and not t.done():
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    # --- internals -----------------------------------------------------------------------

    def _fail_queued(self, reason: str) -> None:
        while self._queue:
            epoch, _data, post_id = self._queue.popleft()
            if post_id is not None:
                self._put(WriteFailed(epoch, post_id, reason))

    async def _run(self, epoch: int) -> None:
        reason = "closed"
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                ws = await websockets.connect(
                    self.url,
                    ping_interval=None,  # the exchange's heartbeat is JSON ping/pong, run by the dispatcher
                    max_size=self._max_frame_bytes,
                    compression=None,
                    open_timeout=None,
                    close_timeout=2,
                )
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            self._put(SocketClosed(epoch, f"connect failed: {type(exc).__name__}: {exc}"))
            return
        except asyncio.CancelledError:
            raise
        self._ws = ws
        self._ws_epoch = epoch
        self._writer = asyncio.get_running_loop().create_task(
            self._write_loop(epoch, ws), name=f"ws-writer-{epoch}"
        )
        self._put(SocketOpened(epoch))
        put, decode, perf = self._put, self._decode, time.perf_counter_ns
        recv = ws.recv
        try:
            while True:
                # bytes, not str: msgspec decodes UTF-8 itself, so the library's decode is waste
                raw = await recv(decode=False)
                self.frames_in += 1
                put(FrameIn(epoch, decode(raw), perf()))
        except websockets.ConnectionClosed as exc:
            reason = f"connection closed: {exc}"
        except asyncio.CancelledError:
            reason = "closed by client"
            raise
        except Exception as exc:  # the reader must end in SocketClosed, whatever happened
            reason = f"reader failed: {type(exc).__name__}: {exc}"
            log.exception("websocket reader failed")
        finally:
            self._ws = None
            if self._writer is not None:
                self._writer.cancel()
            with contextlib.suppress(Exception):
                await asyncio.shield(ws.close())
            self._fail_queued("connection lost")
            self._put(SocketClosed(epoch, reason))

    async def _write_loop(self, epoch: int, ws: Any) -> None:
        queue, wake = self._queue, self._wake
        while True:
            while queue:
                frame_epoch, data, post_id = queue.popleft()
                if frame_epoch != epoch:
                    if post_id is not None:
                        self._put(
                            WriteFailed(frame_epoch, post_id, "queued for an older connection")
                        )
                    continue
                try:
                    await ws.send(data)
                    self.frames_out += 1
                except Exception as exc:
                    if post_id is not None:
                        self._put(WriteFailed(epoch, post_id, f"write failed: {exc}"))
                    self._fail_queued("connection lost")
                    return
            wake.clear()
            await wake.wait()
