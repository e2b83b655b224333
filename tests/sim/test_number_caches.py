"""Cached wire strings and rounded prices equal what a fresh computation gives."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from hip3.sim import rules
from hip3.sim.universe import Asset

finite = st.decimals(
    allow_nan=False, allow_infinity=False, min_value=-(10**9), max_value=10**9, places=8
)
positive = st.decimals(
    allow_nan=False, allow_infinity=False, min_value=Decimal("1e-8"), max_value=10**7, places=8
)


def fresh_wire(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


@given(finite, st.integers(min_value=0, max_value=4))
def test_wire_is_canonical_whatever_was_cached_first(value: Decimal, extra_zeros: int) -> None:
    # The same number written with trailing zeros must give the same string, cached or not.
    padded = value.quantize(Decimal(1).scaleb(value.as_tuple().exponent - extra_zeros))
    assert padded == value
    assert rules.wire(padded) == fresh_wire(padded)
    assert rules.wire(value) == fresh_wire(value)
    assert rules.wire(value) == rules.wire(padded)


def test_wire_examples() -> None:
    assert [rules.wire(Decimal(t)) for t in ("1670.10", "0.0147", "1E+2", "-0", "0.000")] == [
        "1670.1",
        "0.0147",
        "100",
        "0",
        "0",
    ]


def _asset(sz_decimals: int) -> Asset:
    return Asset(
        coin=f"xyz:T{sz_decimals}",
        dex="xyz",
        dex_index=1,
        index_in_meta=0,
        asset_id=110_000,
        sz_decimals=sz_decimals,
        max_leverage=10,
        start_px=Decimal(1),
    )


@given(positive, st.integers(min_value=0, max_value=5))
def test_round_price_cached_equals_fresh(px: Decimal, sz_decimals: int) -> None:
    asset = _asset(sz_decimals)
    first = rules.round_price(asset, px)
    again = rules.round_price(asset, px)
    assert first == again == rules._round_price(sz_decimals, px)
    assert rules.price_is_valid(asset, first)
    # Cached per szDecimals: another asset's rules are not reused by mistake.
    other = rules.round_price(_asset((sz_decimals + 1) % 6), px)
    assert other == rules._round_price((sz_decimals + 1) % 6, px)


def test_round_price_still_refuses_non_positive() -> None:
    for bad in (Decimal(0), Decimal("-1.5")):
        try:
            rules.round_price(_asset(2), bad)
        except ValueError as error:
            assert "positive" in str(error)
        else:
            raise AssertionError(f"{bad} was rounded")


@given(positive, st.integers(min_value=0, max_value=5))
def test_round_price_hands_back_an_already_valid_price_itself(
    px: Decimal, sz_decimals: int
) -> None:
    # A price that needs no rounding and is written canonically comes back as the caller's
    # object (its hash, if known, is reused by the books); any other comes back rounded.
    rules._ROUNDED_CACHE.clear()  # a value cached by an earlier example would come back instead
    fresh = rules._round_price(sz_decimals, px)
    rounded = rules.round_price(_asset(sz_decimals), px)
    assert rounded == fresh and rounded.as_tuple() == fresh.as_tuple()
    assert (rounded is px) == (fresh.as_tuple() == px.as_tuple())


gaps = st.decimals(min_value=Decimal("1e-8"), max_value=Decimal(5), places=8)


@given(positive, gaps, st.integers(min_value=0, max_value=5))
def test_prices_told_rounded_apart_never_round_together(
    low: Decimal, gap: Decimal, szd: int
) -> None:
    # Close pairs (a gap of 1e-8 up to a few units) are where rounding can join two prices.
    high = low + gap
    if rules.rounded_apart(_asset(szd), low, high):
        assert rules._round_price(szd, low) < rules._round_price(szd, high)
    if rules._round_price(szd, low) >= rules._round_price(szd, high):
        assert not rules.rounded_apart(_asset(szd), low, high)


def test_rounded_apart_examples() -> None:
    asset = _asset(2)  # 5 significant figures, at most 4 decimals
    assert rules.rounded_apart(asset, Decimal("24.99"), Decimal("25.01"))
    assert not rules.rounded_apart(asset, Decimal("25.00001"), Decimal("25.00004"))  # both 25
    assert not rules.rounded_apart(asset, Decimal("9.99996"), Decimal("10.0003"))  # both 10
    assert rules.round_price(asset, Decimal("9.99996")) == rules.round_price(
        asset, Decimal("10.0003")
    )
