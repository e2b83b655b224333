"""The liquidation-buffer gate with worked numbers: the docs' own clearinghouseState example,
isolated and cross entries long and short, an existing position, the boundary exactly at the
ratio, and every missing fact refusing with its reason."""

from __future__ import annotations

from decimal import Decimal as D
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.execution.liquidation import (
    LIQ_BUFFER,
    DexMargin,
    LiquidationBuffer,
    liquidation_px,
    maintenance_rate,
    project,
)
from hip3.market.state import MarketSpec

AAA, BBB, CCC = "xyz:AAA", "xyz:BBB", "xyz:CCC"


def position(coin, szi, value, *, cross, max_lev=10, used="0", lev=5, raw_usd=None):
    leverage = {"type": "cross" if cross else "isolated", "value": lev}
    if not cross:
        leverage["rawUsd"] = raw_usd if raw_usd is not None else str(D(used) - D(value))
    return {
        "type": "oneWay",
        "position": {
            "coin": coin,
            "szi": szi,
            "entryPx": "1",
            "positionValue": value,
            "marginUsed": used,
            "maxLeverage": max_lev,
            "leverage": leverage,
            "liquidationPx": None,
        },
    }


def state(account_value: str, *positions: dict) -> dict:
    return {
        "assetPositions": list(positions),
        "marginSummary": {"accountValue": account_value},
        "withdrawable": "0",
    }


def gate(
    *,
    ratio="0.15",
    mark="25",
    setting=(False, 5),
    tracked=None,
    dex_state=None,
    max_lev=10,
) -> LiquidationBuffer:
    specs = {
        c: MarketSpec(coin=c, dex="xyz", asset=110000, sz_decimals=2, max_leverage=max_lev)
        for c in (AAA, BBB, CCC)
    }
    g = LiquidationBuffer(
        ratios={AAA: D(ratio), BBB: D(0)},
        specs=specs,
        markets={AAA: SimpleNamespace(mark_px=None if mark is None else D(mark))},
        settings={AAA: setting}.get if setting is not None else (lambda c: None),
        tracked_size=lambda c: D((tracked or {}).get(c, "0")),
    )
    if dex_state is not None:
        g.note_state("xyz", dex_state)
    return g


def test_the_formula_gives_the_docs_example_liquidation_price():
    # the clearinghouseState example of the exchange's docs (info endpoint, perpetuals): ETH
    # long 0.0335, isolated 20x, maxLeverage 50, liquidationPx 2866.26936529
    answer = state(
        "13109.482328",
        position(
            "ETH",
            "0.0335",
            "100.02765",
            cross=False,
            max_lev=50,
            lev=20,
            used="4.967826",
            raw_usd="-95.059824",
        ),
    )
    held = DexMargin.from_state(answer).positions["ETH"]
    mark = held.read_mark
    available = held.margin_used - held.position_value * maintenance_rate(50)
    liq = liquidation_px(
        mark=mark, size=held.szi, margin_available=available, rate=maintenance_rate(50)
    )
    assert abs(liq - D("2866.26936529")) < D("0.01")


def test_isolated_long_entry_worked_numbers():
    # buy 10 at 25.1, mark 25, isolated 5x, maxLeverage 10 (maintenance 5 %):
    # margin 10 x 25.1 / 5 = 50.2, less the fill's 1.0 below the mark = 49.2; above maintenance
    # (10 x 25 x 0.05 = 12.5): 36.7; liquidation 25 - 36.7 / 10 / 0.95 = 21.136842...
    g = gate(ratio="0.15", dex_state=state("1000"))
    assert g.refusal(AAA, is_buy=True, size=D(10), px=D("25.1")) is None
    proj = g.projections[AAA]
    assert proj.size == 10
    assert abs(proj.liquidation_px - D("21.1368421")) < D("1e-6")
    assert abs(proj.buffer - D("0.1545263")) < D("1e-6")
    strict = gate(ratio="0.16", dex_state=state("1000"))
    assert strict.refusal(AAA, is_buy=True, size=D(10), px=D("25.1")) == LIQ_BUFFER
    assert "liquidation price ~21.1368" in strict.last_refusal
    assert "15.45% from mark 25, below the buffer 16.00%" in strict.last_refusal


