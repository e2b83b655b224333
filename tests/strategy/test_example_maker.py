"""The example maker's prices, worked by hand: each quote sits the half-spread from the oracle,
widened to the maker fee plus `edge_bps` when the fee view says the half-spread would not cover
them, then skewed by inventory."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from hip3.strategy.loader import load_strategy_class, strategy_params

MAKER = str(Path(__file__).resolve().parents[2] / "examples" / "maker.py") + ":AloMaker"
D = Decimal


class FeeContext:
    """The three views `wanted` reads: the oracle, the position and the maker fee."""

    def __init__(self, *, oracle: str, maker_bps: str, position: str = "0") -> None:
        self._market = SimpleNamespace(oracle_px=D(oracle))
        self._maker = D(maker_bps)
        self._position = D(position)

    def market(self, coin: str):
        return self._market

    def position(self, coin: str) -> Decimal:
        return self._position

    def maker_fee_bps(self, coin: str) -> Decimal:
        return self._maker


def maker(ctx: FeeContext, **params):
    cls = load_strategy_class(MAKER)
    return cls(ctx, strategy_params(cls, {"coin": "xyz:AAA", **params}))


@pytest.mark.parametrize(
    ("maker_bps", "params", "bid", "ask"),
    [
        # 4 bps does not cover a 3 bps fee plus 2 bps of edge: quoted 5 bps out
        ("3", {"half_spread_bps": 4, "edge_bps": 2}, "24.9875", "25.0125"),
        # 30 bps covers it: the configured half-spread stands
        ("3", {"half_spread_bps": 30, "edge_bps": 2}, "24.925", "25.075"),
        # growth mode's 0.3 bps fee: 1 bps is enough for 0.5 bps of edge
        ("0.3", {"half_spread_bps": 1, "edge_bps": "0.5"}, "24.9975", "25.0025"),
        # a rebate lowers the floor below zero: the half-spread decides
        ("-0.2", {"half_spread_bps": "0.5", "edge_bps": 0}, "24.99875", "25.00125"),
    ],
)
def test_the_half_spread_covers_the_maker_fee_and_the_edge(maker_bps, params, bid, ask):
    m = maker(FeeContext(oracle="25", maker_bps=maker_bps), **params)
    assert m.wanted() == {True: D(bid), False: D(ask)}


def test_the_skew_moves_both_quotes_from_the_fee_floor():
    # long 1.5 of 3: lean 0.5 x 20 bps = both quotes 10 bps lower, from the 5 bps floor
    ctx = FeeContext(oracle="25", maker_bps="3", position="1.5")
    m = maker(ctx, half_spread_bps=4, edge_bps=2, skew_bps=20, max_position=3)
    assert m.wanted() == {True: D("24.9625"), False: D("24.9875")}


def test_a_negative_edge_is_a_config_error():
    cls = load_strategy_class(MAKER)
    with pytest.raises(ValueError, match="edge_bps must be >= 0"):
        strategy_params(cls, {"coin": "xyz:AAA", "edge_bps": -1})
