"""The hot path's shortcuts accept and produce exactly what the full checks do.

- `actions._check_wire_number` accepts a canonical positive string by pattern before trying
  the Decimal round trip; the pattern must accept nothing the round trip refuses.
- `numbers.quantize_price`/`quantize_size` are `format_price`/`format_size` before the string:
  the same value, so the wire string is the same.
- `signing._is_plain` checks leaves inline; it must agree with the path-reporting check.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.protocol import actions, numbers, signing
from hip3.protocol.numbers import DecimalFormatError, Rounding

_wire_like = st.one_of(
    st.from_regex(r"-?[0-9]{1,8}(\.[0-9]{1,8})?", fullmatch=True),
    st.text(alphabet="0123456789.-e ", max_size=12),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)


def _slow_accepts(value: str) -> bool:
    try:
        parsed = numbers.parse_decimal(value)
    except DecimalFormatError:
        return False
    return parsed > 0 and numbers.wire_decimal(parsed) == value


@given(_wire_like)
def test_canonical_pattern_agrees_with_the_decimal_round_trip(value):
    try:
        actions._check_wire_number(value, "px")
        accepted = True
    except actions.ActionError:
        accepted = False
    assert accepted == _slow_accepts(value)
    if actions._CANONICAL_POSITIVE(value) is not None:
        assert _slow_accepts(value)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("1", True),
        ("0.5", True),
        ("10.05", True),
        ("2000.0", False),
        ("0", False),
        ("01", False),
        ("1.", False),
        (".5", False),
        ("-1", False),
        ("1e3", False),
        ("0.0", False),
    ],
)
def test_canonical_examples(value, ok):
    assert _slow_accepts(value) == ok
    if ok:
        assert actions._check_wire_number(value, "px") == value
    else:
        with pytest.raises(actions.ActionError):
            actions._check_wire_number(value, "px")


@given(
    st.decimals(min_value=Decimal("1e-9"), max_value=Decimal("1e9"), places=12),
    st.integers(0, 6),
    st.booleans(),
    st.sampled_from(list(Rounding)),
)
def test_quantize_is_format_before_the_string(px, sz_decimals, is_buy, rounding):
    try:
        text = numbers.format_price(px, sz_decimals=sz_decimals, is_buy=is_buy, rounding=rounding)
    except numbers.PriceError:
        with pytest.raises(numbers.PriceError):
            numbers.quantize_price(px, sz_decimals=sz_decimals, is_buy=is_buy, rounding=rounding)
    else:
        q = numbers.quantize_price(px, sz_decimals=sz_decimals, is_buy=is_buy, rounding=rounding)
        assert numbers.wire_decimal(q) == text and q == Decimal(text)
    try:
        size = numbers.format_size(px, sz_decimals=sz_decimals)
    except numbers.SizeError:
        with pytest.raises(numbers.SizeError):
            numbers.quantize_size(px, sz_decimals=sz_decimals)
    else:
        assert numbers.wire_decimal(numbers.quantize_size(px, sz_decimals=sz_decimals)) == size


_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=3),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.floats(allow_nan=False),
    st.decimals(allow_nan=False, allow_infinity=False),
)
_values = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=2), st.integers(0, 3)), inner, max_size=3),
    ),
    max_leaves=12,
)


@given(_values)
def test_is_plain_agrees_with_the_path_check(value):
    try:
        signing._check_msgpack_value(value, "action")
        plain = True
    except signing.SigningError:
        plain = False
    assert signing._is_plain(value) == plain
