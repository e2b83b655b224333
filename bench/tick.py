"""The bot's 100 ms timer tick when nothing is due, in-process.

    python -m bench.tick [--ticks 200] [--rounds 300]

The runtime tests' harness (tests/runtime/fakes.py: a real `Dispatcher` against the
simulator's exchange core, four markets, a clock that moves only when told) brings the bot to
READY-TRADING; then `handle(Tick())` is timed with the clock standing still, so no deadline
comes due and every tick is the same one: what the timer costs on its own, live (ten times a
second) and in a backtest (ten times a second of data, whether frames come or not). Three
states, each checked unchanged after its ticks:

- idle: flat, no order, no post in flight;
- position: one position open (the built-in taker's exits look at it and the risk check
  prices it on every tick);
- resting: one resting order of the strategy's, flat.

Each case is the best of `rounds` short batches of `ticks` ticks, in the thread's CPU time:
other work on a shared machine only ever adds to a batch, and short batches are often left
alone. The last line is
`RESULT idle_tick_us=<per tick> position_tick_us=<per tick> resting_tick_us=<per tick>`.
"""

from __future__ import annotations

import argparse
import time
from decimal import Decimal

from bench.tick_to_post import calibration_ns
from hip3.events import Tick
from tests.runtime.fakes import MARKETS, Harness

COIN = "xyz:AAA"


def ready() -> Harness:
    h = Harness(risk={"max_notional_per_market_usd": 200.0})
    h.start()
    h.bring_up()
    if not h.d.ready.trading():
        raise RuntimeError(f"the bot did not become READY: {h.d.ready.describe()}")
    for _ in range(10):  # the spare order machines are built on the first ticks
        h.tick(100)
    return h


def per_tick_us(h: Harness, ticks: int, rounds: int) -> float:
    handle, tick = h.d.handle, Tick()
    sent = len(h.transport.sent)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.thread_time_ns()
        for _ in range(ticks):
            handle(tick)
        best = min(best, time.thread_time_ns() - t0)
    if len(h.transport.sent) != sent:
        raise RuntimeError("a tick sent something: the case is not one with nothing due")
    return best / ticks / 1000


def idle(ticks: int, rounds: int) -> float:
    h = ready()
    us = per_tick_us(h, ticks, rounds)
    assert not h.d.positions.open_coins() and not h.d.orders.machines
    return us


def position(ticks: int, rounds: int) -> float:
    h = ready()
    px = Decimal(MARKETS[COIN].oracle) * Decimal("1.02")  # takes the ask at once
    done = h.d.host.submit(COIN, is_buy=True, size=Decimal(1), px=px, tif="Ioc")
    if not done.ok:
        raise RuntimeError(f"the entry was refused: {done}")
    h.settle()
    us = per_tick_us(h, ticks, rounds)
    assert h.d.positions.open_coins() == [COIN] and not h.d.orders.machines
    return us


def resting(ticks: int, rounds: int) -> float:
    h = ready()
    px = Decimal(MARKETS[COIN].oracle) * Decimal("0.99")  # under the bid: it rests
    done = h.d.host.submit(COIN, is_buy=True, size=Decimal(1), px=px, tif="Alo")
    if not done.ok:
        raise RuntimeError(f"the order was refused: {done}")
    h.settle()
    us = per_tick_us(h, ticks, rounds)
    (_info, m), *more = h.d.orders.live_orders()
    assert not more and m.state == "resting" and not h.d.positions.open_coins()
    return us


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=200, help="ticks per timed batch")
    ap.add_argument("--rounds", type=int, default=300, help="batches per case (the best counts)")
    a = ap.parse_args()
    print(f"machine calibration: sum(range(100)) = {calibration_ns():.0f} ns (idle reference 545)")
    results = {
        case: fn(a.ticks, a.rounds)
        for case, fn in (("idle", idle), ("position", position), ("resting", resting))
    }
    for case, us in results.items():
        print(f"{case}: {us:.2f} µs a tick")
    print("RESULT " + " ".join(f"{case}_tick_us={us:.2f}" for case, us in results.items()))


if __name__ == "__main__":
    main()
