"""The liquidation-buffer gate inside the dispatcher: the taker's entry and a strategy's order
are refused when the leverage the bot set leaves too little buffer, pass when it leaves
enough, a market's own ratio replaces the default, and a ratio without a leverage to judge
it by is a configuration error."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hip3.config import ConfigError, MarketConfig, load_config
from hip3.runtime.whole_dex import expand_markets
from tests.runtime.fakes import COINS, MARKETS, Harness, order_wires

AAA, BBB = COINS


def entries_sent(h: Harness) -> int:
    return sum(1 for m in h.transport.sent for w in order_wires(m) if not w["r"])


def ready(**overrides) -> Harness:
    h = Harness(exits={"mark_regression_enabled": False}, **overrides)
    h.start()
    h.bring_up()
    h.tick(100)  # the leverage is asked (and set) on a tick once the account is verified
    h.settle()
    return h


def dislocate(h: Harness, coin: str = AAA) -> None:
    for c in MARKETS:  # every market fresh, so READY-TRADING holds
        h.bbo(c)
        h.ctx(c)
    h.market_moves(coin, dislocated="buy")
    h.deliver_lanes("activeAssetCtx:" + coin)
    h.deliver_lanes("bbo:" + coin)


def test_an_entry_at_high_leverage_is_refused_with_its_numbers():
    # xyz:AAA is isolated-only with maxLeverage 10: at 10x a fresh long's buffer is about
    # (1/10 - 1/20) / (1 - 1/20) = 5.3 %, under 20 %
    h = ready(margin={"leverage": 10}, entry_guards={"min_liq_buffer_ratio": 0.2})
    assert h.d.leverage.settings[AAA] == (False, 10)
    dislocate(h)
    assert entries_sent(h) == 0
    assert h.d.executor.blocked["liq_buffer"] >= 1
    why = h.d.liq_buffer.last_refusal
    assert why.startswith("xyz:AAA: buy ") and "(isolated 10x, maxLeverage 10)" in why, why
    assert "below the buffer 20.00%" in why
    assert Decimal("0.04") < h.d.liq_buffer.projections[AAA].buffer < Decimal("0.06")


def test_an_entry_at_low_leverage_goes_out():
    # at 2x: (1/2 - 1/20) / (1 - 1/20) = 47 %
    h = ready(margin={"leverage": 2}, entry_guards={"min_liq_buffer_ratio": 0.2})
    dislocate(h)
    assert entries_sent(h) == 1, h.d.executor.blocked
    assert Decimal("0.45") < h.d.liq_buffer.projections[AAA].buffer < Decimal("0.49")


def test_a_strategy_order_that_grows_a_position_passes_the_gate_too():
    h = ready(
        margin={"leverage": 10},
        entry_guards={"min_liq_buffer_ratio": 0.2},
        markets=[{"coin": AAA}, {"coin": BBB, "min_liq_buffer_ratio": 0.0}],
    )
    for c in MARKETS:
        h.bbo(c)
        h.ctx(c)
    ex, clock = h.d.executor, h.clock
    px = MARKETS[AAA].oracle * Decimal("0.9")
    action = h.d.host.submit(AAA, is_buy=True, size=Decimal(1), px=px)
    assert (action.cloid, action.refused) == (None, "liq_buffer")
    assert action.detail is not None and action.detail.startswith("xyz:AAA: buy 1 at ")
    assert "(isolated 10x, maxLeverage 10)" in action.detail
    assert ex.blocked["strategy:liq_buffer"] == 1
    # BBB's own ratio of 0 turns the gate off there
    cloid, why = ex.place(
        coin=BBB,
        is_buy=True,
        size=Decimal(1),
        px=MARKETS[BBB].oracle * Decimal("0.9"),
        tif="Gtc",
        reduce_only=False,
        now_ms=clock.now_ms(),
        now_ns=clock.now_ns(),
    )
    assert why is None and cloid is not None


def test_a_buffer_without_a_leverage_is_a_configuration_error():
    with pytest.raises(ConfigError, match=r"min_liq_buffer_ratio = 0.15 for xyz:AAA: expected a "):
        load_config(overrides={"entry_guards": {"min_liq_buffer_ratio": 0.15}})
    with pytest.raises(ConfigError, match=r"min_liq_buffer_ratio = 0.2 for xyz:BBB"):
        load_config(
            overrides={
                "markets": [{"coin": "xyz:AAA"}, {"coin": "xyz:BBB", "min_liq_buffer_ratio": 0.2}],
                "entry_guards": {"min_liq_buffer_ratio": 0.0},
            }
        )
    ok = load_config(
        overrides={
            "markets": [{"coin": "xyz:AAA", "leverage": 3, "min_liq_buffer_ratio": 0.3}],
            "entry_guards": {"min_liq_buffer_ratio": 0.15},
        }
    )
    assert ok.liq_buffer_ratio_for("xyz:AAA") == 0.3
    assert ok.liq_buffer_ratio_for("xyz:ZZZ") == 0.15


def test_a_whole_dex_entry_gives_its_buffer_to_every_market_it_lists():
    meta = {
        "universe": [{"name": "xyz:AAA", "szDecimals": 2}, {"name": "xyz:BBB", "szDecimals": 1}]
    }
    wild = MarketConfig(coin="xyz:*", leverage=3, min_liq_buffer_ratio=0.25)
    out = expand_markets((wild,), {"xyz": meta})
    assert {m.coin: m.min_liq_buffer_ratio for m in out} == {AAA: 0.25, BBB: 0.25}


def test_after_its_own_fill_the_gate_waits_for_a_fresh_state_read():
    h = ready(margin={"leverage": 2}, entry_guards={"min_liq_buffer_ratio": 0.2})
    for c in MARKETS:
        h.bbo(c)
        h.ctx(c)
    ex, clock = h.d.executor, h.clock

    def buy(size: str) -> tuple[str | None, str | None]:
        return ex.place(
            coin=AAA,
            is_buy=True,
            size=Decimal(size),
            px=MARKETS[AAA].oracle * Decimal("1.02"),
            tif="Ioc",
            reduce_only=False,
            now_ms=clock.now_ms(),
            now_ns=clock.now_ns(),
        )

    cloid, why = buy("0.3")
    assert why is None and cloid is not None
    h.settle()
    assert h.bot_positions() == h.true_positions() == {AAA: Decimal("0.3")}
    reads = h.d.counters["margin_read"]
    # the last read predates the fill: refused, and the dex is read again
    assert buy("0.3") == (None, "liq_buffer")
    assert "the state read (0) is behind the tracked position (0.3)" in h.d.liq_buffer.last_refusal
    assert h.d.counters["margin_read"] == reads + 1
    h.settle()
    cloid, why = buy("0.3")
    assert why is None and cloid is not None, h.d.liq_buffer.last_refusal
    assert h.d.liq_buffer.projections[AAA].size == Decimal("0.6")
