"""The mark-regression extras with worked numbers: quick profit, edge evaporation, entry-edge
scaling, time decay and the minimum-loss skip, each at its threshold."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.config import load_config
from hip3.strategy.exits import ExitParams, ExitPolicy
from hip3.strategy.mark_exit import (
    EDGE_EVAPORATION,
    MARK_REGRESSION,
    QUICK_PROFIT,
    MarkExit,
    MarkExitParams,
)
from tests.strategy import Feed

D = Decimal


def check(
    params: MarkExitParams, *, long=True, entry="100", held=5_000, bid, ask, oracle="100", edge=None
):
    return MarkExit(params).check(
        is_long=long,
        entry_px=D(entry),
        held_ms=held,
        bid=None if bid is None else D(bid),
        ask=None if ask is None else D(ask),
        oracle=None if oracle is None else D(oracle),
        entry_edge_bps=None if edge is None else D(edge),
    )


QP = MarkExitParams(quick_profit_bps=D(3), quick_profit_min_hold_ms=500, threshold_bps=D(0))


@pytest.mark.parametrize(
    ("long", "bid", "ask", "held", "expected"),
    [
        # long from 100: the bid 3 bps up is the profit (oracle far above: no regression)
        (True, "100.03", "100.05", 500, QUICK_PROFIT),
        (True, "100.029", "100.05", 500, None),
        (True, "100.03", "100.05", 499, None),  # before its hold (and before min hold)
        # short from 100: the ask 3 bps down
        (False, "99.95", "99.97", 500, QUICK_PROFIT),
        (False, "99.95", "99.971", 500, None),
    ],
)
def test_quick_profit(long, bid, ask, held, expected):
    oracle = "101" if long else "99"
    assert check(QP, long=long, bid=bid, ask=ask, held=held, oracle=oracle) == expected


EV = MarkExitParams(edge_evaporation=True, edge_evaporation_bps=D(2), threshold_bps=D(0))


@pytest.mark.parametrize(
    ("long", "bid", "ask", "held", "expected"),
    [
        # long: what is left of (oracle - ask) / oracle; 2 bps left is gone
        (True, "99.5", "99.98", 500, EDGE_EVAPORATION),
        (True, "99.5", "99.97", 500, None),  # 3 bps left
        (True, "99.5", "100.10", 500, EDGE_EVAPORATION),  # the ask went through the oracle
        (True, "99.5", "99.98", 499, None),
        # short: (bid - oracle) / oracle
        (False, "100.02", "100.5", 500, EDGE_EVAPORATION),
        (False, "100.03", "100.5", 500, None),
    ],
)
def test_edge_evaporation(long, bid, ask, held, expected):
    assert check(EV, long=long, bid=bid, ask=ask, held=held) == expected


SCALED = MarkExitParams(
    threshold_bps=D(5), entry_edge_scaling=True, entry_edge_scale_factor=D("0.5")
)


@pytest.mark.parametrize(
    ("edge", "bid", "expected"),
    [
        ("30", "99.85", MARK_REGRESSION),  # band max(5, 30 x 0.5) = 15 bps: 99.85 is on it
        ("30", "99.84", None),
        ("8", "99.95", MARK_REGRESSION),  # 8 x 0.5 = 4 < 5: the base band
        ("8", "99.94", None),
        (None, "99.95", MARK_REGRESSION),  # unknown entry edge: the base band
        (None, "99.94", None),
    ],
)
def test_entry_edge_scaling(edge, bid, expected):
    assert check(SCALED, bid=bid, ask="100.5", entry="99", edge=edge) == expected


DECAY = MarkExitParams(
    threshold_bps=D(5),
    time_decay=True,
    decay_start_ms=5_000,
    min_decay_factor=D("0.2"),
    time_stop_ms=30_000,
)


@pytest.mark.parametrize(
    ("held", "factor"),
    [(0, "1"), (5_000, "1"), (17_500, "0.6"), (30_000, "0.2"), (40_000, "0.2")],
)
def test_decay_factor(held, factor):
    assert DECAY.decay_factor(held) == D(factor)


@pytest.mark.parametrize(
    ("held", "bid", "expected"),
    [
        (5_000, "99.95", MARK_REGRESSION),  # x1: 5 bps
        (17_500, "99.97", MARK_REGRESSION),  # x0.6: 3 bps
        (17_500, "99.969", None),
        (28_750, "99.988", MARK_REGRESSION),  # x0.24: 1.2 bps
        (28_750, "99.987", None),
    ],
)
def test_time_decay_tightens_the_band(held, bid, expected):
    assert check(DECAY, bid=bid, ask="100.5", entry="99", held=held) == expected


MINLOSS = MarkExitParams(threshold_bps=D(10), min_loss_exit_bps=D(15))


@pytest.mark.parametrize(
    ("entry", "bid", "expected"),
    [
        ("100", "99.86", None),  # caught up (band 10 bps of 99.9) but a 14 bps loss: skipped
        ("100", "99.85", MARK_REGRESSION),  # a 15 bps loss: not less than the minimum
        ("100.2", "99.86", MARK_REGRESSION),  # a large loss exits
        ("99.8", "99.86", MARK_REGRESSION),  # a profit always exits
        ("99.86", "99.86", MARK_REGRESSION),  # flat is not a loss
    ],
)
def test_min_loss_exit(entry, bid, expected):
    assert check(MINLOSS, entry=entry, bid=bid, ask="100.5", oracle="99.9") == expected


def test_min_loss_exit_for_a_short():
    # short from 100 at ask 100.05 (oracle 100, band 10): a 5 bps loss is skipped
    assert check(MINLOSS, long=False, bid="99", ask="100.05") is None
    assert check(MINLOSS, long=False, entry="99.8", bid="99", ask="100.05") == MARK_REGRESSION


def test_disabled_family_never_fires():
    p = MarkExitParams(enabled=False, quick_profit_bps=D(1), edge_evaporation=True)
    assert check(p, bid="101", ask="100") is None


@pytest.mark.parametrize(
    "kw",
    [
        {"min_decay_factor": D("1.5")},
        {"quick_profit_bps": D(-1)},
        {"edge_evaporation_bps": 2.0},
        {"time_decay": True, "decay_start_ms": 30_000},
    ],
)
def test_bad_params_are_refused(kw):
    with pytest.raises(ValueError, match=list(kw)[-1]):
        MarkExitParams(**kw)


def test_the_config_keys_reach_the_policy():
    cfg = load_config(
        overrides={
            "exits": {
                "time_stop_s": 20.0,
                "time_decay_enabled": True,
                "decay_start_s": 3.0,
                "min_decay_factor": 0.4,
                "min_loss_exit_bps": 15.0,
                "entry_edge_scaling": True,
                "quick_profit_bps": 3.0,
                "edge_evaporation_enabled": True,
            },
            "oracle_exit": {"trailing_stop": True, "against_moves": 4},
        }
    )
    p = ExitParams.from_config(cfg.exits, cfg.oracle_exit).mark_params()
    assert (p.time_stop_ms, p.decay_start_ms, p.min_decay_factor) == (20_000, 3_000, D("0.4"))
    assert (p.min_loss_exit_bps, p.quick_profit_bps, p.edge_evaporation) == (D(15), D(3), True)
    assert p.entry_edge_scaling and p.decay_factor(11_500) == D("0.7")
    o = ExitParams.from_config(cfg.exits, cfg.oracle_exit).oracle
    assert o.trailing_stop and o.against_moves == 4 and o.min_hold_ms == 1_000


def test_defaults_keep_the_extras_off_and_the_oracle_exit_on():
    cfg = load_config()
    params = ExitParams.from_config(cfg.exits, cfg.oracle_exit)
    p = params.mark_params()
    assert not (p.time_decay or p.entry_edge_scaling or p.edge_evaporation)
    assert p.quick_profit_bps == 0 and p.min_loss_exit_bps == 0
    assert params.oracle.enabled and not params.oracle.trailing_stop


def test_decay_start_after_the_time_stop_is_a_config_error():
    from hip3.config import ConfigError

    with pytest.raises(ConfigError, match=r"exits\.decay_start_s = 40: expected a value < "):
        load_config(overrides={"exits": {"time_decay_enabled": True, "decay_start_s": 40.0}})


def test_the_facade_uses_the_mark_family_with_the_entry_edge():
    params = ExitParams(mark_regression_bps=D(5), mark=MarkExitParams(entry_edge_scaling=True))
    f = Feed()
    f.ctx("100")
    f.bbo("99.85", "100.5")
    args = dict(
        coin=f.coin,
        size=D(1),
        entry_px=D(99),
        opened_ms=0,
        now_wall_ms=5_000,
        m=f.m,
        now_ns=f.now_ns,
    )
    assert ExitPolicy(params).check(**args) is None  # 15 bps under: outside the 5 bps band
    assert ExitPolicy(params, entry_edge=lambda c: 30.0).check(**args) == MARK_REGRESSION


@given(
    long=st.booleans(),
    entry_bps=st.integers(min_value=-60, max_value=60),
    quote_bps=st.integers(min_value=-60, max_value=60),
    min_loss=st.integers(min_value=0, max_value=40),
    held=st.integers(min_value=1_000, max_value=29_000),
)
def test_min_loss_only_ever_holds_back_a_small_loss(long, entry_bps, quote_bps, min_loss, held):
    """Whatever the prices, the minimum-loss rule changes a mark-regression exit only when
    that exit would realize a loss smaller than the minimum."""
    oracle = D(100)
    entry = oracle * (1 + D(entry_bps) / 10_000)
    quote = oracle * (1 + D(quote_bps) / 10_000)
    args = dict(
        is_long=long,
        entry_px=entry,
        held_ms=held,
        bid=quote if long else D(1),
        ask=D(1000) if long else quote,
        oracle=oracle,
    )
    plain = MarkExit(MarkExitParams(threshold_bps=D(10))).check(**args)
    guarded = MarkExit(MarkExitParams(threshold_bps=D(10), min_loss_exit_bps=D(min_loss))).check(
        **args
    )
    if plain != guarded:
        pnl = (quote - entry) / entry * 10_000 * (1 if long else -1)
        assert plain == MARK_REGRESSION and guarded is None
        assert 0 < -pnl < min_loss
