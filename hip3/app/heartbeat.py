"""The bot's heartbeat for `hip3 guard` (format and atomic write: `hip3/guard/heartbeat.py`).

The beat is written by a task on the bot's own event loop, every
`guard.heartbeat_interval_s`: a loop that hangs (a blocking call, a stuck handler) stops the
beat just as a dead process does, which is what lets the guard tell a hung bot from a quiet
one. A failed write is logged (sparsely) and never stops the bot: the guard then sees a stale
beat and acts, which is the safe side.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hip3.guard.heartbeat import (
    HEARTBEAT_VERSION,
    Heartbeat,
    process_start_ticks,
    this_host,
    write_heartbeat,
)

__all__ = ["DispatcherExposure", "HeartbeatWriter", "beat_every"]

log = logging.getLogger(__name__)


class DispatcherExposure:
    """What the running bot holds, read through the dispatcher's public surface (the same
    calls the summary and the stop keys use): positions by coin and orders possibly open."""

    def __init__(self, dispatcher: Any) -> None:
        self._d = dispatcher

    def positions(self) -> int:
        return len(self._d.positions.signed_sizes())

    def open_orders(self) -> int:
        return len(self._d.orders.open_orders())


class HeartbeatWriter:
    def __init__(
        self,
        path: Path,
        *,
        account: str,
        network: str,
        exposure: DispatcherExposure | None = None,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.path = path
        self.account = account
        self.network = network
        self.exposure = exposure
        self._wall_ms = wall_ms
        self._pid = os.getpid()
        self._pid_start = process_start_ticks(self._pid)
        self._host = this_host()
        self.seq = 0
        self.failures = 0

    def prepare(self) -> None:
        """Create the folder and write the first beat; OSError if the path is unusable (the
        bot then refuses to start, rather than run unguarded while the operator thinks
        otherwise)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_heartbeat(self.path, self._beat("running"))

    def beat(self, state: str = "running") -> None:
        try:
            write_heartbeat(self.path, self._beat(state))
        except OSError as exc:
            self.failures += 1
            if self.failures & (self.failures - 1) == 0:  # 1st, 2nd, 4th, 8th, ...
                log.warning(
                    "heartbeat %s not written (%d failures): %s",
                    self.path,
                    self.failures,
                    exc.strerror or exc,
                )

    def _beat(self, state: str) -> Heartbeat:
        self.seq += 1
        exposure = self.exposure
        return Heartbeat(
            version=HEARTBEAT_VERSION,
            pid=self._pid,
            host=self._host,
            pid_start=self._pid_start,
            account=self.account,
            network=self.network,
            time_ms=self._wall_ms(),
            seq=self.seq,
            state=state,  # type: ignore[arg-type]
            positions=exposure.positions() if exposure is not None else 0,
            open_orders=exposure.open_orders() if exposure is not None else 0,
        )


async def beat_every(writer: HeartbeatWriter, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        writer.beat()
