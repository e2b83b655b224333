"""Price/size formatting (the exchange's tick and lot rules) and wire decimals."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.protocol.numbers import (
    MIN_NOTIONAL_USD,
    DecimalFormatError,
    NotionalError,
    PriceError,
    Rounding,
    SizeError,
    check_min_notional,
    format_price,
    format_size,
    parse_decimal,
    wire_decimal,
)

A, P = Rounding.AGGRESSIVE, Rounding.PASSIVE


def is_valid_price(text: str, *, sz_decimals: int, spot: bool) -> bool:
    """Independent statement of the exchange's price rule, read off the string."""
    max_decimals = (8 if spot else 6) - sz_decimals
    integer, _, fraction = text.partition(".")
    if not fraction:
        return True  # integer prices are always allowed
    digits = (integer + fraction).lstrip("0")
    return len(fraction) <= max_decimals and len(digits) <= 5


# (px, sz_decimals, spot, expected validity), the examples of
# https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/tick-and-lot-size
SECTION_6_VALIDITY = [
    ("1234.5", 0, False, True),
    ("1234.56", 0, False, False),
    ("0.001234", 0, False, True),
    ("0.0012345", 0, False, False),
    ("0.01234", 1, False, True),
    ("0.012345", 1, False, False),
    ("123456", 0, False, True),
    ("12345.6", 0, False, False),
    ("0.0001234", 0, True, True),
    ("0.0001234", 1, True, True),
    ("0.0001234", 3, True, False),
]


@pytest.mark.parametrize(("px", "sz_decimals", "spot", "valid"), SECTION_6_VALIDITY)
def test_section_6_examples(px: str, sz_decimals: int, spot: bool, valid: bool) -> None:
    assert is_valid_price(px, sz_decimals=sz_decimals, spot=spot) is valid
    # A valid price is a fixed point in both directions; an invalid one must move.
    for is_buy in (True, False):
        for rounding in Rounding:
            out = format_price(
                Decimal(px), sz_decimals=sz_decimals, is_buy=is_buy, rounding=rounding, spot=spot
            )
            assert (out == px) is valid


@pytest.mark.parametrize(
    ("px", "sz_decimals", "is_buy", "rounding", "spot", "expected"),
    [
        ("123456.7", 0, True, A, False, "123457"),
        ("123456.7", 0, False, A, False, "123456"),
        ("123456.7", 0, True, P, False, "123456"),
        ("1234.56", 0, True, A, False, "1234.6"),
        ("1234.56", 0, False, A, False, "1234.5"),
        ("1234.56", 0, False, P, False, "1234.6"),
        ("0.0012345", 0, True, A, False, "0.001235"),
        ("0.0012345", 0, True, P, False, "0.001234"),
        ("0.012345", 1, True, A, False, "0.01235"),
        ("12345.6", 0, True, A, False, "12346"),
        ("9999.95", 0, True, A, False, "10000"),
        ("99999.5", 0, True, A, False, "100000"),
        ("0.0001234", 3, True, A, True, "0.00013"),
        ("0.0001234", 3, False, A, True, "0.00012"),
        ("2000.000", 2, True, A, False, "2000"),
        ("1E+5", 0, True, A, False, "100000"),
        ("0.00000001", 0, True, A, False, "0.000001"),
        ("100.001", 2, True, A, False, "100.01"),
        ("100.019", 2, False, A, False, "100.01"),
    ],
)
def test_format_price_table(px, sz_decimals, is_buy, rounding, spot, expected) -> None:
    out = format_price(
        Decimal(px), sz_decimals=sz_decimals, is_buy=is_buy, rounding=rounding, spot=spot
    )
    assert out == expected


@pytest.mark.parametrize("px", ["0", "-1", "NaN", "Infinity"])
def test_format_price_rejects_non_positive(px: str) -> None:
    with pytest.raises(PriceError, match="price"):
        format_price(Decimal(px), sz_decimals=0, is_buy=True, rounding=A)


def test_format_price_rejects_rounding_to_zero_and_bad_arguments() -> None:
    with pytest.raises(PriceError, match="rounds down to 0"):
        format_price(Decimal("0.0000001"), sz_decimals=0, is_buy=False, rounding=A)
    with pytest.raises(PriceError, match="sz_decimals"):
        format_price(Decimal("1"), sz_decimals=7, is_buy=True, rounding=A)
    with pytest.raises(PriceError, match="Decimal"):
        format_price(1.5, sz_decimals=0, is_buy=True, rounding=A)  # type: ignore[arg-type]
    with pytest.raises(PriceError, match="rounding"):
        format_price(Decimal(1), sz_decimals=0, is_buy=True, rounding="up")  # type: ignore[arg-type]


