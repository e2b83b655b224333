"""Exit policy: time stop and mark regression with worked numbers, plus their invariants."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.strategy.exits import MARK_REGRESSION, TIME_STOP, ExitParams, ExitPolicy, exit_limit_px
from tests.strategy import NS, Feed

D = Decimal
OPENED = 1_000_000  # wall ms of the entry


def book(bid: str | None, ask: str | None, oracle: str = "100") -> Feed:
    f = Feed()
    f.ctx(oracle)
    f.bbo(bid, ask)
    return f


def check(policy: ExitPolicy, f: Feed, size: str, held_ms: int, with_clock: bool = True):
    return policy.check(
        coin=f.coin,
        size=D(size),
        entry_px=D("99.8"),
        opened_ms=OPENED,
        now_wall_ms=OPENED + held_ms,
        m=f.m,
        now_ns=f.now_ns if with_clock else None,
    )


POLICY = ExitPolicy(ExitParams(time_stop_s=30, mark_regression_bps=D(5), min_hold_s=1))


@pytest.mark.parametrize(
    ("size", "bid", "ask", "held_ms", "expected"),
    [
        # long bought under the oracle; the bid is still 10 bps under: keep holding
        ("1", "99.9", "100.1", 5_000, None),
        # the bid is back within 5 bps of the oracle: the dislocation closed
        ("1", "99.96", "100.1", 5_000, MARK_REGRESSION),
        ("1", "99.95", "100.1", 5_000, MARK_REGRESSION),  # exactly 5 bps
        ("1", "100.2", "100.3", 5_000, MARK_REGRESSION),  # overshoot counts too
        # ... but not before the minimum hold
        ("1", "99.96", "100.1", 999, None),
        ("1", "99.96", "100.1", 1_000, MARK_REGRESSION),
        # short: the ask must come back down to within 5 bps above the oracle
        ("-1", "99.9", "100.1", 5_000, None),
        ("-1", "99.9", "100.04", 5_000, MARK_REGRESSION),
        ("-1", "99.9", "100.04", 500, None),
        # time stop regardless of the book
        ("1", "99.5", "99.6", 29_999, None),
        ("1", "99.5", "99.6", 30_000, TIME_STOP),
        ("-1", "100.5", "100.6", 45_000, TIME_STOP),
        # time stop wins over mark regression when both hold
        ("1", "99.99", "100.1", 31_000, TIME_STOP),
        # a missing exit side never counts as caught up
        ("1", None, "100.1", 5_000, None),
        ("-1", "99.9", None, 5_000, None),
        # flat: nothing to exit
        ("0", "99.99", "100.01", 60_000, None),
    ],
)
def test_exit_table(size, bid, ask, held_ms, expected):
    assert check(POLICY, book(bid, ask), size, held_ms) == expected


def test_stale_data_blocks_mark_regression_but_not_the_time_stop():
    f = book("99.99", "100.1")
    f.tick(9.0)  # the oracle's context is now 9 s old (> max_ctx_age_s 8)
    assert check(POLICY, f, "1", 5_000) is None
    assert check(POLICY, f, "1", 5_000, with_clock=False) == MARK_REGRESSION
    assert check(POLICY, f, "1", 30_000) == TIME_STOP


def test_the_time_stop_fires_at_exactly_its_configured_milliseconds():
    # 2.031 s is 2031.0000000000002 ms in floats: the stop must still fire at 2031 ms
    policy = ExitPolicy(ExitParams(time_stop_s=2.031, mark_regression_enabled=False))
    f = book("99.5", "99.6")
    assert check(policy, f, "1", 2_030) is None
    assert check(policy, f, "1", 2_031) == TIME_STOP


def test_mark_regression_can_be_switched_off():
    policy = ExitPolicy(ExitParams(mark_regression_enabled=False))
    f = book("99.99", "100.1")
    assert check(policy, f, "1", 5_000) is None
    assert check(policy, f, "1", 30_000) == TIME_STOP


def test_no_oracle_no_mark_regression():
    f = Feed()
    f.bbo("99.99", "100.01")
    assert check(POLICY, f, "1", 5_000, with_clock=False) is None


def test_market_state_of_another_coin_is_refused():
    f = book("99.9", "100.1")
    with pytest.raises(ValueError, match="xyz:BBB"):
        POLICY.check(
            coin="xyz:BBB",
            size=D(1),
            entry_px=D(100),
            opened_ms=0,
            now_wall_ms=1,
            m=f.m,
        )


@pytest.mark.parametrize(
    "kw",
    [
        {"time_stop_s": 0},
        {"min_hold_s": -1},
        {"mark_regression_bps": D(-1)},
        {"mark_regression_bps": 5.0},
    ],
)
def test_bad_params_are_refused(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        ExitParams(**kw)


def test_params_from_config():
    from hip3.config import load_config

    p = ExitParams.from_config(load_config().exits)
    assert (p.time_stop_s, p.mark_regression_bps, p.min_hold_s) == (30.0, D(5), 1.0)
    assert p.mark_regression_enabled


@given(
    held_ms=st.integers(min_value=-5_000, max_value=120_000),
    long=st.booleans(),
    gap_bps=st.integers(min_value=-100, max_value=100),
    band=st.integers(min_value=0, max_value=50),
    min_hold_ms=st.integers(min_value=0, max_value=10_000),
    stop_ms=st.integers(min_value=1_000, max_value=60_000),
)
def test_exit_invariants(held_ms, long, gap_bps, band, min_hold_ms, stop_ms):
    policy = ExitPolicy(
        ExitParams(
            time_stop_s=stop_ms / 1000,
            mark_regression_bps=D(band),
            min_hold_s=min_hold_ms / 1000,
        )
    )
    # the exit side sits gap_bps on the losing side of the oracle (negative: beyond it)
    px = D(100) - D(gap_bps) / 100 if long else D(100) + D(gap_bps) / 100
    f = book(str(px), "200") if long else book("1", str(px))
    reason = check(policy, f, "1" if long else "-1", held_ms)
    if held_ms >= stop_ms:
        assert reason == TIME_STOP
    elif held_ms < min_hold_ms:
        assert reason is None  # never a mark-regression exit before the minimum hold
    else:
        assert reason == (MARK_REGRESSION if gap_bps <= band else None)


@pytest.mark.parametrize(
    ("size", "bid", "ask", "slip", "expected"),
    [
        ("1", "99.9", "100.1", "50", "99.40050"),  # sell the long into the bid, 50 bps lower
        ("-2", "99.9", "100.1", "50", "100.6005"),  # buy the short back from the ask
        ("1", None, "100.1", "50", "99.5"),  # no bid: from the mark (100)
        ("0", "99.9", "100.1", "50", None),
    ],
)
def test_exit_limit_price(size, bid, ask, slip, expected):
    f = book(bid, ask)
    px = exit_limit_px(D(size), f.m, D(slip))
    assert px == (None if expected is None else D(expected))


def test_time_uses_the_callers_wall_clock_not_receive_times():
    f = book("99.5", "99.6")
    f.now_ns += 100 * NS  # monotonic time says nothing about how long we held
    assert check(POLICY, f, "1", 10_000, with_clock=False) is None