def test_isolated_short_entry_worked_numbers():
    # sell 10 at 24.9, mark 25: margin 10 x 24.9 / 5 - 10 x 0.1 = 48.8, less 12.5 = 36.3;
    # liquidation 25 + 36.3 / 10 / 1.05 = 28.457142..., 13.83 % above the mark
    g = gate(ratio="0.15", dex_state=state("1000"))
    assert g.refusal(AAA, is_buy=False, size=D(10), px=D("24.9")) == LIQ_BUFFER
    proj = g.projections[AAA]
    assert proj.size == -10
    assert abs(proj.liquidation_px - D("28.4571429")) < D("1e-6")
    assert abs(proj.buffer - D("0.1382857")) < D("1e-6")
    assert (
        gate(ratio="0.13", dex_state=state("1000")).refusal(
            AAA, is_buy=False, size=D(10), px=D("24.9")
        )
        is None
    )


def test_cross_long_counts_other_positions_and_leaves_isolated_margin_out():
    # account value 250, of which 50 is CCC's isolated margin: the cross account value is 200;
    # BBB's cross short (value 360, maxLeverage 10) keeps 18 of it as maintenance: 182.
    # Buy 20 AAA at 25, mark 25, cross: 182 - 20 x 25 x 0.05 = 157 above maintenance;
    # liquidation 25 - 157 / 20 / 0.95 = 16.736842..., 33.05 % below the mark.
    dex = state(
        "250",
        position(BBB, "-2", "360", cross=True, used="36"),
        position(CCC, "1", "100", cross=False, used="50"),
    )
    g = gate(ratio="0.33", setting=(True, 10), dex_state=dex, tracked={BBB: "-2", CCC: "1"})
    assert g.refusal(AAA, is_buy=True, size=D(20), px=D(25)) is None
    proj = g.projections[AAA]
    assert abs(proj.liquidation_px - D("16.7368421")) < D("1e-6")
    assert abs(proj.buffer - D("0.3305263")) < D("1e-6")
    g2 = gate(ratio="0.34", setting=(True, 10), dex_state=dex, tracked={BBB: "-2", CCC: "1"})
    assert g2.refusal(AAA, is_buy=True, size=D(20), px=D(25)) == LIQ_BUFFER


def test_cross_short_adding_to_an_existing_position_marks_it_to_the_mark():
    # AAA cross short 10 read at 25 (value 250); the mark is now 26, costing 10. Sell 10 more
    # at 25.9: the fill costs 1 at the mark. 200 - 10 - 1 = 189, less maintenance of 20 x 26 x
    # 0.05 = 26: 163; liquidation 26 + 163 / 20 / 1.05 = 33.761904..., 29.85 % above the mark.
    dex = state("200", position(AAA, "-10", "250", cross=True, used="25"))
    g = gate(ratio="0.25", mark="26", setting=(True, 10), dex_state=dex, tracked={AAA: "-10"})
    assert g.refusal(AAA, is_buy=False, size=D(10), px=D("25.9")) is None
    proj = g.projections[AAA]
    assert proj.size == -20
    assert abs(proj.liquidation_px - D("33.7619048")) < D("1e-6")
    assert abs(proj.buffer - D("0.2985348")) < D("1e-6")


def test_isolated_add_to_an_existing_position_keeps_its_margin():
    # AAA isolated long 10, margin with PnL 50 read at mark 25 (value 250); the mark is now 24
    # (-10). Buy 10 more at 24: + 10 x 24 / 5 = 48. 50 - 10 + 48 = 88, less 20 x 24 x 0.05 =
    # 24: 64; liquidation 24 - 64 / 20 / 0.95 = 20.631578..., 14.04 % below the mark.
    dex = state("1000", position(AAA, "10", "250", cross=False, used="50"))
    g = gate(ratio="0.15", mark="24", dex_state=dex, tracked={AAA: "10"})
    assert g.refusal(AAA, is_buy=True, size=D(10), px=D(24)) == LIQ_BUFFER
    assert abs(g.projections[AAA].liquidation_px - D("20.6315789")) < D("1e-6")
    # selling part of it back only moves it away from liquidation: never refused
    assert g.refusal(AAA, is_buy=False, size=D(5), px=D(24)) is None


