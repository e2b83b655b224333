"""The websocket: the only reader of the socket and its only writer.

Each frame is decoded and handed to the dispatcher's `put` inside the read callback (see
`wsconn`): the reader never interprets a frame, so reconnect, resubscribe and live traffic all
pass through the same dispatcher (the seed's `drain_and_wait` was a second reader that
swallowed the snapshot READY waited for). Writes go to the socket inside `send`; a frame for a
connection that is not open is refused and, if it is a post, its owner told (a post must never
leak onto the next connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from hip3.events import FrameIn, SocketClosed, SocketOpened, WriteFailed
from hip3.transport.wsconn import WsConnection, connect

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
        tap: Callable[[bytes, int], None] | None = None,
    ) -> None:
        self.url = url
        self._put = put
        self._decode = decode
        self._connect_timeout_s = connect_timeout_s
        self._max_frame_bytes = max_frame_bytes
        # `hip3 bot --record`: sees every raw frame with its Unix receive time, before decode
        self._tap = tap
        self._epoch = 0
        self._conn: WsConnection | None = None
        self._conn_epoch = 0
        self._task: asyncio.Task | None = None
        self.frames_in = 0
        self.frames_out = 0

    @property
    def epoch(self) -> int:
        return self._epoch

    def open(self, epoch: int) -> None:
        """Start connecting for `epoch`; the result arrives as SocketOpened or SocketClosed."""
        self.close(self._epoch, "superseded")
        self._epoch = epoch
        self._task = asyncio.get_running_loop().create_task(self._run(epoch), name=f"ws-{epoch}")

    def close(self, epoch: int, reason: str = "closing") -> None:
        if epoch != self._epoch:
            return
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()

    def send(self, data: bytes | str, post_id: int | None = None) -> None:
        """Write one encoded frame to the current connection, now.

        An order reaches the wire inside this call, before the dispatcher does its
        bookkeeping. A frame the connection cannot take is dropped; a post's owner is told
        with WriteFailed (part of the frame may have left: it is never retried here).
        """
        conn = self._conn
        if conn is None or self._conn_epoch != self._epoch or not conn.is_open:
            if post_id is not None:
                self._put(WriteFailed(self._epoch, post_id, "connection not open"))
            return
        try:
            conn.send_text(data if type(data) is bytes else data.encode())
            self.frames_out += 1
        except Exception as exc:
            log.error("websocket write failed: %s", exc)
            if post_id is not None:
                self._put(WriteFailed(self._epoch, post_id, f"write failed: {exc}"))

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- internals -----------------------------------------------------------------------

    async def _run(self, epoch: int) -> None:
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[str] = loop.create_future()
        put, decode, perf, tap = self._put, self._decode, time.perf_counter_ns, self._tap

        def on_message(payload: bytes, _is_text: bool) -> None:
            # bytes, not str: msgspec decodes UTF-8 itself
            self.frames_in += 1
            if tap is not None:
                tap(payload, time.time_ns())
            put(FrameIn(epoch, decode(payload), perf()))

        def on_closed(reason: str) -> None:
            if not ended.done():
                ended.set_result(reason)

        try:
            async with asyncio.timeout(self._connect_timeout_s):
                conn = await connect(
                    self.url,
                    on_message=on_message,
                    on_closed=on_closed,
                    max_size=self._max_frame_bytes,
                )
        except (OSError, TimeoutError, ConnectionError) as exc:
            self._put(SocketClosed(epoch, f"connect failed: {type(exc).__name__}: {exc}"))
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # e.g. a malformed URL: still a failed connect, never silence
            self._put(SocketClosed(epoch, f"connect failed: {type(exc).__name__}: {exc}"))
            return
        self._conn, self._conn_epoch = conn, epoch
        reason = "closed"
        try:
            self._put(SocketOpened(epoch))
            reason = "connection closed: " + await ended
        except asyncio.CancelledError:
            reason = "closed by client"
            raise
        finally:
            if self._conn is conn:
                self._conn = None
            if conn.transport is not None:
                conn.close(1000)
                with contextlib.suppress(Exception):
                    await asyncio.shield(asyncio.wait_for(ended, 2.5))
                conn.abort()
            self._put(SocketClosed(epoch, reason))
