"""The entry path inside the dispatcher: freshness drops READY-MD at once, per market, a book stamped in the
future is refused without blocking its market, the action budget pays only for orders sent,
and an empty book from the exchange is a halt until the book returns."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from decimal import Decimal

from hip3.events import Signal
from hip3.transport.limits import TokenBucket
from tests.runtime.fakes import MARKETS, Harness, order_wires

DAY_MS = 86_400_000


def ready_harness(**overrides) -> Harness:
    h = Harness(**overrides)
    h.start()
    h.bring_up()
    assert h.d.ready.trading(), h.d.ready.describe()
    return h


def orders_sent(h: Harness) -> int:
    return sum(len(order_wires(m)) for m in h.transport.sent)


def raw_bbo(h: Harness, coin: str, *, time_ms: int, bid: str | None, ask: str | None) -> None:
    level = {"sz": "40", "n": 3}
    bbo = [
        None if bid is None else {"px": bid, **level},
        None if ask is None else {"px": ask, **level},
    ]
    h.frame(json.dumps({"channel": "bbo", "data": {"coin": coin, "time": time_ms, "bbo": bbo}}))


def refresh(h: Harness) -> None:
    for coin in MARKETS:
        h.bbo(coin)
        h.ctx(coin)


def test_a_market_whose_context_stopped_blocks_entries_on_itself_only():
    h = ready_harness()
    d, (quiet, busy) = h.d, list(MARKETS)
    h.clock.advance(5_000)
    h.ctx(busy)  # only one market's context keeps coming (every oracle update)
    h.clock.advance(3_500)
    h.ctx(busy)
    now = h.clock.now_ns()
    # the quiet market's context is 8.5 s old: stale now, in this epoch, with no reconnect
    assert d.conn.state == "live" and d.readiness.trading_ready
    assert not d.ready.market(quiet, now)
    # the busy market's book is as old, but the context still confirms it: a quiet book
    assert d.ready.market(busy, now)
    assert d.ready.trading()  # per market: one stale market does not stop the others
    assert d.ready.stale_markets() == {quiet: "ctx_stale"}
    before = orders_sent(h)
    h.bbo(quiet, dislocated="buy")  # an opportunity on the stale market: no entry
    assert orders_sent(h) == before
    h.bbo(busy, dislocated="buy")  # the fresh market trades
    assert orders_sent(h) == before + 1
    refresh(h)  # the context again: READY-MD is back without any epoch change
    assert d.ready.market(quiet, h.clock.now_ns())


def test_a_quiet_book_stays_fresh_while_a_contradicted_one_goes_stale():
    h = ready_harness()
    d, (coin, _other) = h.d, list(MARKETS)
    h.clock.advance(6_000)
    h.ctx(coin)  # nothing changed on the book: the context's mid lies within our bid..ask
    h.clock.advance(1_000)
    assert d.ready.market(coin, h.clock.now_ns()), d.ready.stale_markets()
    # the book moves but its bbo never reaches the bot; the context's mid shows it
    h.quote(coin, dislocated="sell")
    h.delivery.publish_market_data()
    for i in h.delivery.deliverable():
        if h.delivery.frames[i].lane == "bbo:" + coin:
            h.delivery.drop(i)
            break
    h.deliver_lanes("activeAssetCtx:" + coin)
    h.clock.advance(2_000)
    assert d.ready.market(coin, h.clock.now_ns())  # a bbo in flight may still come
    h.clock.advance(1)
    assert d.ready.stale_markets()[coin] == "bbo_stale"
    assert d.ready.trading()


def test_a_book_stamped_a_day_ahead_is_dropped_and_the_market_trades_again(caplog):
    caplog.set_level(logging.WARNING, logger="hip3.market.state")
    h = ready_harness()
    d, coin = h.d, "xyz:AAA"
    st = d.markets[coin]
    adopted = (st.bbo_time_ms, st.bid_px, st.ask_px, st.bbo_updates)
    for _ in range(3):
        raw_bbo(h, coin, time_ms=h.clock.wall_ms() + DAY_MS, bid="1", ask="2")
    # dropped and counted: neither its time nor its prices reached the market state
    assert (st.bbo_time_ms, st.bid_px, st.ask_px, st.bbo_updates) == adopted
    assert st.future_books == 3
    warnings = [r for r in caplog.records if "ahead of our clock" in r.getMessage()]
    assert len(warnings) == 1 and coin in warnings[0].getMessage()
    h.clock.advance(100)
    h.bbo(coin)  # normal books resume: adopted, not taken for a time regression
    assert st.time_regressions == 0 and st.bbo_time_ms == h.clock.wall_ms()
    assert d.ready.market(coin, h.clock.now_ns()) and d.ready.trading()
    before = orders_sent(h)
    h.bbo(coin, dislocated="buy")
    assert orders_sent(h) == before + 1


def test_a_book_within_the_skew_is_adopted():
    h = ready_harness(freshness={"max_future_skew_s": 5.0})
    st = h.d.markets["xyz:AAA"]
    raw_bbo(h, "xyz:AAA", time_ms=h.clock.wall_ms() + 4_000, bid="99.9", ask="100.1")
    assert st.future_books == 0 and st.bid_px == Decimal("99.9")


def test_the_action_budget_is_spent_only_on_orders_sent():
    h = ready_harness()
    d, coin = h.d, "xyz:AAA"
    d.executor.budget = TokenBucket(1, 60.0, h.clock.now_ms())  # one entry a minute
    px = MARKETS[coin].oracle
    # refused after the gates: a size under the minimum notional cannot be built
    d.handle(Signal(coin=coin, is_buy=True, size=Decimal("0.01"), ref_px=px, edge_bps=30.0))
    assert d.executor.last_outcome == "unbuildable:NotionalError"
    before = orders_sent(h)
    d.handle(Signal(coin=coin, is_buy=True, size=Decimal("0.2"), ref_px=px, edge_bps=30.0))
    assert d.executor.last_outcome == "sent", d.executor.last_outcome
    assert orders_sent(h) == before + 1
    h.settle()
    h.bbo(coin)
    h.ctx(coin)
    # the one token is spent now; the next buildable entry is refused by the budget
    d.handle(
        Signal(coin="xyz:BBB", is_buy=True, size=Decimal("0.3"), ref_px=Decimal(50), edge_bps=30.0)
    )
    assert d.executor.last_outcome == "blocked:action_budget"


def test_an_empty_book_from_the_exchange_is_a_halt_until_the_book_returns():
    h = ready_harness()
    d, coin = h.d, "xyz:AAA"
    gate, st = d.gates[coin], d.markets[coin]
    h.clock.advance(10)
    raw_bbo(h, coin, time_ms=h.clock.wall_ms(), bid=None, ask=None)  # every order cancelled
    assert gate.check(st, h.clock.now_ns()).reason == "halted"
    assert st.halted
    h.clock.advance(10)
    h.bbo(coin)  # makers quote again: trading resumed
    assert not st.halted
    assert gate.check(st, h.clock.now_ns()).ok


def _rediscover(h: Harness, coin: str, sz_step: int) -> dict:
    specs = {
        c: replace(s, sz_decimals=s.sz_decimals + sz_step) if c == coin else s
        for c, s in h.d.specs.items()
    }
    h.d.reconciler.apply_specs(specs)
    return specs


def test_the_parameter_change_latch_opens_when_the_parameters_change_back():
    h = ready_harness(detector={"kind": "full"})
    gate = h.d.gates["xyz:AAA"]
    _rediscover(h, "xyz:AAA", +1)
    assert gate.param_changed
    _rediscover(h, "xyz:AAA", -1)  # the next discovery shows the accepted parameters again
    assert not gate.param_changed


def test_the_operator_accepts_changed_parameters():
    h = ready_harness(detector={"kind": "full"})
    gate, other = h.d.gates["xyz:AAA"], h.d.gates["xyz:BBB"]
    _rediscover(h, "xyz:AAA", +1)
    assert gate.param_changed
    h.operator("accept_params")  # SIGHUP
    assert not gate.param_changed and not other.param_changed
    st = h.d.markets["xyz:AAA"]
    assert gate.check(st, h.clock.now_ns()).reason != "param_change"


def test_the_status_view_shows_the_one_freshness_verdict():
    from hip3.metrics.status import render_status

    h = ready_harness()
    coin, other = "xyz:AAA", "xyz:BBB"
    raw_bbo(h, coin, time_ms=h.clock.wall_ms() + DAY_MS, bid="1", ask="2")
    h.clock.advance(10)
    raw_bbo(h, other, time_ms=h.clock.wall_ms(), bid=None, ask=None)
    rows = {
        line.split()[0]: line
        for line in render_status(h.d, h.clock.now_ns()).splitlines()[1:]
        if line
    }
    assert "fresh (1 future books dropped)" in rows[coin]
    assert "halted" in rows[other]
    h.clock.advance(8_500)
    text = render_status(h.d, h.clock.now_ns())
    assert "ctx_stale" in text