def test_the_boundary_exactly_at_the_ratio_passes():
    # cross, account value 48, buy 10 at 20, mark 20, maxLeverage 10: 48 - 10 = 38 above
    # maintenance; liquidation 20 - 38 / 10 / 0.95 = 16 exactly, a buffer of exactly 0.2
    dex = state("48")
    at = gate(ratio="0.2", mark="20", setting=(True, 10), dex_state=dex)
    assert at.refusal(AAA, is_buy=True, size=D(10), px=D(20)) is None
    assert at.projections[AAA].liquidation_px == 16 and at.projections[AAA].buffer == D("0.2")
    above = gate(ratio="0.2000001", mark="20", setting=(True, 10), dex_state=dex)
    assert above.refusal(AAA, is_buy=True, size=D(10), px=D(20)) == LIQ_BUFFER


def test_a_long_no_price_can_liquidate_passes_any_ratio():
    g = gate(ratio="1", setting=(True, 10), dex_state=state("100000"))
    assert g.refusal(AAA, is_buy=True, size=D(1), px=D(25)) is None
    assert g.projections[AAA].liquidation_px < 0


def test_a_market_without_a_buffer_is_not_judged():
    g = gate(dex_state=None)
    assert g.refusal(BBB, is_buy=True, size=D(1000), px=D(25)) is None
    assert gate(ratio="0").active is False


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"dex_state": None}, "no account value of dex xyz read yet"),
        ({"dex_state": {"marginSummary": {}}}, "no account value of dex xyz read yet"),
        ({"dex_state": state("1000"), "mark": None}, "no mark price yet"),
        ({"dex_state": state("1000"), "setting": None}, "no leverage confirmed"),
        (
            {"dex_state": state("1000"), "tracked": {AAA: "3"}},
            "the state read (0) is behind the tracked position (3)",
        ),
        (
            {
                "dex_state": state("1000", {"position": {"coin": AAA, "szi": "1"}}),
                "tracked": {AAA: "1"},
            },
            "the state read's position is unreadable",
        ),
        (
            {
                "dex_state": state("1000", {"position": {"coin": BBB, "szi": "1"}}),
                "setting": (True, 5),
            },
            "the state read's position in xyz:BBB is unreadable",
        ),
        (
            {
                "dex_state": state("1000", position(AAA, "1", "25", cross=True)),
                "tracked": {AAA: "1"},
            },
            "the position is cross, the setting isolated",
        ),
    ],
)
def test_missing_facts_refuse_and_say_which(kwargs, reason):
    g = gate(**kwargs)
    assert g.refusal(AAA, is_buy=True, size=D(1), px=D(25)) == LIQ_BUFFER
    assert reason in g.last_refusal, g.last_refusal
    assert g.last_refusal.startswith("xyz:AAA: liquidation buffer unknown: ")


@given(
    cross=st.booleans(),
    is_buy=st.booleans(),
    size=st.decimals(min_value="0.01", max_value="1000", places=2),
    mark=st.decimals(min_value="0.5", max_value="100000", places=3),
    slip_bps=st.integers(min_value=-30, max_value=30),
    leverage=st.integers(min_value=1, max_value=50),
    max_lev=st.integers(min_value=1, max_value=50),
    account=st.decimals(min_value="1", max_value="1000000", places=2),
)
def test_at_the_projected_price_the_margin_equals_the_maintenance(
    cross, is_buy, size, mark, slip_bps, leverage, max_lev, account
):
    # from first principles, not from the formula: at price P a fresh position's margin is
    # (cross) the account value plus the fill's PnL at P, or (isolated) the order's initial
    # margin plus that PnL; liquidation is where it equals the maintenance margin at P
    leverage = min(leverage, max_lev)
    px = mark * (1 + D(slip_bps) / 10_000)
    proj = project(
        coin=AAA, is_buy=is_buy, size=size, px=px, mark=mark, is_cross=cross,
        leverage=leverage, max_leverage=max_lev, dex=DexMargin.from_state(state(str(account))),
    )  # fmt: skip
    d = size if is_buy else -size
    p = proj.liquidation_px
    margin = (account if cross else size * px / leverage) + d * (p - px)
    maintenance = size * p / (2 * max_lev)
    assert abs(margin - maintenance) <= D("1e-12") * (size * mark + account)
    # and the buffer is the distance from the mark on the losing side
    assert proj.buffer == ((mark - p) if is_buy else (p - mark)) / mark