prices = st.builds(
    lambda digits, exponent: Decimal(digits).scaleb(exponent),
    st.integers(min_value=1, max_value=10**9),
    st.integers(min_value=-14, max_value=3),
)


@given(
    px=prices,
    sz_decimals=st.integers(min_value=0, max_value=6),
    is_buy=st.booleans(),
    rounding=st.sampled_from(Rounding),
    spot=st.booleans(),
)
def test_format_price_properties(px, sz_decimals, is_buy, rounding, spot) -> None:
    try:
        out = format_price(px, sz_decimals=sz_decimals, is_buy=is_buy, rounding=rounding, spot=spot)
    except PriceError as exc:
        # Only a price that floors to nothing may fail, and it must say so.
        assert "rounds down to 0" in str(exc)
        assert px < Decimal(1).scaleb(-((8 if spot else 6) - sz_decimals))
        return
    value = parse_decimal(out)
    assert wire_decimal(value) == out  # canonical: no exponent, no trailing zeros
    assert value > 0
    assert is_valid_price(out, sz_decimals=sz_decimals, spot=spot)
    round_up = is_buy == (rounding is Rounding.AGGRESSIVE)
    assert value >= px if round_up else value <= px
    # Nearest: no valid price strictly between px and the result. Every valid price is a
    # multiple of 10^-max_decimals, so enumerate those when there are few enough.
    unit = Decimal(1).scaleb(-((8 if spot else 6) - sz_decimals))
    low, high = sorted((px, value))
    first, last = (low // unit) + 1, -(-high // unit) - 1
    if last - first < 2000:
        for k in range(int(first), int(last) + 1):
            candidate = wire_decimal(k * unit)
            inside = low < k * unit < high
            assert not (inside and is_valid_price(candidate, sz_decimals=sz_decimals, spot=spot))


@pytest.mark.parametrize(
    ("sz", "sz_decimals", "expected"),
    [
        ("1.23456", 3, "1.234"),
        ("1.2349", 3, "1.234"),
        ("1.0", 3, "1"),
        ("1.100", 3, "1.1"),
        ("123456", 0, "123456"),
        ("0.5", 0, None),
        ("0.0009", 3, None),
        ("0", 2, None),
        ("-1", 2, None),
    ],
)
def test_format_size(sz: str, sz_decimals: int, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(SizeError, match="size"):
            format_size(Decimal(sz), sz_decimals=sz_decimals)
    else:
        assert format_size(Decimal(sz), sz_decimals=sz_decimals) == expected


def test_size_error_names_the_size() -> None:
    with pytest.raises(SizeError, match=r"0\.0009"):
        format_size(Decimal("0.0009"), sz_decimals=3)


@given(
    sz=st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10**7), places=8),
    sz_decimals=st.integers(min_value=0, max_value=6),
)
def test_format_size_truncates(sz: Decimal, sz_decimals: int) -> None:
    try:
        out = format_size(sz, sz_decimals=sz_decimals)
    except SizeError:
        assert sz < Decimal(1).scaleb(-sz_decimals)
        return
    value = parse_decimal(out)
    assert 0 < value <= sz
    assert sz - value < Decimal(1).scaleb(-sz_decimals)
    assert len(out.partition(".")[2]) <= sz_decimals


def test_min_notional() -> None:
    check_min_notional(Decimal("100"), Decimal("0.1"))  # exactly $10 passes
    assert Decimal(10) == MIN_NOTIONAL_USD
    with pytest.raises(NotionalError) as info:
        check_min_notional(Decimal("99.9"), Decimal("0.1"))
    assert re.search(r"9\.99.*99\.9.*0\.1", str(info.value))
    check_min_notional(Decimal("1"), Decimal("5"), minimum=Decimal(5))


@pytest.mark.parametrize(
    ("d", "text"),
    [
        (Decimal("1E+5"), "100000"),
        (Decimal("-0"), "0"),
        (Decimal("-0.000"), "0"),
        (Decimal("2000.0"), "2000"),
        (Decimal("0.00000001"), "0.00000001"),
        (Decimal("1.2300"), "1.23"),
        (Decimal("-5.50"), "-5.5"),
        (Decimal("12345678901234567890123456789012.5"), "12345678901234567890123456789012.5"),
    ],
)
def test_wire_decimal(d: Decimal, text: str) -> None:
    assert wire_decimal(d) == text


@pytest.mark.parametrize("bad", ["1e5", " 1", "1.", ".5", "+1", "NaN", "", "1,5", "0x10"])
def test_parse_decimal_is_strict(bad: str) -> None:
    with pytest.raises(DecimalFormatError):
        parse_decimal(bad)


def test_parse_decimal_rejects_non_strings() -> None:
    with pytest.raises(DecimalFormatError, match="float"):
        parse_decimal(1.5)  # type: ignore[arg-type]
    assert parse_decimal("-0.5") == Decimal("-0.5")
