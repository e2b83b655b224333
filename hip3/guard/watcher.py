"""Watching the bot's heartbeat, and the one rule that says when the bot is gone.

`Staleness` measures how long the beat has not moved, on the guard's own monotonic clock:
the first beat read is as old as its wall-clock `time_ms` says (a bot that died before the
guard started is already stale), and from then on a beat is fresh when its `seq` (or its
process) changed since the last read. `decide` turns that age into a verdict; `watch` polls
the file until the verdict is no longer "alive".
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hip3.config import GuardConfig
from hip3.guard.heartbeat import Heartbeat, HeartbeatError, pid_alive, read_heartbeat, this_host

__all__ = ["GuardMismatch", "Staleness", "Verdict", "WatchResult", "decide", "watch"]

log = logging.getLogger("hip3.guard")


class Verdict(enum.Enum):
    ALIVE = "alive"  # beating: the guard only watches
    STALE = "stale"  # no beat for longer than the timeout (dead, hung, or on another host)
    GONE = "gone"  # its process no longer runs on this host: no need to wait for the timeout
    STOPPED = "stopped"  # its last beat said the run ended on its own
    NEVER_SEEN = "never seen"  # no heartbeat appeared before the start deadline


class GuardMismatch(ValueError):
    """The heartbeat belongs to another account or network than the guard's configuration."""


class Staleness:
    """Seconds since the beat last moved, on a monotonic clock."""

    def __init__(self) -> None:
        self._key: tuple[int, int | None, int] | None = None
        self._moved_at = 0.0

    def observe(self, beat: Heartbeat, now_s: float, now_wall_ms: int) -> float:
        key = (beat.pid, beat.pid_start, beat.seq)
        if self._key is None:
            self._moved_at = now_s - max(0, now_wall_ms - beat.time_ms) / 1000
        elif key != self._key:
            self._moved_at = now_s
        self._key = key
        return now_s - self._moved_at


def decide(beat: Heartbeat, age_s: float, timeout_s: float, *, local: bool, alive: bool) -> Verdict:
    """What the guard does with this beat. A stopped run and a process that is gone are
    final at once; otherwise the beat must be older than the timeout. `alive` only counts
    when the beat was written on this host (`local`): a pid means nothing elsewhere."""
    if beat.state == "stopped":
        return Verdict.STOPPED
    if local and not alive:
        return Verdict.GONE
    if age_s > timeout_s:
        return Verdict.STALE
    return Verdict.ALIVE


@dataclass(frozen=True)
class WatchResult:
    verdict: Verdict
    beat: Heartbeat | None
    age_s: float


async def watch(
    path: Path,
    cfg: GuardConfig,
    *,
    account: str,
    network: str,
    clock: Callable[[], float] = time.monotonic,
    wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    alive: Callable[[int, int | None], bool] = pid_alive,
    host: str | None = None,
) -> WatchResult:
    """Poll `path` until the bot is not alive (or no beat came before the start deadline).

    A guard is often started together with the bot, and may read the file before the new run
    wrote its first beat. So a file that, at the guard's start, holds a run that is already
    over (stopped, gone or stale, but not a hung process on this host) is waited past: the
    guard watches the next run that appears. Only when none appears by the start deadline
    does it act on the earlier one, which may have left exposure behind."""
    host = host if host is not None else this_host()
    started = clock()
    staleness = Staleness()
    beat: Heartbeat | None = None
    age = 0.0
    reported_at: float | None = None
    bad_file_logged = False
    first_run: tuple[int, int | None] | None = None
    first_run_over = False
    earlier_run_logged = False
    while True:
        try:
            latest = read_heartbeat(path)
        except HeartbeatError as exc:
            # a bad file is no beat: the last good one keeps ageing
            if not bad_file_logged:
                log.warning("guard: %s; the last good beat keeps ageing", exc)
                bad_file_logged = True
            latest = None
        if latest is not None:
            _check_owner(latest, path, account=account, network=network)
            beat = latest
        now = clock()
        if beat is None:
            if now - started > cfg.start_deadline_s:
                return WatchResult(Verdict.NEVER_SEEN, None, now - started)
            if reported_at is None:
                log.info("guard: waiting for the bot's heartbeat at %s", path)
                reported_at = now
        else:
            age = staleness.observe(beat, now, wall_ms())
            local = beat.host == host
            running_here = local and alive(beat.pid, beat.pid_start)
            verdict = decide(beat, age, cfg.timeout_s, local=local, alive=running_here)
            if first_run is None:
                first_run = (beat.pid, beat.pid_start)
                # a run already over when the guard starts, unless it is a hung process here
                first_run_over = verdict is not Verdict.ALIVE and not running_here
            if verdict is not Verdict.ALIVE:
                earlier_run = first_run_over and (beat.pid, beat.pid_start) == first_run
                if not earlier_run or now - started > cfg.start_deadline_s:
                    return WatchResult(verdict, beat, age)
                if not earlier_run_logged:
                    log.info(
                        "guard: the heartbeat at %s is from a run that ended (pid %d, %s); "
                        "waiting up to %g s for the bot to start before acting on it",
                        path,
                        beat.pid,
                        verdict.value,
                        cfg.start_deadline_s,
                    )
                    earlier_run_logged = True
                await asyncio.sleep(cfg.poll_interval_s)
                continue
            if reported_at is None or now - reported_at >= cfg.report_interval_s:
                log.info(
                    "guard: watching pid %d on %s, last beat %.1fs ago (%d position(s), "
                    "%d open order(s))",
                    beat.pid,
                    beat.host,
                    age,
                    beat.positions,
                    beat.open_orders,
                )
                reported_at = now
        await asyncio.sleep(cfg.poll_interval_s)


def _check_owner(beat: Heartbeat, path: Path, *, account: str, network: str) -> None:
    if beat.account.lower() != account.lower() or beat.network != network:
        raise GuardMismatch(
            f"the heartbeat at {path} is from account {beat.account} on {beat.network}, but "
            f"the guard's configuration trades {account} on {network}"
        )
