"""The hot path's shortcuts accept and produce exactly what the full checks do.

- `actions._check_wire_number` accepts a canonical positive string by pattern before trying
  the Decimal round trip; the pattern must accept nothing the round trip refuses.
- `numbers.quantize_price`/`quantize_size` are `format_price`/`format_size` before the string:
  the same value, so the wire string is the same.
- `signing._is_plain` checks leaves inline; it must agree with the path-reporting check.
- a bbo's and an l2Book's levels are checked by one regex over their joined numbers; a frame
  must be refused exactly when one number fails its own check, naming that number.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec
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


# --- a book's levels: one regex over the joined numbers, or the check of each number ---------

_level_number = st.one_of(
    st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,4})?", fullmatch=True),
    st.sampled_from(["0", "0.0", "1|2", "1|", "|", "", "NaN", "1e3", " 1", "1" * 21, "-0.5"]),
    st.text(alphabet="0123456789.|-", max_size=8),
)


def _each_number_passes(levels: list[tuple[str, str]]) -> bool:
    from hip3.protocol.wire_values import require_non_negative, require_positive

    try:
        for px, sz in levels:
            require_positive(px, "px")
            require_non_negative(sz, "sz")
    except ValueError:
        return False
    return True


def _level(px: str, sz: str) -> dict:
    return {"px": px, "sz": sz, "n": 1}


def _first_bad_field(levels: list[tuple[str, tuple[str, str]]]) -> str:
    """The field the full checks name first: levels in order, px before sz."""
    for name, (px, sz) in levels:
        if not _each_number_passes([(px, "1")]):
            return name + ".px"
        if not _each_number_passes([("1", sz)]):
            return name + ".sz"
    raise AssertionError("no bad number")


_sides = st.one_of(st.none(), st.tuples(_level_number, _level_number))


@given(_sides, _sides)
def test_a_bbo_is_refused_exactly_when_one_of_its_numbers_is(bid, ask):
    from hip3.protocol.frames import BboFrame, DecodeError, decode_frame

    side = [None if s is None else _level(*s) for s in (bid, ask)]
    frame = msgspec.json.encode(
        {"channel": "bbo", "data": {"coin": "xyz:AAA", "time": 1, "bbo": side}}
    )
    got = decode_frame(frame)
    named = [(f"bbo[{i}]", s) for i, s in enumerate((bid, ask)) if s is not None]
    good = _each_number_passes([s for _name, s in named])
    assert isinstance(got, BboFrame) == good
    if not good:
        assert isinstance(got, DecodeError) and got.kind == "invalid"
        assert _first_bad_field(named) + ":" in got.detail


@given(
    st.lists(st.tuples(_level_number, _level_number), max_size=6),
    st.lists(st.tuples(_level_number, _level_number), max_size=6),
)
def test_an_l2_book_is_refused_exactly_when_one_of_its_numbers_is(bids, asks):
    from hip3.protocol.frames import DecodeError, L2BookFrame, decode_frame

    levels = [[_level(*lv) for lv in bids], [_level(*lv) for lv in asks]]
    frame = msgspec.json.encode(
        {"channel": "l2Book", "data": {"coin": "xyz:AAA", "time": 1, "levels": levels}}
    )
    got = decode_frame(frame)
    named = [(f"levels[0][{i}]", lv) for i, lv in enumerate(bids)]
    named += [(f"levels[1][{i}]", lv) for i, lv in enumerate(asks)]
    good = _each_number_passes([lv for _name, lv in named])
    assert isinstance(got, L2BookFrame) == good
    if not good:
        assert isinstance(got, DecodeError) and got.kind == "invalid"
        assert _first_bad_field(named) + ":" in got.detail


@pytest.mark.parametrize(
    ("bids", "asks", "field"),
    [
        # a "|" inside a value could pass for the joined text of two good levels
        ([("1|0", "1|0")], [], "levels[0][0].px"),
        ([("2", "1")], [("1|0|3", "1")], "levels[1][0].px"),
        ([("2", "1"), ("1", "0|1|1")], [], "levels[0][1].sz"),
    ],
)
def test_a_separator_inside_a_level_never_passes(bids, asks, field):
    from hip3.protocol.frames import DecodeError, decode_frame

    levels = [[_level(*lv) for lv in bids], [_level(*lv) for lv in asks]]
    got = decode_frame(
        msgspec.json.encode(
            {"channel": "l2Book", "data": {"coin": "xyz:AAA", "time": 1, "levels": levels}}
        )
    )
    assert isinstance(got, DecodeError) and field + ":" in got.detail
    bbo = decode_frame(
        msgspec.json.encode(
            {
                "channel": "bbo",
                "data": {"coin": "xyz:AAA", "time": 1, "bbo": [None, _level(*(bids + asks)[-1])]},
            }
        )
    )
    assert isinstance(bbo, DecodeError)
