"""A strategy's actions pass the same gates as the built-in entries (HardStop, READY, risk
limits, action budget, outbound limits) and its resting orders, modifies and cancels run
through their order machines, with the strategy told of each change after the event."""

from __future__ import annotations

from decimal import Decimal

from hip3.strategy.api import Fill, OrderUpdate, ReadyChange, Strategy, Timer
from hip3.transport.limits import TokenBucket
from tests.runtime.fakes import MARKETS, Harness

COIN = "xyz:AAA"


class Recorder(Strategy):
    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.updates: list[OrderUpdate] = []
        self.fills: list[Fill] = []
        self.ready: list[bool] = []
        self.timers: list[Timer] = []

    def on_start(self) -> None:
        self.ctx.set_timer("once", after_ms=1_000)
        self.ctx.set_timer("every", after_ms=0, every_ms=500)

    def on_order(self, update: OrderUpdate) -> None:
        self.updates.append(update)

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)

    def on_ready(self, change: ReadyChange) -> None:
        self.ready.append(change.trading)

    def on_timer(self, timer: Timer) -> None:
        self.timers.append(timer)


def harness(up: bool = True, **overrides) -> tuple[Harness, Recorder]:
    h = Harness(**overrides)
    probe = Recorder(h.d.host)
    h.d.strategy = probe
    h.d.host.attach(probe)
    if up:
        h.start()
        h.bring_up()
    return h, probe


def bid_below(pct: str = "0.01") -> Decimal:
    return Decimal(MARKETS[COIN].oracle) * (1 - Decimal(pct))


def submit(h: Harness, **kw):
    return h.d.host.submit(COIN, is_buy=True, size=Decimal(1), px=bid_below(), tif="Alo", **kw)


def test_a_resting_order_is_modified_and_cancelled_through_its_machines():
    h, probe = harness()
    first = submit(h)
    assert first.ok, first
    h.settle()
    assert h.d.orders.machines[first.cloid].state == "resting"
    assert [u.state for u in probe.updates] == ["sent", "resting"]
    moved = h.d.host.modify(first.cloid, px=bid_below("0.02"))
    assert moved.ok and moved.cloid != first.cloid
    h.settle()
    assert h.d.orders.was_terminal(first.cloid) == "cancelled"
    assert h.d.orders.machines[moved.cloid].state == "resting"
    (listed,) = h.true_open_orders()
    assert Decimal(str(listed["limitPx"])) < bid_below()
    assert h.d.host.cancel(moved.cloid).ok
    h.settle()
    assert h.true_open_orders() == []
    assert h.d.orders.was_terminal(moved.cloid) == "cancelled"
    assert probe.updates[-1].cloid == moved.cloid and probe.updates[-1].state == "cancelled"


def test_not_ready_refuses_before_the_connection_is_up():
    h, _ = harness(up=False)
    h.start()
    assert submit(h).refused == "not_ready"
    assert h.delivery.requests == []


def test_hardstop_refuses_every_order():
    h, _ = harness()
    h.operator("hardstop")
    h.settle()
    done = submit(h)
    assert done.refused == "hardstop"


def test_risk_limits_refuse_an_order_beyond_the_market_notional():
    h, _ = harness(risk={"max_notional_per_market_usd": 150.0})
    assert submit(h).ok  # about 99 USD
    h.settle()
    # the resting order counts: a second one would take the market beyond 150 USD
    assert submit(h).refused == "market_notional"


def test_the_action_budget_and_the_outbound_limit_refuse():
    h, _ = harness(risk={"max_notional_per_market_usd": 1000.0, "max_total_notional_usd": 1000.0})
    h.d.executor.budget = TokenBucket(1, 0.001, h.clock.now_ms())
    assert submit(h).ok
    assert submit(h).refused == "action_budget"
    h.d.executor.budget = TokenBucket(100, 100.0, h.clock.now_ms())
    now = h.clock.now_ms()
    h.d.wire.bucket = TokenBucket(1, 0.001, now)  # the messages-per-minute limit, spent
    h.d.wire.bucket.try_take(now)
    before = len(h.delivery.requests)
    assert submit(h).refused == "outbound_limit"
    assert len(h.delivery.requests) == before


def test_timers_run_on_the_runtime_clock():
    h, probe = harness(up=False)
    h.start()
    start = h.clock.now_ms()
    h.tick(100)
    assert [t.name for t in probe.timers] == ["every"]
    h.tick(400)  # 500 ms in: "every" again
    h.tick(499)  # 999 ms: nothing due
    h.tick(1)  # 1000 ms: both, the one due first first
    assert [(t.name, t.now_ms - start) for t in probe.timers] == [
        ("every", 100),
        ("every", 500),
        ("every", 1000),
        ("once", 1000),
    ]
    h.d.host.cancel_timer("every")
    h.tick(5_000)
    assert len(probe.timers) == 4


def test_fills_and_ready_changes_reach_the_strategy():
    h, probe = harness(risk={"max_notional_per_market_usd": 200.0})
    assert probe.ready == [True]
    px = Decimal(MARKETS[COIN].oracle) * Decimal("1.02")  # takes the ask at once
    done = h.d.host.submit(COIN, is_buy=True, size=Decimal(1), px=px, tif="Ioc")
    assert done.ok, done
    h.settle()
    (fill,) = probe.fills
    assert fill.cloid == done.cloid and fill.is_buy and fill.sz == Decimal(1)
    assert fill.position == h.d.host.position(COIN) == Decimal(1)
    assert probe.updates[-1].state == "filled" and probe.updates[-1].is_final
    h.drop_socket()
    assert probe.ready == [True, False]
