"""Market gates: each gate with worked numbers, the fixed order, counting, logging, isolation."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.market.gates import (
    BBO_STALE,
    CTX_STALE,
    HALTED,
    MARK_MID_DIVERGENCE,
    NO_BOOK,
    OI_CAP,
    PARAM_CHANGE,
    SPREAD_SHOCK,
    TIME_REGRESSION,
    GateParams,
    MarketGates,
    accept_changed_params,
)
from hip3.market.state import Freshness
from tests.strategy import NS, Feed, spec

D = Decimal


def fresh(
    coin: str = "xyz:AAA", bid: str = "99.95", ask: str = "100.05", mark: str = "100"
) -> Feed:
    f = Feed(coin)
    f.ctx("100", mark=mark)
    f.bbo(bid, ask)
    return f


def gates(**kw) -> MarketGates:
    return MarketGates("xyz:AAA", GateParams(**kw))


def test_calm_fresh_market_passes_at_full_size():
    f, g = fresh(), gates()
    r = g.check(f.m, f.now_ns)
    assert (r.ok, r.reason, r.size_factor) == (True, None, D(1))
    assert not g.counts


@pytest.mark.parametrize(
    ("bbo_age_s", "ctx_age_s", "expected"),
    [
        (1.9, 1.9, None),
        (9.0, 0.0, None),  # an old book the context does not contradict: a quiet book
        (0.0, 8.1, CTX_STALE),  # ctx older than 8 s
        (9.0, 9.0, CTX_STALE),
        (0.0, -2.1, BBO_STALE),  # the context's mid has contradicted the book for 2.1 s
    ],
)
def test_stale_data_blocks_by_the_market_states_one_definition(bbo_age_s, ctx_age_s, expected):
    f = fresh()
    now = f.now_ns + 10 * NS
    f.m.bbo_recv_ns = now - int(bbo_age_s * NS)
    if ctx_age_s < 0:  # a fresh context that disagrees with the book since -ctx_age_s
        f.m.ctx_recv_ns = now
        f.m.book_contradicted_ns = now + int(ctx_age_s * NS)
    else:
        f.m.ctx_recv_ns = now - int(ctx_age_s * NS)
    r = gates().check(f.m, now)
    assert r.reason == expected == f.m.stale_reason(now)
    assert r.ok == (expected is None)


def test_market_never_seen_is_blocked():
    f = Feed()
    r = gates().check(f.m, f.now_ns)
    assert (r.ok, r.reason) == (False, BBO_STALE)


def test_time_regression_blocks_for_its_window_then_clears():
    f, g = fresh(), gates()
    f.m.freshness = Freshness(time_regression_block_s=10)
    assert g.check(f.m, f.now_ns).ok
    f.time_ms -= 500  # the exchange time of the next book runs backwards
    f.bbo("99.9", "100.1", dt_s=0)
    assert f.m.time_regressions == 1
    assert g.check(f.m, f.now_ns).reason == TIME_REGRESSION
    f.tick(9.0)
    f.bbo("99.95", "100.05", dt_s=0)  # fresh data does not lift it early
    f.ctx("100", dt_s=0)
    assert g.check(f.m, f.now_ns).reason == TIME_REGRESSION
    f.tick(1.5)
    f.bbo("99.95", "100.05", dt_s=0)
    f.ctx("100", dt_s=0)
    assert g.check(f.m, f.now_ns).ok
    assert g.counts[TIME_REGRESSION] == 2


@pytest.mark.parametrize(
    ("bid", "ask", "mark", "expected"),
    [
        ("99.9", "100.1", "100.4", None),  # mid 100, 40 bps
        ("99.9", "100.1", "100.5", None),  # exactly 50 bps is allowed
        ("99.9", "100.1", "100.6", MARK_MID_DIVERGENCE),  # 60 bps
        ("99.9", "100.1", "99.4", MARK_MID_DIVERGENCE),  # 60 bps the other way
        ("99.9", None, "100", NO_BOOK),  # a one-sided book has no mid
        (None, None, "100", HALTED),  # an empty book: the exchange shows a halt
        ("100.1", "99.9", "100", NO_BOOK),  # crossed book: not a book to trust
    ],
)
def test_mark_mid_divergence(bid, ask, mark, expected):
    f = Feed()
    f.ctx("100", mark=mark)
    f.bbo(bid, ask)
    r = gates(max_mark_mid_divergence_bps=50).check(f.m, f.now_ns)
    assert r.reason == expected


def test_divergence_gate_off_lets_a_one_sided_book_through():
    f = Feed()
    f.ctx("100", mark="103")
    f.bbo(None, "100.1")
    assert gates(max_mark_mid_divergence_bps=0).check(f.m, f.now_ns).ok


def _warm(g: MarketGates, f: Feed, n: int = 20) -> None:
    for _ in range(n):
        f.bbo("99.95", "100.05")  # 10 bps
        f.ctx("100", dt_s=0)
        assert g.check(f.m, f.now_ns).ok


@pytest.mark.parametrize(
    ("bid", "ask", "ok", "reason", "factor"),
    [
        ("99.9", "100.1", True, None, "1"),  # 20 bps <= 10 x 3
        ("99.84", "100.16", True, SPREAD_SHOCK, "0.2"),  # 32 bps: reduce tier (> 30)
        ("99.71", "100.29", True, SPREAD_SHOCK, "0.2"),  # 58 bps: still reduce (block is > 60)
        ("99.65", "100.35", False, SPREAD_SHOCK, "0"),  # 70 bps: block tier
    ],
)
def test_spread_shock_tiers(bid, ask, ok, reason, factor):
    f, g = Feed(), gates(max_mark_mid_divergence_bps=0)
    f.ctx("100")
    _warm(g, f)
    assert f.m.spread.value == pytest.approx(10)
    f.bbo(bid, ask)
    r = g.check(f.m, f.now_ns)
    assert (r.ok, r.reason, r.size_factor) == (ok, reason, D(factor))


def test_spread_shock_waits_for_enough_samples_and_judges_each_book_once():
    f, g = Feed(), gates(max_mark_mid_divergence_bps=0, spread_min_samples=5)
    f.ctx("100")
    _warm(g, f, n=4)
    f.bbo("99.65", "100.35")  # 70 bps, but only 4 samples so far: not trusted yet
    assert g.check(f.m, f.now_ns).ok
    samples, ewma = f.m.spread.samples, f.m.spread.value
    for _ in range(3):  # re-checking the same book learns nothing
        g.check(f.m, f.now_ns)
    assert (f.m.spread.samples, f.m.spread.value) == (samples, ewma)
    f.bbo("99.65", "100.35")  # the fifth sample before this one: now it is judged
    assert g.check(f.m, f.now_ns).reason == SPREAD_SHOCK


def test_a_lasting_wider_spread_becomes_normal():
    f, g = Feed(), gates(max_mark_mid_divergence_bps=0)
    f.ctx("100")
    _warm(g, f)
    results = []
    for _ in range(200):
        f.bbo("99.65", "100.35")  # 70 bps from now on
        f.ctx("100", dt_s=0)
        results.append(g.check(f.m, f.now_ns))
    assert not results[0].ok
    assert results[-1].ok and results[-1].reason is None


def test_oi_cap_flag():
    f, g = fresh(), gates()
    g.set_oi_capped(True)
    assert g.check(f.m, f.now_ns).reason == OI_CAP
    g.set_oi_capped(False)
    assert g.check(f.m, f.now_ns).ok


def test_an_empty_book_is_a_halt_until_a_book_returns(caplog):
    """A deployer halt cancels every order: the exchange's book goes empty on both sides. The
    gate names it (not "no book"), and the first order resting again releases it."""
    caplog.set_level(logging.INFO, logger="hip3.market.state")
    f, g = fresh(), gates()
    f.bbo(None, None)
    assert f.m.halted
    assert g.check(f.m, f.now_ns).reason == HALTED
    f.bbo("99.95", None)  # trading resumed: one side is enough to say so
    assert not f.m.halted
    f.bbo("99.95", "100.05")
    assert g.check(f.m, f.now_ns).ok
    # only the market state's own lines: an earlier test may have left hip3's loggers at INFO
    messages = [r.getMessage() for r in caplog.records if r.name == "hip3.market.state"]
    assert len(messages) == 2 and "halted" in messages[0] and "resumed" in messages[1]


def test_a_halt_outranks_the_oi_cap_and_stale_data_outranks_the_halt():
    f, g = fresh(), gates()
    g.set_oi_capped(True)
    f.bbo(None, None)
    assert g.check(f.m, f.now_ns).reason == HALTED
    assert g.check(f.m, f.now_ns + 9 * NS).reason == CTX_STALE


@pytest.mark.parametrize(
    ("change", "trips"),
    [
        ({}, False),
        ({"sz_decimals": 3}, True),
        ({"deployer_fee_scale": D("1.5")}, True),
        ({"growth_mode": True}, True),
        ({"max_leverage": 20}, False),  # not a fact that changes sizes or fees
    ],
)
def test_param_change_latches_until_the_parameters_change_back(change, trips):
    f, g = fresh(), gates()
    g.on_params(spec())
    g.on_params(spec(**change))
    assert g.check(f.m, f.now_ns).reason == (PARAM_CHANGE if trips else None)
    g.on_params(spec(**change))  # seen again: still latched
    assert g.check(f.m, f.now_ns).reason == (PARAM_CHANGE if trips else None)
    g.on_params(spec())  # back to the accepted parameters: released
    assert g.check(f.m, f.now_ns).ok and not g.param_changed


def test_operator_accepts_changed_parameters():
    f, g = fresh(), gates()
    other = MarketGates("xyz:BBB", GateParams())
    assert not g.accept_params()  # nothing latched: nothing to accept
    g.on_params(spec())
    g.on_params(spec(sz_decimals=3))
    assert g.check(f.m, f.now_ns).reason == PARAM_CHANGE
    assert accept_changed_params({"xyz:AAA": g, "xyz:BBB": other}) == ["xyz:AAA"]
    assert not other.param_changed
    assert g.check(f.m, f.now_ns).ok
    g.on_params(spec(sz_decimals=3))  # the accepted parameters are the new normal
    assert not g.param_changed
    g.on_params(spec())  # and going back to the old ones is now a change
    assert g.param_changed


def test_spec_of_another_market_is_refused():
    with pytest.raises(ValueError, match=r"xyz:BBB"):
        gates().on_params(spec("xyz:BBB"))


def test_order_of_gates_stale_beats_everything():
    f, g = fresh(), gates()
    g.set_oi_capped(True)
    g.on_params(spec())
    g.on_params(spec(sz_decimals=4))
    assert g.check(f.m, f.now_ns).reason == OI_CAP
    assert g.check(f.m, f.now_ns + 9 * NS).reason == CTX_STALE
    assert g.counts == {OI_CAP: 1, CTX_STALE: 1}


def test_blocks_counted_every_time_but_logged_on_change_only(caplog):
    f, g = fresh(), gates()
    caplog.set_level(logging.INFO, logger="hip3.market.gates")
    g.set_oi_capped(True)
    for _ in range(50):
        g.check(f.m, f.now_ns)
    g.set_oi_capped(False)
    for _ in range(50):
        g.check(f.m, f.now_ns)
    assert g.counts[OI_CAP] == 50
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert "oi_cap" in messages[0] and "pass again" in messages[1]


def test_bad_params_are_named():
    with pytest.raises(ValueError, match="max_mark_mid_divergence_bps"):
        GateParams(max_mark_mid_divergence_bps=-1)
    with pytest.raises(ValueError, match="spread_shock_size_factor"):
        GateParams(spread_shock_size_factor=D(2))


@given(
    spreads=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=60),
    capped=st.booleans(),
)
def test_one_markets_books_never_change_anothers_gates(spreads, capped):
    """Per-market isolation: B's verdict with A's traffic equals B's verdict alone."""
    params = GateParams(max_mark_mid_divergence_bps=0, spread_min_samples=3)
    a, b = MarketGates("xyz:AAA", params), MarketGates("xyz:BBB", params)
    b_alone = MarketGates("xyz:BBB", params)
    fa, fb = Feed("xyz:AAA"), Feed("xyz:BBB")
    fa.ctx("100")
    fb.ctx("100")
    if capped:
        a.set_oi_capped(True)
    for i, bps in enumerate(spreads):
        half = D(bps) / 200  # half the spread in price units around 100
        fa.bbo(str(100 - half), str(100 + half))
        a.check(fa.m, fa.now_ns)
        if i % 3 == 0:
            fb.bbo("99.95", "100.05")
            fb.ctx("100", dt_s=0)
            fb.now_ns = fa.now_ns = max(fa.now_ns, fb.now_ns)
            assert b.check(fb.m, fb.now_ns) == b_alone.check(fb.m, fb.now_ns)
    assert b.counts == b_alone.counts
