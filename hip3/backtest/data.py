"""The market data a backtest replays: frames with their local receive time, in time order.

Two formats, told apart by their first bytes:

- a recording of `hip3 bot --record` (gzip): one JSON object per line,
  `{"t": <Unix ns when the bot read the frame>, "f": <the frame as the exchange sent it>}`;
- the exchange's public l2Book archive (LZ4 frame format, one file per coin and hour,
  https://hyperliquid.gitbook.io/hyperliquid-docs/historical-data): one object per line,
  `{"time": "<local receive time, ISO 8601 with nanoseconds>", "ver_num": 1, "raw": <the
  websocket message, an l2Book frame>}` (docs/exchange/market-data-archive.md).

Frames come out decoded by the bot's own decoder (`decode_frame`): a frame it refuses comes
out as its `DecodeError` value (counted as replayed, it moves nothing), while a line whose
envelope is bad stops the replay with a `DataError`.

Several files are merged by receive time (a tie keeps the order the files were given in).
A recording whose writer was killed ends in a truncated gzip stream: the frames before the
last complete block are replayed and `truncated` says so.
"""

from __future__ import annotations

import gzip
import heapq
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from hip3.protocol.frames import SHORT_FRAME_BYTES, Frame, decode_frame
from hip3.protocol.frames import DecodeError as BadFrame

GZIP_MAGIC = b"\x1f\x8b"
LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"


class DataError(ValueError):
    """A data file that cannot be replayed; the message names the file and the line."""


class _RecordedLine(msgspec.Struct):
    t: int
    f: msgspec.Raw


class _RecordedFrame(msgspec.Struct):
    """A recording's line decoded with its frame in one msgspec pass."""

    t: int
    f: Frame


class _ArchiveLine(msgspec.Struct):
    time: str
    raw: msgspec.Raw


_recorded_line = msgspec.json.Decoder(_RecordedLine).decode
_recorded_frame = msgspec.json.Decoder(_RecordedFrame).decode
_archive_line = msgspec.json.Decoder(_ArchiveLine).decode


@dataclass
class DataFile:
    """One file's frames, read lazily: `(recv_ns, decoded frame, line number)`."""

    path: Path
    kind: str  # "recording" or "l2Book archive"
    truncated: bool = field(default=False)
    lines: int = 0

    def frames(self) -> Iterator[tuple[int, bytes, int]]:
        parse = _parse_recorded if self.kind == "recording" else _parse_archive
        with _open(self.path, self.kind) as stream:
            n = 0
            try:
                for n, line in enumerate(stream, 1):
                    if not line.strip():
                        continue
                    try:
                        recv_ns, frame = parse(line)
                    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
                        raise DataError(
                            f"{self.path}: bad {self.kind} line {n}: {_short(exc)}"
                        ) from None
                    self.lines = n
                    yield recv_ns, frame, n
            except (EOFError, zlib.error) as exc:
                if self.kind != "recording":
                    raise DataError(f"{self.path}: corrupt LZ4 data after line {n}") from None
                # a recording cut short by a kill: everything up to its last flush is good
                self.truncated = True
                del exc
            except RuntimeError as exc:  # lz4's frame errors
                raise DataError(f"{self.path}: corrupt LZ4 data after line {n}: {exc}") from None


def open_data(path: str | Path) -> DataFile:
    """The file's format from its first bytes; a one-line DataError for anything else."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: {exc.strerror or exc}") from None
    if head.startswith(GZIP_MAGIC):
        return DataFile(path, "recording")
    if head == LZ4_FRAME_MAGIC:
        return DataFile(path, "l2Book archive")
    raise DataError(
        f"{path}: neither a recording (gzip, from hip3 bot --record) nor an l2Book archive "
        "file (LZ4)"
    )


def merged(files: list[DataFile]) -> Iterator[tuple[int, Frame | BadFrame, int, DataFile]]:
    """Every file's frames in receive-time order: `(recv_ns, frame, line, file)`."""
    if len(files) == 1:
        only = files[0]
        for recv_ns, frame, line in only.frames():
            yield recv_ns, frame, line, only
        return
    streams = [
        ((recv_ns, i, frame, line, f) for recv_ns, frame, line in f.frames())
        for i, f in enumerate(files)
    ]
    for recv_ns, _i, frame, line, f in heapq.merge(*streams, key=lambda x: (x[0], x[1])):
        yield recv_ns, frame, line, f


def _open(path: Path, kind: str) -> io.BufferedIOBase:
    if kind == "recording":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    import lz4.frame  # a declared dependency; imported only for archive files

    return lz4.frame.open(path, "rb")  # type: ignore[no-any-return]


def _parse_recorded(line: bytes) -> tuple[int, Frame | BadFrame]:
    """The envelope and its frame in one msgspec pass, which costs half of decoding them one
    after the other. Only a short line takes it (`decode_frame` checks the nesting of a long
    frame before any decoder sees it), and a line that pass refuses is decoded again in two
    passes, so a bad frame gets `decode_frame`'s own DecodeError and a bad envelope its own
    error, exactly as if the fast pass did not exist."""
    if len(line) <= SHORT_FRAME_BYTES:
        try:
            rec = _recorded_frame(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
        else:
            if rec.t > 0:
                return rec.t, rec.f
    envelope = _recorded_line(line)
    if envelope.t <= 0:
        raise ValueError(f"receive time {envelope.t} is not a Unix time in ns")
    return envelope.t, decode_frame(bytes(envelope.f))


def _parse_archive(line: bytes) -> tuple[int, Frame | BadFrame]:
    rec = _archive_line(line)
    return iso_ns(rec.time), decode_frame(bytes(rec.raw))


def iso_ns(text: str) -> int:
    """`2023-09-16T09:00:03.296545473` (UTC, up to nanoseconds) as Unix nanoseconds."""
    whole, _, fraction = text.partition(".")
    if (fraction and not fraction.isdigit()) or len(fraction) > 9:
        raise ValueError(f"time {text!r} is not ISO 8601 with at most nanoseconds")
    try:
        seconds = datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise ValueError(f"time {text!r} is not ISO 8601") from None
    return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200]


__all__ = ["DataError", "DataFile", "iso_ns", "merged", "open_data"]
