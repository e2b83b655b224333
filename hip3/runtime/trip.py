"""Tripping the HardStop: the one way any component asks the bot to stop trading.

The HardStopMachine decides what a trip means (block entries, cancel, flatten, verify); this
only logs why, once, at the right level, and hands the reason to the machine. Order flow (a
run of rejections), flattening (a flatten that cannot be built or gave up), the risk checks,
the operator and the graceful stop all trip through one `HardStopTrip`.
"""

from __future__ import annotations

from collections.abc import Callable

from hip3.machines.hardstop import HardStopMachine
from hip3.runtime.common import log

# The HardStop reason of a graceful stop that flattens: a routine stop, logged at INFO.
STOP_REASON = "shutdown with flatten"


class HardStopTrip:
    def __init__(self, hardstop: HardStopMachine, *, now_ms: Callable[[], int]) -> None:
        self.hardstop = hardstop
        self.now_ms = now_ms

    def __call__(self, reason: str) -> None:
        if self.hardstop.is_armed:
            if reason == STOP_REASON:
                log.info("stopping: cancel and flatten through the HardStop steps")
            else:
                log.error("HardStop tripped: %s", reason)
        self.hardstop.send("trip", reason=reason, now_ms=self.now_ms())
