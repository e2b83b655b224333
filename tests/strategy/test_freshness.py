"""The market state's one freshness definition, as properties: a book stamped beyond the skew
never reaches the state, the adopted exchange time never runs ahead of the clock by more than
the skew, and good books after any mix of bad ones make the market fresh again."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.market.state import BBO_STALE, CTX_STALE, TIME_REGRESSION, Freshness, MarketState

NS = 1_000_000_000
WALL0 = 1_760_000_000_000
SKEW = Freshness().future_skew_ms

# (ms since the last book, exchange time minus our wall clock in ms, two-sided book?)
_books = st.lists(
    st.tuples(
        st.integers(0, 3_000),
        st.one_of(st.integers(-20_000, 20_000), st.sampled_from([86_400_000, 10**12])),
        st.booleans(),
    ),
    max_size=40,
)


def _snapshot(m: MarketState) -> tuple:
    return (
        m.bid_px,
        m.ask_px,
        m.bbo_time_ms,
        m.bbo_recv_ns,
        m.bbo_updates,
        m.time_regressions,
        m.halted,
        astuple_spread(m),
    )


def astuple_spread(m: MarketState) -> tuple:
    s = m.spread
    return (s.value, s.before, s.samples)


@given(_books)
def test_a_book_beyond_the_skew_never_reaches_the_state(books):
    m = MarketState("xyz:AAA")
    m.on_ctx("100", "100", None, "0", "1", 1)
    wall, recv = WALL0, NS
    for gap_ms, ahead_ms, two_sided in books:
        wall += gap_ms
        recv += gap_ms * 1_000_000
        before, future = _snapshot(m), m.future_books
        book = ("99.9", "1") if two_sided else None
        adopted = m.on_bbo(wall + ahead_ms, book, ("100.1", "1"), recv, wall_ms=wall)
        if ahead_ms > SKEW:
            assert not adopted and m.future_books == future + 1
            assert _snapshot(m) == before
        assert m.bbo_time_ms <= wall + SKEW
    # normal books afterwards: fresh again once any regression window has passed
    wall += 1
    recv += Freshness().regression_ns + 1
    m.on_ctx("100", "100", None, "0", "1", recv)
    assert m.on_bbo(max(wall, m.bbo_time_ms), ("99.9", "1"), ("100.1", "1"), recv, wall_ms=wall)
    assert m.stale_reason(recv) is None


def test_stale_reasons_in_their_order():
    f = Freshness(max_bbo_age_s=2, max_ctx_age_s=8, time_regression_block_s=10)
    m = MarketState("xyz:AAA", f)
    assert m.stale_reason(NS) == BBO_STALE  # nothing yet
    m.on_bbo(1_000, ("99", "1"), ("101", "1"), NS, wall_ms=1_000)
    assert m.stale_reason(NS) == CTX_STALE
    m.on_ctx("100", "100", None, "0", "1", NS)
    assert m.stale_reason(NS) is None
    assert m.stale_reason(NS + 2 * NS + 1) is None  # an old book is a quiet book ...
    assert m.stale_reason(NS + 8 * NS + 1) == CTX_STALE  # ... while the context flows
    m.on_bbo(900, ("99", "1"), ("101", "1"), 2 * NS, wall_ms=1_100)  # runs backwards
    assert m.stale_reason(2 * NS) == TIME_REGRESSION
    m.on_bbo(1_200, ("99", "1"), ("101", "1"), 11 * NS, wall_ms=1_200)
    m.on_ctx("100", "100", None, "0", "1", 11 * NS)
    assert m.stale_reason(11 * NS) == TIME_REGRESSION  # 9 s into the 10 s window
    m.on_bbo(1_300, ("99", "1"), ("101", "1"), 12 * NS + 1, wall_ms=1_300)
    assert m.stale_reason(12 * NS + 1) is None


def test_a_book_the_context_contradicts_goes_stale():
    m = MarketState("xyz:AAA", Freshness(max_bbo_age_s=2, max_ctx_age_s=8))
    m.on_bbo(1_000, ("99", "1"), ("101", "1"), NS, wall_ms=1_000)
    m.on_ctx("100", "100", "100", "0", "1", NS)  # the exchange's mid within bid..ask
    assert m.stale_reason(6 * NS) is None
    m.on_ctx("100", "100", "101", "0", "1", 6 * NS)  # on the ask: still within
    assert m.stale_reason(7 * NS) is None
    m.on_ctx("100", "100", "103", "0", "1", 7 * NS)  # the book moved; no bbo told us
    assert m.stale_reason(9 * NS) is None  # a bbo in flight may still come
    assert m.stale_reason(9 * NS + 1) == BBO_STALE
    m.on_ctx("100", "100", "103", "0", "1", 8 * NS)  # it keeps the first contradiction's time
    assert m.stale_reason(9 * NS + 1) == BBO_STALE
    m.on_bbo(2_000, ("102", "1"), ("104", "1"), 10 * NS, wall_ms=2_000)  # the bbo arrives
    assert m.stale_reason(10 * NS) is None
    m.on_ctx("100", "100", "99", "0", "1", 11 * NS)
    m.on_ctx("100", "100", "103", "0", "1", 12 * NS)  # agreeing again clears the doubt
    assert m.stale_reason(14 * NS + 1) is None
    m.on_bbo(3_000, ("102", "1"), None, 15 * NS, wall_ms=3_000)  # one-sided: nothing to compare
    m.on_ctx("100", "100", None, "0", "1", 15 * NS)
    assert m.stale_reason(20 * NS) is None


@pytest.mark.parametrize("name", ["max_bbo_age_s", "max_ctx_age_s", "max_future_skew_s"])
def test_freshness_limits_must_be_positive_and_finite(name):
    for bad in (0, -1, float("inf")):
        with pytest.raises(ValueError, match=name):
            Freshness(**{name: bad})


# decimal texts as the exchange writes them, and the forms Decimal also takes
_texts = st.one_of(
    st.decimals(min_value=0, max_value=10**12, allow_nan=False, places=8).map(str),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.sampled_from(["0.1", "1e3", "3.0000000000000004", "123456789.123456789123", "1E-7"]),
)


@given(_texts, _texts, _texts, _texts)
def test_the_market_floats_are_the_decimals_own(bid, ask, oracle, mark):
    # the floats come from the wire's text, the Decimals beside them: they must be the same
    # number, or a gate (floats) and an order (Decimals) would judge different prices
    m = MarketState("xyz:AAA")
    m.on_ctx(oracle, mark, None, "0", "1", NS)
    m.on_bbo(1, (bid, "1"), (ask, "2"), NS, wall_ms=1)
    assert m.bid_f == float(m.bid_px) and m.ask_f == float(m.ask_px)
    assert m.oracle_f == float(m.oracle_px) and m.mark_f == float(m.mark_px)
