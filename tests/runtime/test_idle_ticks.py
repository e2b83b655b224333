"""The 100 ms timer tells a machine `tick` only when its `tick_due` says something is due: an
idle, READY bot's ticks take no machine transition at all (each one cost ~90 µs of library
dispatch, most of a backtest's time and of the live bot's idle CPU), while every timeout still
fires on the tick it fired on before (here: the idle ping). The other components the timer
asks answer "nothing due" without walking what they keep (tests/runtime/test_tick_due.py:
never late for it)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from hip3.machines.commands import SendPing

from hip3.metrics.logs import TransitionLogger
from tests.runtime.fakes import Harness


def ready_harness() -> tuple[Harness, TransitionLogger]:
    h = Harness()
    h.start()
    h.bring_up()
    assert h.d.ready.trading(), h.d.ready.describe()
    counter = TransitionLogger()
    counter.attach(h.d.conn)
    counter.attach(h.d.hardstop)
    counter.attach(h.d.epoch.readiness)
    return h, counter


def test_an_idle_ready_bots_ticks_take_no_transition() -> None:
    h, counter = ready_harness()
    for _ in range(20):
        h.tick(100)
    assert counter.count == 0
    assert (h.d.conn.state, h.d.hardstop.state) == ("live", "armed")


def test_a_due_ping_is_still_sent_on_its_tick() -> None:
    h, counter = ready_harness()
    pings: list[Any] = []
    runner = h.d.command_runners[SendPing]
    h.d.command_runners[SendPing] = lambda cmd: (pings.append(cmd), runner(cmd))
    ping_after_ms = int(h.cfg.websocket.ping_after_s * 1000)
    silent_since = h.d.epoch.last_rx_ms
    h.clock.advance(silent_since + ping_after_ms - 1 - h.clock.now_ms())
    h.tick()
    assert pings == [] and counter.count == 0  # one millisecond early: nothing is due
    h.tick(1)
    assert pings == [SendPing(h.epoch)] and counter.count == 1  # the connection's own tick


def functions_called(fn: Callable[[], None]) -> set[str]:
    """The qualified names of the Python functions `fn` runs."""
    names: set[str] = set()

    def seen(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            names.add(frame.f_code.co_qualname)

    sys.setprofile(seen)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return names


def test_an_idle_ready_bots_tick_walks_nothing_it_keeps() -> None:
    """READY, flat, no order, no post in flight: a tick neither sums the PnL again (no fill
    since the last one) nor lists the orders in doubt, walks the pending posts or looks
    through the strategy's timers for a due one more than once; and it sends nothing."""
    h, counter = ready_harness()
    h.tick(100)
    sent = len(h.transport.sent)
    called = functions_called(lambda: h.tick(100))
    walks = {
        "PositionTracker.realized",
        "PositionTracker.total_fees",
        "OrderRegistry.unknown_orders",
        "PostBook.expired.<locals>.<listcomp>",
        "StrategyHost.tick.<locals>.<genexpr>",
    }
    assert called & walks == set(), sorted(called)
    assert "StreamWatch.tick" in called and "Safety.check_risk" in called  # they were asked
    assert counter.count == 0 and len(h.transport.sent) == sent
