"""Virtual time for a backtest: integer Unix nanoseconds that move only when told to.

One clock serves both sides. The exchange's timing model (`hip3.sim.timing`) reads it through
the simulator's clock protocol (`now_ms`, `call_at`); the bot reads it through `BotClock`
(the dispatcher's `now_ms`, `now_ns`, `wall_ms`). Monotonic and wall time are the same
virtual Unix time, so nonces, fill times and journal rows all carry the recorded day's time.
Timers fire in (time, arming) order: the same data gives the same sequence of events.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

_NS_PER_MS = 1_000_000
_FLOAT_SLACK_NS = 1_000


class _Timer:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualTime:
    def __init__(self, start_ns: int) -> None:
        self.ns = start_ns
        self._timers: list[tuple[int, int, _Timer, Callable[[], None]]] = []
        self._order = itertools.count()

    # --- the simulator's clock protocol (milliseconds as floats) ---------------------------

    def now_ms(self) -> float:
        return self.ns / _NS_PER_MS

    def call_at(self, when_ms: float, callback: Callable[[], None]) -> _Timer:
        # Unix milliseconds as a float carry about 0.25 µs of rounding: a timer fired at the
        # nanosecond nearest `when_ms` could still read `now_ms() < when_ms`, and a caller
        # that waits for that (the timing model does) would re-arm the same instant forever.
        # One microsecond late is never early.
        return self.call_at_ns(int(when_ms * _NS_PER_MS) + _FLOAT_SLACK_NS, callback)

    # --- the engine's side ---------------------------------------------------------------

    def call_at_ns(self, when_ns: int, callback: Callable[[], None]) -> _Timer:
        timer = _Timer()
        heapq.heappush(self._timers, (max(when_ns, self.ns), next(self._order), timer, callback))
        return timer

    def soon(self, callback: Callable[[], None]) -> None:
        """Run `callback` at the current time, after what is already due now."""
        self.call_at_ns(self.ns, callback)

    def next_due_ns(self) -> int | None:
        return self._timers[0][0] if self._timers else None

    def run_until(self, when_ns: int) -> None:
        """Fire every timer due by `when_ns` (including those armed on the way), then stand
        at `when_ns`."""
        timers = self._timers
        while timers and timers[0][0] <= when_ns:
            at, _, timer, callback = heapq.heappop(timers)
            if timer.cancelled:
                continue
            if at > self.ns:
                self.ns = at
            callback()
        if when_ns > self.ns:
            self.ns = when_ns


class BotClock:
    """The dispatcher's view of virtual time."""

    __slots__ = ("_time",)

    def __init__(self, time: VirtualTime) -> None:
        self._time = time

    def now_ms(self) -> int:
        return self._time.ns // _NS_PER_MS

    def now_ns(self) -> int:
        return self._time.ns

    def wall_ms(self) -> int:
        return self._time.ns // _NS_PER_MS


__all__ = ["BotClock", "VirtualTime"]
