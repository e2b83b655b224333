"""`hip3 bot --record FILE`: every inbound market-data frame, as it arrived, to a file.

The socket's read callback hands each raw frame and its local receive time to `offer`, which
only appends to a deque (thread-safe for one producer and one consumer); a writer thread
takes them from there, keeps the market-data channels, and writes gzip-compressed NDJSON.
So the loop never waits on the disk or the compressor.

One line per frame: `{"t": <unix ns when the frame was read>, "f": <the frame, verbatim>}`.
Only market data is kept (`MARKET_CHANNELS`); account streams, post answers, acks, pongs and
errors (which name the account's address or carry its orders) are dropped in the writer
thread before anything is written. A frame that is not valid JSON is dropped too, so every
line of a recording parses.

The writer flushes a complete compressed block every `flush_every_s`: a killed bot leaves a
file readable up to its last flush (the reader in `hip3.backtest.data` stops cleanly at a
truncated end); a clean stop writes the gzip trailer.
"""

from __future__ import annotations

import collections
import gzip
import logging
import threading
import time
from pathlib import Path

import msgspec

log = logging.getLogger(__name__)

# The public market-data channels (the exchange's websocket docs list them as subscriptions):
# none carries a user's address, orders or fills.
MARKET_CHANNELS = frozenset({"bbo", "l2Book", "activeAssetCtx", "allMids", "trades", "candle"})


class _Channel(msgspec.Struct):
    channel: str = ""


_channel_of = msgspec.json.Decoder(_Channel).decode


class RecordingError(RuntimeError):
    """The recording file cannot be created; the message names it."""


class FrameRecorder:
    """Collects frames on the loop's thread; one writer thread compresses and writes them."""

    def __init__(self, path: str | Path, *, flush_every_s: float = 1.0) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise RecordingError(
                f"--record {self.path}: the folder {self.path.parent} does not exist"
            )
        try:
            self._file = gzip.open(self.path, "wb", compresslevel=6)  # noqa: SIM115 (the writer thread owns it)
        except OSError as exc:
            raise RecordingError(f"--record {self.path}: {exc.strerror or exc}") from None
        self._pending: collections.deque[tuple[int, bytes]] = collections.deque()
        self._flush_every_s = flush_every_s
        self._stop = threading.Event()
        self.frames_written = 0
        self.frames_skipped = 0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._write_loop, name="frame-recorder", daemon=True)
        self._thread.start()

    def offer(self, payload: bytes, recv_ns: int) -> None:
        """Called by the socket's read callback with each raw frame: appends, nothing else
        (once writing has failed, not even that: nothing would take the frames away)."""
        if self.error is None:
            self._pending.append((recv_ns, payload if type(payload) is bytes else bytes(payload)))

    def close(self) -> None:
        """Write what is left, end the gzip stream and close the file."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()

    # --- the writer thread ----------------------------------------------------------------

    def _write_loop(self) -> None:
        try:
            while not self._stop.wait(self._flush_every_s):
                self._write_pending()
                self._file.flush()  # a complete deflate block: readable if the bot is killed
            self._write_pending()
        except OSError as exc:  # disk full: the bot trades on, the recording says why it ended
            self.error = f"{exc.strerror or exc}"
            self._pending.clear()
            log.error("recording %s stopped: %s", self.path, self.error)
        finally:
            try:
                self._file.close()
            except OSError as exc:
                self.error = self.error or f"{exc.strerror or exc}"

    def _write_pending(self) -> None:
        pending, lines = self._pending, []
        while pending:
            recv_ns, payload = pending.popleft()
            try:
                channel = _channel_of(payload).channel
            except (msgspec.DecodeError, msgspec.ValidationError):
                self.frames_skipped += 1
                continue
            if channel not in MARKET_CHANNELS:
                continue
            if b"\n" in payload or b"\r" in payload:  # JSON whitespace: one frame, one line
                payload = msgspec.json.encode(msgspec.json.decode(payload))
            lines.append(b'{"t":%d,"f":%s}\n' % (recv_ns, payload))
        if lines:
            self._file.write(b"".join(lines))
            self.frames_written += len(lines)


def wall_ns() -> int:
    """The local receive time a recording stores: Unix nanoseconds."""
    return time.time_ns()


__all__ = ["MARKET_CHANNELS", "FrameRecorder", "RecordingError", "wall_ns"]
