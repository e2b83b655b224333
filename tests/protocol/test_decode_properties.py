"""Property: garbage never raises out of the decode entry points, and whatever does decode
holds no NaN, infinity or negative number where the protocol forbids one."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from hip3.protocol.frames import DecodeError, PostFrame, decode_frame, order_statuses
from hip3.protocol.info_answers import CHECKED_INFO_TYPES, BadAnswer, check_info_answer
from hip3.protocol.wire_values import (
    is_non_negative_decimal,
    is_positive_decimal,
    is_signed_decimal,
)

from .test_bad_numbers import (
    BBO,
    CTX,
    FILLS,
    FUNDING,
    GOOD_ANSWERS,
    ORDER_UPDATES,
    USER_EVENT,
    order_answer,
)

# Field names (snake_case, as the structs hold them) by what their value may be.
POSITIVE = {"px", "oracle_px", "mark_px", "mid_px", "limit_px", "avg_px", "orig_sz", "total_sz"}
NON_NEGATIVE = {
    "sz",
    "open_interest",
    "prev_day_px",
    "day_ntl_vlm",
    "day_base_vlm",
    "builder_fee",
    "impact_pxs",
}
SIGNED = {
    "funding",
    "premium",
    "fee",
    "start_position",
    "closed_pnl",
    "usdc",
    "szi",
    "funding_rate",
    "liquidated_ntl_pos",
    "liquidated_account_value",
}
COUNTS = {"time", "timestamp", "status_timestamp", "oid", "tid", "n", "lid", "id", "twap_id"}

NASTY_TEXT = ["NaN", "nan", "-1", "-0.5", "0", "0.0", "1e5", "inf", "-Infinity", "sNaN", "abc"]
garbage = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(NASTY_TEXT),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.text(max_size=6) | st.sampled_from(["px", "sz", "oid"]), children, max_size=3
        )
    ),
    max_leaves=8,
)


def leaf_paths(value: Any, path: tuple = ()) -> list[tuple]:
    paths = [path] if path else []
    if isinstance(value, dict):
        for k, v in value.items():
            paths += leaf_paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            paths += leaf_paths(v, (*path, i))
    return paths


def replaced(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: replaced(v, rest, new) if k == head else v for k, v in value.items()}
    return [replaced(v, rest, new) if i == head else v for i, v in enumerate(value)]


def is_number_path(path: tuple) -> bool:
    last = path[-1]
    return isinstance(last, int) or any(
        last == (w[0] + w.title().replace("_", "")[1:])
        for w in POSITIVE | NON_NEGATIVE | SIGNED | COUNTS
    )


# Mostly the values that slip past a careless check, sometimes any garbage at all.
leaf_garbage = st.sampled_from(NASTY_TEXT) | st.integers(min_value=-3, max_value=3) | garbage


@st.composite
def mutated(draw, templates: list) -> bytes:
    """A good frame with one to three leaves replaced, mostly number fields."""
    base = draw(st.sampled_from(templates))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = leaf_paths(base) or [()]  # a bare answer (a string) is its own only leaf
        numbers = [p for p in paths if p and is_number_path(p)]
        pool = numbers if numbers and draw(st.integers(0, 4)) else paths
        path = draw(st.sampled_from(pool))
        base = replaced(base, path, draw(leaf_garbage))
    return json.dumps(base, allow_nan=True).encode()


def check_numbers(value: Any, name: str = "") -> None:
    """Walk a decoded value; every number field must satisfy its kind's rule."""
    if isinstance(value, msgspec.Struct):
        for field in msgspec.structs.fields(value):
            check_numbers(getattr(value, field.name), field.name)
        return
    if isinstance(value, list | tuple):
        for item in value:
            check_numbers(item, name)
        return
    if value is None:
        return
    if name in POSITIVE | NON_NEGATIVE | SIGNED:
        number = Decimal(value)  # raises on anything that is not a number
        assert number.is_finite(), (name, value)
        if name in POSITIVE:
            assert number > 0, (name, value)
        if name in NON_NEGATIVE:
            assert number >= 0, (name, value)
    elif name in COUNTS:
        assert type(value) is int and value >= 0, (name, value)
    elif name == "mark_px":  # a liquidation's markPx is a Decimal
        assert value.is_finite() and value > 0


FRAMES = [BBO, CTX, FILLS, ORDER_UPDATES, USER_EVENT, FUNDING]


@given(mutated(FRAMES) | garbage.map(lambda g: json.dumps(g, allow_nan=True).encode()))
def test_garbage_frames_never_raise_and_never_carry_bad_numbers(raw: bytes) -> None:
    result = decode_frame(raw)
    if isinstance(result, DecodeError):
        assert result.kind and "\n" not in result.detail
        return
    check_numbers(result)
    if isinstance(result, PostFrame):
        for status in order_statuses(result):
            check_numbers(status)


