"""The components the 100 ms timer asks on every tick keep what lets them answer "nothing
due" cheaply (the strategy's timers: their earliest due time; the risk check: the realized
PnL as of the last fill), and they are never late for it: each test replays random histories
against the plain rule that walked everything on every tick (the posts' deadlines are tested
beside the post book, tests/transport/test_posts.py)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.execution.positions import FillRecord, PositionTracker
from hip3.runtime.strategy_host import StrategyHost
from hip3.strategy.api import Strategy, Timer
from tests.runtime.fakes import MARKETS, FakeClock, Harness

# --- the strategy's timers ------------------------------------------------------------------

NAMES = ("a", "b", "c")
_set = st.tuples(
    st.just("set"),
    st.sampled_from(NAMES),
    st.sampled_from([0, 50, 100, 250, 1_000]),  # after_ms
    st.sampled_from([None, 0, 100, 100, 150, 300]),  # every_ms
)
_cancel = st.tuples(st.just("cancel"), st.sampled_from(NAMES))
# what a timer's callback does when it fires (by the firing timer's name): set or cancel one
_reactions = st.dictionaries(st.sampled_from(NAMES), _set | _cancel, max_size=2)
# between ticks: now and then a timer set or cancelled from outside a callback, then time
# passes (mostly a whole tick; sometimes none, or just short of or past one)
_steps = st.lists(
    st.tuples(
        st.lists(_set | _cancel, max_size=1),
        st.sampled_from([0, 1, 49, 50, 99, 100, 100, 100, 100, 250]),
    ),
    max_size=30,
)


class ReferenceTimers:
    """The rule as it was: on every tick, every timer due by then, in (due, name) order."""

    def __init__(self) -> None:
        self.timers: dict[str, tuple[int, int | None]] = {}

    def apply(self, op: tuple, now: int) -> None:
        if op[0] == "set":
            _, name, after, every = op
            self.timers[name] = (now + after, every)
        else:
            self.timers.pop(op[1], None)

    def tick(self, now: int, reactions: dict, fired: list) -> None:
        for _at, name in sorted((t[0], n) for n, t in self.timers.items() if t[0] <= now):
            timer = self.timers.get(name)
            if timer is None or timer[0] > now:
                continue
            at, every = timer
            if every is None:
                del self.timers[name]
            else:
                following = at + every
                self.timers[name] = (following if following > now else now + every, every)
            fired.append((name, now))
            if name in reactions:
                self.apply(reactions[name], now)


class Scripted(Strategy):
    """Records each timer it is told of and reacts as the script says."""

    def __init__(self, ctx: StrategyHost, reactions: dict) -> None:
        super().__init__(ctx)
        self.reactions = reactions
        self.fired: list[tuple[str, int]] = []

    def on_timer(self, timer: Timer) -> None:
        self.fired.append((timer.name, timer.now_ms))
        op = self.reactions.get(timer.name)
        if op is not None:
            apply_to_host(self.ctx, op)


def apply_to_host(host: StrategyHost, op: tuple) -> None:
    if op[0] == "set":
        _, name, after, every = op
        host.set_timer(name, after_ms=after, every_ms=every)
    else:
        host.cancel_timer(op[1])


def timer_host(clock: FakeClock) -> StrategyHost:
    """A host with nothing but a clock: its timers need no other collaborator."""
    return StrategyHost(
        coins=[],
        markets={},
        positions=None,
        orders=None,
        flatten={},
        hardstop=None,
        executor=None,
        ready=None,
        specs={},
        fees=None,  # type: ignore[arg-type]
        priority=None,  # type: ignore[arg-type]
        recorder=None,  # type: ignore[arg-type]
        first_data=lambda key: None,
        request_flatten=lambda coin, reason: None,
        clock=clock,
        counters=Counter(),
    )


@given(st.lists(_set, min_size=1, max_size=3), _steps, _reactions)
def test_a_timer_fires_on_the_first_tick_at_or_after_its_due_time(
    first: list, steps: list, reactions: dict
) -> None:
    clock = FakeClock()
    host = timer_host(clock)
    strategy = Scripted(host, reactions)
    host.attach(strategy)
    reference = ReferenceTimers()
    expected: list[tuple[str, int]] = []
    for ops, advance in [(first, 0), *steps]:
        for op in ops:
            apply_to_host(host, op)
            reference.apply(op, clock.now_ms())
        clock.advance(advance)
        host.tick(clock.now_ms())
        reference.tick(clock.now_ms(), reactions, expected)
        assert strategy.fired == expected


@pytest.mark.parametrize(
    ("after", "every", "advances", "fired_at"),
    [
        (0, 0, [0, 0, 0], [0, 0, 0]),  # due on every tick, even one at the same millisecond
        (0, 100, [100, 100, 100], [100, 200, 300]),  # the built-in cadence: every tick
        (100, 100, [99, 1, 100, 99, 1], [100, 200, 300]),  # never a tick late
        (50, 150, [100, 100, 100, 100], [100, 200, 400]),  # ticks missed are skipped
        (250, None, [100, 100, 100, 100], [300]),  # once
    ],
)
def test_a_timer_fires_on_these_ticks(
    after: int, every: int | None, advances: list[int], fired_at: list[int]
) -> None:
    clock = FakeClock()
    start = clock.now_ms()
    host = timer_host(clock)
    strategy = Scripted(host, {})
    host.attach(strategy)
    host.set_timer("t", after_ms=after, every_ms=every)
    for advance in advances:
        clock.advance(advance)
        host.tick(clock.now_ms())
    assert [at - start for _name, at in strategy.fired] == fired_at


# --- the realized PnL the risk check reads on every tick -------------------------------------

_fills = st.lists(
    st.tuples(
        st.decimals(-50, 50, places=4),  # closed PnL
        st.decimals(0, 1, places=6),  # fee
        st.booleans(),  # asked for the net before this fill
    ),
    max_size=20,
)


@given(_fills)
def test_the_realized_net_of_fees_follows_every_fill(fills: list) -> None:
    pt = PositionTracker(session_start_ms=0)
    for tid, (pnl, fee, ask_first) in enumerate(fills, start=1):
        if ask_first:
            assert pt.realized_net_of_fees() == pt.realized() - pt.total_fees()
        pt.apply(
            FillRecord(
                tid=tid,
                coin="xyz:AAA" if tid % 2 else "xyz:BBB",
                is_buy=tid % 3 == 0,
                px=Decimal(100),
                sz=Decimal(1),
                fee=fee,
                closed_pnl=pnl,
                oid=tid,
                cloid=None,
                time_ms=tid,
            ),
            snapshot=False,
            known_order=True,
        )
        assert pt.realized_net_of_fees() == pt.realized() - pt.total_fees()


def test_the_loss_limit_trips_on_the_tick_after_the_fills_that_reach_it() -> None:
    """The risk check sums the realized PnL again only after a fill: a round trip that loses
    more than the limit (here its fees alone) trips the HardStop on the next tick, even though
    the tick before had summed it at zero."""
    h = Harness(risk={"loss_limit_usd": 0.01, "max_notional_per_market_usd": 200.0})
    h.start()
    h.bring_up()
    h.tick(100)
    assert h.d.hardstop.is_armed
    coin = "xyz:AAA"
    oracle = Decimal(MARKETS[coin].oracle)
    bought = h.d.host.submit(
        coin, is_buy=True, size=Decimal(1), px=oracle * Decimal("1.02"), tif="Ioc"
    )
    assert bought.ok, bought
    h.settle()
    sold = h.d.host.submit(
        coin,
        is_buy=False,
        size=Decimal(1),
        px=oracle * Decimal("0.98"),
        tif="Ioc",
        reduce_only=True,
    )
    assert sold.ok, sold
    h.settle()
    assert h.d.positions.size(coin) == 0 and h.d.positions.total_fees() > 0
    assert h.d.hardstop.is_armed  # nothing checks the limit between ticks
    h.tick(100)
    assert not h.d.hardstop.is_armed
    assert any("loss limit" in r for r in h.d.hardstop.reasons), h.d.hardstop.reasons
