"""Ending a bot whose heartbeat went stale while its process still runs.

A bot that stopped beating but still exists is hung (a blocked event loop, a stuck call, a
stopped process). If it woke up while the guard cancels and flattens, it would go on trading
from a view of the account that is no longer true: new entries behind the guard's back, its
own flatten orders racing the guard's, nonces from the same key interleaved with the guard's.
So before acting the guard ends it with SIGKILL, which it cannot catch or delay; only the
very process that wrote the beat (same pid and start time, on this host) is signalled.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable

from hip3.guard.heartbeat import Heartbeat, pid_alive

__all__ = ["kill_stale_bot"]

log = logging.getLogger("hip3.guard")


async def kill_stale_bot(
    beat: Heartbeat,
    *,
    wait_s: float = 5.0,
    alive: Callable[[int, int | None], bool] = pid_alive,
    kill: Callable[[int, int], None] = os.kill,
) -> bool:
    """SIGKILL the bot that wrote `beat` if it still runs here; True when it is gone after."""
    if not alive(beat.pid, beat.pid_start):
        return True
    log.warning("guard: pid %d still runs but stopped beating; sending SIGKILL", beat.pid)
    try:
        kill(beat.pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    except PermissionError as exc:
        log.error("guard: cannot kill pid %d: %s", beat.pid, exc)
        return False
    loop = asyncio.get_running_loop()
    end = loop.time() + wait_s
    while loop.time() < end:
        if not alive(beat.pid, beat.pid_start):
            log.info("guard: pid %d is gone", beat.pid)
            return True
        await asyncio.sleep(0.05)
    log.error("guard: pid %d still runs %.0f s after SIGKILL", beat.pid, wait_s)
    return False
