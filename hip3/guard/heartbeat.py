"""The heartbeat file: what the bot writes and the guard reads.

One small JSON object, rewritten whole every `guard.heartbeat_interval_s` by the bot's event
loop (`hip3/app/heartbeat.py`). It is written to a temporary file beside the target and
renamed over it, so a reader sees the previous beat or the next one, never half of one, and
a bot killed mid-write leaves the previous beat in place.

`pid`, `host` and `pid_start` (the process's start time in clock ticks since boot, from
/proc on Linux) let the guard tell whether that very process is still alive on this host,
and never mistake a new process that reused the pid for the bot. `seq` grows by one per beat:
the guard measures staleness by when it last saw `seq` move on its own monotonic clock, so a
wall-clock step on either side does not fake a dead or a live bot (`time_ms`, wall clock,
only seeds that measure for the first beat the guard reads).
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Literal

import msgspec

__all__ = [
    "HEARTBEAT_VERSION",
    "Heartbeat",
    "HeartbeatError",
    "pid_alive",
    "process_start_ticks",
    "read_heartbeat",
    "this_host",
    "write_heartbeat",
]

HEARTBEAT_VERSION = 1
# Larger than any beat; a bigger file is not a heartbeat.
_MAX_BYTES = 4096


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: int
    pid: int
    host: str
    # the bot process's start time (clock ticks since boot), None where /proc is not available
    pid_start: int | None
    account: str
    network: str
    # wall-clock Unix ms of this beat
    time_ms: int
    # one more than the previous beat of the same run
    seq: int
    # "running", or "stopped" for the last beat of a run that ended on its own
    state: Literal["running", "stopped"]
    # what the bot believed it held when it wrote the beat
    positions: int
    open_orders: int

    @property
    def exposed(self) -> bool:
        return self.positions > 0 or self.open_orders > 0


class HeartbeatError(ValueError):
    """The heartbeat file exists but is not a heartbeat; the message names the file."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Heartbeat)


def write_heartbeat(path: Path, beat: Heartbeat) -> None:
    """Replace `path` with `beat` atomically (temporary file in the same folder, then rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(_encoder.encode(beat))
    try:
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def read_heartbeat(path: Path) -> Heartbeat | None:
    """The beat in `path`, or None when there is no file yet."""
    try:
        with path.open("rb") as f:
            raw = f.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HeartbeatError(f"cannot read heartbeat {path}: {exc.strerror or exc}") from None
    if len(raw) > _MAX_BYTES:
        raise HeartbeatError(f"heartbeat {path} is larger than {_MAX_BYTES} bytes")
    try:
        beat = _decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise HeartbeatError(f"heartbeat {path} is not a hip3 heartbeat: {exc}") from None
    if beat.version != HEARTBEAT_VERSION:
        raise HeartbeatError(
            f"heartbeat {path} has version {beat.version}, expected {HEARTBEAT_VERSION}"
        )
    return beat


def this_host() -> str:
    return socket.gethostname()


def process_start_ticks(pid: int) -> int | None:
    """Start time of process `pid` in clock ticks since boot (field 22 of /proc/PID/stat), or
    None when it cannot be read (no such process, or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may contain spaces: split after it
    fields = stat.rpartition(")")[2].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] == "Z"


def pid_alive(pid: int, start_ticks: int | None) -> bool:
    """Whether the process that wrote a beat still runs here: the pid exists, is not a
    zombie (dead, waiting to be reaped), and, when the beat recorded a start time, started
    then (a different process that reused the pid is not the bot)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    if _zombie(pid):
        return False
    if start_ticks is not None:
        now = process_start_ticks(pid)
        if now is not None and now != start_ticks:
            return False
    return True