STATUS_TEMPLATE = json.loads(
    order_answer([{"filled": {"oid": 4, "totalSz": "0.5", "avgPx": "101.5"}}, "success"])
)


@given(mutated([STATUS_TEMPLATE]))
def test_garbage_order_statuses_never_raise_and_never_carry_bad_numbers(raw: bytes) -> None:
    result = decode_frame(raw)
    if isinstance(result, PostFrame):
        statuses = order_statuses(result)
        for status in statuses:
            if status.kind in ("resting", "filled"):
                check_numbers(status)
            else:
                assert status.oid is None and status.total_sz is None


ANSWER_TEMPLATES = {kind: answer for kind, answer in GOOD_ANSWERS}


@given(
    st.sampled_from(sorted(CHECKED_INFO_TYPES)).flatmap(
        lambda kind: st.tuples(
            st.just(kind),
            mutated([ANSWER_TEMPLATES[kind]])
            | garbage.map(lambda g: json.dumps(g, allow_nan=True).encode()),
        )
    )
)
def test_garbage_info_answers_never_raise_and_never_pass_bad_numbers(case) -> None:
    kind, raw = case
    result = check_info_answer(kind, raw)
    if isinstance(result, BadAnswer):
        assert result.reason.startswith(kind) and "\n" not in result.reason
        return
    # What passed is what reconciliation reads: the numbers it takes from each answer.
    if kind == "clearinghouseState":
        for ap in result.get("assetPositions", []):
            assert Decimal(ap["position"]["szi"]).is_finite()
            entry = ap["position"].get("entryPx")
            assert entry is None or Decimal(entry) >= 0
    elif kind in ("openOrders", "frontendOpenOrders"):
        for row in result:
            assert Decimal(row["limitPx"]) > 0 and Decimal(row["sz"]) >= 0
            assert type(row["oid"]) is int and row["oid"] >= 0
            assert row["side"] in ("A", "B")
    elif kind in ("userFills", "userFillsByTime"):
        for fill in result:
            assert Decimal(fill["px"]) > 0 and Decimal(fill["sz"]) > 0
            assert type(fill["tid"]) is int and fill["tid"] >= 0
    elif kind == "userFees" and result.get("userCrossRate") is not None:
        assert Decimal(result["userCrossRate"]) >= 0
    elif kind == "meta":
        for asset in result["universe"]:
            assert type(asset["szDecimals"]) is int and 0 <= asset["szDecimals"] <= 6
    elif kind == "perpDexs":
        assert result[0] is None
        for dex in result[1:]:
            assert dex is None or Decimal(dex.get("deployerFeeScale") or "1") >= 0


ctx_values = st.sampled_from(["1", "0", "0.0", "-1", "100.5", "1|1", "|", "", "NaN", "1e3"]) | (
    st.text(alphabet="0123456789.-|", max_size=8)
)
CTX_FIELDS = {
    "oraclePx": is_positive_decimal,
    "markPx": is_positive_decimal,
    "midPx": is_positive_decimal,
    "funding": is_signed_decimal,
    "premium": is_signed_decimal,
    "openInterest": is_non_negative_decimal,
    "prevDayPx": is_non_negative_decimal,
    "dayNtlVlm": is_non_negative_decimal,
    "dayBaseVlm": is_non_negative_decimal,
}


@given(
    st.fixed_dictionaries(
        {"oraclePx": ctx_values, "markPx": ctx_values},
        optional={
            **{name: ctx_values | st.none() for name in list(CTX_FIELDS)[2:]},
            "impactPxs": st.tuples(ctx_values, ctx_values).map(list) | st.none(),
        },
    )
)
def test_the_joined_ctx_check_accepts_exactly_what_the_field_checks_accept(ctx: dict) -> None:
    """The activeAssetCtx numbers are checked by one regex over all of them joined; it must
    agree with checking each number alone (a "|" inside a value must not shift the others)."""
    expected = all(
        value is None or CTX_FIELDS[name](value)
        for name, value in ctx.items()
        if name in CTX_FIELDS
    ) and (ctx.get("impactPxs") is None or all(map(is_non_negative_decimal, ctx["impactPxs"])))
    frame = {"channel": "activeAssetCtx", "data": {"coin": "xyz:AAA", "ctx": ctx}}
    result = decode_frame(json.dumps(frame))
    assert isinstance(result, DecodeError) != expected, (ctx, result)
    if isinstance(result, DecodeError):
        assert "ctx" in result.detail
