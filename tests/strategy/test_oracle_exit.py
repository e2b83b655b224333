"""The oracle exit with worked numbers: runs counted from the entry, the hold, the trailing
stop and the dynamic threshold, plus the facade counting every context update."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.strategy.exits import TIME_STOP, ExitParams, ExitPolicy
from hip3.strategy.oracle_exit import (
    ORACLE_CATCHUP,
    ORACLE_REVERSAL,
    TRAILING_STOP,
    OracleExit,
    OracleExitParams,
)
from tests.strategy import Feed

D = Decimal
COIN = "xyz:AAA"


def opened(params: OracleExitParams | None = None, *, long: bool = True, edge=None) -> OracleExit:
    x = OracleExit(params or OracleExitParams())
    x.open(COIN, is_long=long, opened_ms=0, oracle_px=D(100), entry_edge_bps=edge)
    return x


def feed(x: OracleExit, *prices: str) -> None:
    for px in prices:
        x.on_oracle(COIN, D(px))


def test_three_moves_with_a_long_take_the_profit():
    x = opened()
    feed(x, "100.03", "100.06")  # +3 bps, then +2.999 bps from 100.03: two moves
    assert x.run(COIN).with_ == 2
    assert x.check(COIN, held_ms=5_000, oracle_px=D("100.06")) is None
    feed(x, "100.09")
    assert x.check(COIN, held_ms=5_000, oracle_px=D("100.09")) == ORACLE_CATCHUP


def test_two_moves_against_a_long_cut_the_loss_and_a_move_back_resets_the_run():
    x = opened()
    feed(x, "99.97")  # -3 bps: one against
    feed(x, "100.00")  # +3 bps: the against run ends, one with
    assert (x.run(COIN).against, x.run(COIN).with_) == (0, 1)
    feed(x, "99.97", "99.94")
    assert x.check(COIN, held_ms=5_000, oracle_px=D("99.94")) == ORACLE_REVERSAL


def test_a_short_counts_the_other_way():
    x = opened(long=False)
    feed(x, "100.03", "100.06")  # up moves are against a short
    assert x.check(COIN, held_ms=5_000, oracle_px=D("100.06")) == ORACLE_REVERSAL
    y = opened(long=False)
    feed(y, "99.97", "99.94", "99.91")
    assert y.check(COIN, held_ms=5_000, oracle_px=D("99.91")) == ORACLE_CATCHUP


def test_wiggles_are_not_moves_but_add_up_from_the_last_counted_price():
    x = opened()
    feed(x, "100.01")  # 1 bps: a wiggle
    assert x.run(COIN).with_ == 0
    feed(x, "100.02")  # 2 bps from 100 (the reference stayed): a move
    assert x.run(COIN).with_ == 1


def test_nothing_fires_before_the_hold_but_moves_during_it_count():
    x = opened()
    feed(x, "99.97", "99.94")
    assert x.check(COIN, held_ms=999, oracle_px=D("99.94")) is None
    assert x.check(COIN, held_ms=1_000, oracle_px=D("99.94")) == ORACLE_REVERSAL


def test_runs_start_at_zero_for_each_new_position():
    x = opened()
    feed(x, "99.97", "99.94")
    x.open(COIN, is_long=True, opened_ms=5, oracle_px=D("99.94"))
    assert x.check(COIN, held_ms=5_000, oracle_px=D("99.94")) is None
    assert x.is_tracking(COIN, is_long=True, opened_ms=5)
    assert not x.is_tracking(COIN, is_long=False, opened_ms=5)


@pytest.mark.parametrize(("edge", "needed"), [(None, 2), (39.9, 2), (40.0, 3), (80.0, 3)])
def test_dynamic_thresholds_give_a_high_edge_entry_one_more_move(edge, needed):
    x = opened(OracleExitParams(dynamic_thresholds=True), edge=edge)
    assert x.against_needed(COIN) == needed
    feed(x, "99.97", "99.94")
    expected = ORACLE_REVERSAL if needed == 2 else None
    assert x.check(COIN, held_ms=5_000, oracle_px=D("99.94")) == expected
    feed(x, "99.91")
    assert x.check(COIN, held_ms=5_000, oracle_px=D("99.91")) == ORACLE_REVERSAL


def test_dynamic_thresholds_off_ignore_the_edge():
    assert opened(edge=100.0).against_needed(COIN) == 2


def test_trailing_stop_arms_at_the_activation_and_fires_on_the_retrace():
    p = OracleExitParams(trailing_stop=True, trail_activation_bps=5, trail_bps=3, with_moves=9)
    x = opened(p)
    feed(x, "100.04")  # P&L 4 bps: below the activation
    assert x.check(COIN, held_ms=5_000, oracle_px=D("100.01")) is None
    feed(x, "100.06")  # best 6 bps: armed
    feed(x, "100.04")  # 2 bps off the best
    assert x.check(COIN, held_ms=5_000, oracle_px=D("100.04")) is None
    feed(x, "100.03")  # 3 bps off the best
    assert x.check(COIN, held_ms=5_000, oracle_px=D("100.03")) == TRAILING_STOP


def test_trailing_stop_for_a_short():
    p = OracleExitParams(trailing_stop=True, trail_activation_bps=5, trail_bps=3, with_moves=9)
    x = opened(p, long=False)
    feed(x, "99.94", "99.97")  # best +6, now +3
    assert x.check(COIN, held_ms=5_000, oracle_px=D("99.97")) == TRAILING_STOP


def test_disabled_never_fires():
    x = opened(OracleExitParams(enabled=False))
    feed(x, "99.97", "99.94", "99.91")
    assert x.check(COIN, held_ms=5_000, oracle_px=D("99.91")) is None


@pytest.mark.parametrize(
    "kw",
    [{"against_moves": 0}, {"with_moves": 0}, {"min_hold_ms": -1}, {"trail_bps": 0}],
)
def test_bad_params_are_refused(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        OracleExitParams(**kw)


# -- through the facade, as the dispatcher calls it ---------------------------------------------

OPENED = 1_000_000


def facade_check(policy: ExitPolicy, f: Feed, size: str, held_ms: int, opened_ms: int = OPENED):
    return policy.check(
        coin=f.coin,
        size=D(size),
        entry_px=D("99.7"),
        opened_ms=opened_ms,
        now_wall_ms=opened_ms + held_ms,
        m=f.m,
        now_ns=f.now_ns,
    )


def test_the_facade_counts_each_context_update_from_the_first_check_on():
    policy = ExitPolicy(ExitParams(mark_regression_enabled=False))
    f = Feed()
    f.ctx("99.94")
    f.ctx("100")  # before the position: the market's up-run does not count
    f.bbo("99.7", "99.72")
    assert facade_check(policy, f, "1", 100) is None  # the run starts here, at 100
    f.ctx("99.97")
    assert facade_check(policy, f, "1", 1_100) is None
    assert facade_check(policy, f, "1", 1_150) is None  # the same context is not counted twice
    f.ctx("99.94")
    assert facade_check(policy, f, "1", 1_200) == ORACLE_REVERSAL
    # a new position in the market starts again from zero
    assert facade_check(policy, f, "1", 1_200, opened_ms=OPENED + 2_000) is None
    # and the time stop still comes first
    assert facade_check(policy, f, "1", 30_000, opened_ms=OPENED + 2_000) == TIME_STOP


def test_the_facade_passes_the_entry_edge_to_the_dynamic_threshold():
    params = ExitParams(
        mark_regression_enabled=False, oracle=OracleExitParams(dynamic_thresholds=True)
    )
    policy = ExitPolicy(params, entry_edge=lambda coin: 45.0)
    f = Feed()
    f.ctx("100")
    f.bbo("99.7", "99.72")
    facade_check(policy, f, "1", 0)
    for px in ("99.97", "99.94"):
        f.ctx(px)
        facade_check(policy, f, "1", 500)  # the dispatcher checks on every update
    assert facade_check(policy, f, "1", 2_000) is None  # a 45 bps entry needs three
    f.ctx("99.91")
    assert facade_check(policy, f, "1", 2_000) == ORACLE_REVERSAL


def test_stale_data_fires_no_oracle_exit():
    policy = ExitPolicy(ExitParams(mark_regression_enabled=False))
    f = Feed()
    f.ctx("100")
    f.bbo("99.7", "99.72")
    facade_check(policy, f, "1", 0)
    for px in ("99.97", "99.94"):
        f.ctx(px)
        facade_check(policy, f, "1", 500)
    f.tick(9.0)  # the oracle's context is 9 s old: the market is stale
    assert facade_check(policy, f, "1", 5_000) is None
    f.ctx("99.94")  # fresh again, at the same price: the run counted meanwhile fires
    assert facade_check(policy, f, "1", 5_000) == ORACLE_REVERSAL


# -- invariants ---------------------------------------------------------------------------------


@given(
    long=st.booleans(),
    steps=st.lists(st.integers(min_value=-8, max_value=8), min_size=1, max_size=30),
    held_ms=st.integers(min_value=0, max_value=5_000),
)
def test_a_reversal_needs_the_last_moves_against_and_nothing_fires_in_the_hold(
    long, steps, held_ms
):
    """Oracle steps in bps from the last price; whatever the path, a reversal means the last
    `against_moves` counted moves went against the position, and nothing fires in the hold."""
    p = OracleExitParams()
    x = opened(p, long=long)
    px = D(100)
    counted: list[int] = []  # +1 with, -1 against, for each move the exit counted
    ref = px
    for bps in steps:
        px = px * (1 + D(bps) / 10_000)
        before = (x.run(COIN).with_, x.run(COIN).against)
        x.on_oracle(COIN, px)
        after = (x.run(COIN).with_, x.run(COIN).against)
        if after != before:
            counted.append(1 if after[0] > before[0] else -1)
            ref = px
    assert x.run(COIN).ref_oracle == ref
    reason = x.check(COIN, held_ms=held_ms, oracle_px=px)
    if held_ms < p.min_hold_ms:
        assert reason is None
    if reason == ORACLE_REVERSAL:
        assert counted[-p.against_moves :] == [-1] * p.against_moves
    if reason == ORACLE_CATCHUP:
        assert counted[-p.with_moves :] == [1] * p.with_moves
