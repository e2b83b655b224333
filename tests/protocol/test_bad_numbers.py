"""Numbers and ids are checked at decode: a bad one makes the frame (or info answer) a typed
bad result whose one-line reason names the channel and the field."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from hip3.protocol.frames import (
    ActiveAssetCtxFrame,
    BboFrame,
    DecodeError,
    OrderUpdatesFrame,
    PostFrame,
    UserEventsFrame,
    UserFillsFrame,
    decode_frame,
    order_statuses,
)
from hip3.protocol.info_answers import CHECKED_INFO_TYPES, BadAnswer, check_info_answer

CLOID = "0x" + "ab" * 16
USER = "0x" + "12" * 20

BBO = {
    "channel": "bbo",
    "data": {
        "coin": "xyz:AAA",
        "time": 1_764_000_000_000,
        "bbo": [{"px": "99.5", "sz": "3", "n": 1}, {"px": "100.5", "sz": "2.5", "n": 2}],
    },
}
CTX = {
    "channel": "activeAssetCtx",
    "data": {
        "coin": "xyz:AAA",
        "ctx": {
            "funding": "-0.0000125",
            "openInterest": "1500.5",
            "prevDayPx": "98",
            "dayNtlVlm": "0.0",
            "premium": "0.0004",
            "oraclePx": "100.1",
            "markPx": "100.05",
            "midPx": "100",
            "impactPxs": ["99.9", "100.2"],
            "dayBaseVlm": "12",
        },
    },
}
FILL = {
    "coin": "xyz:AAA",
    "px": "100.5",
    "sz": "0.2",
    "side": "B",
    "time": 1_764_000_000_000,
    "startPosition": "-0.2",
    "dir": "Close Short",
    "closedPnl": "-0.1",
    "hash": "0x" + "00" * 32,
    "oid": 77,
    "crossed": True,
    "fee": "-0.001",
    "tid": 991,
    "cloid": CLOID,
    "feeToken": "USDC",
}
FILLS = {"channel": "userFills", "data": {"user": USER, "fills": [FILL]}}
ORDER_UPDATES = {
    "channel": "orderUpdates",
    "data": [
        {
            "order": {
                "coin": "xyz:AAA",
                "side": "A",
                "limitPx": "101",
                "sz": "0",
                "oid": 77,
                "timestamp": 1_764_000_000_000,
                "origSz": "0.2",
                "cloid": CLOID,
            },
            "status": "filled",
            "statusTimestamp": 1_764_000_000_001,
        }
    ],
}
USER_EVENT = {"channel": "user", "data": {"fills": [FILL]}}
FUNDING = {
    "channel": "user",
    "data": {
        "funding": {
            "time": 1_764_000_000_000,
            "coin": "xyz:AAA",
            "usdc": "-0.5",
            "szi": "-2",
            "fundingRate": "0.0001",
        }
    },
}


def with_value(frame: dict, path: tuple, value: Any) -> bytes:
    out = copy.deepcopy(frame)
    node = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return json.dumps(out).encode()


def test_the_good_frames_decode() -> None:
    assert isinstance(decode_frame(json.dumps(BBO)), BboFrame)
    assert isinstance(decode_frame(json.dumps(CTX)), ActiveAssetCtxFrame)
    assert isinstance(decode_frame(json.dumps(FILLS)), UserFillsFrame)
    assert isinstance(decode_frame(json.dumps(ORDER_UPDATES)), OrderUpdatesFrame)
    assert isinstance(decode_frame(json.dumps(USER_EVENT)), UserEventsFrame)
    assert isinstance(decode_frame(json.dumps(FUNDING)), UserEventsFrame)


BAD_FRAMES = [
    # (frame, path to the field, bad value, text the reason must contain)
    (BBO, ("data", "bbo", 0, "px"), "abc", "bbo[0].px"),
    (BBO, ("data", "bbo", 1, "px"), "NaN", "bbo[1].px"),
    (BBO, ("data", "bbo", 0, "px"), "0", "bbo[0].px"),
    (BBO, ("data", "bbo", 0, "px"), "-1", "bbo[0].px"),
    (BBO, ("data", "bbo", 0, "px"), "1e5", "bbo[0].px"),
    (BBO, ("data", "bbo", 0, "px"), "Infinity", "bbo[0].px"),
    (BBO, ("data", "bbo", 0, "px"), " 1", "bbo[0].px"),
    (BBO, ("data", "bbo", 0, "px"), "1" * 41, "bbo[0].px"),
    (BBO, ("data", "bbo", 1, "sz"), "-0.5", "bbo[1].sz"),
    (BBO, ("data", "bbo", 1, "n"), -1, "n"),
    (BBO, ("data", "time"), -5, "time"),
    (BBO, ("data", "time"), 2**70, "time"),
    (BBO, ("data", "time"), 1.5, "time"),
    (CTX, ("data", "ctx", "oraclePx"), "NaN", "oraclePx"),
    (CTX, ("data", "ctx", "oraclePx"), "0.0", "oraclePx"),
    (CTX, ("data", "ctx", "markPx"), "sNaN", "markPx"),
    (CTX, ("data", "ctx", "midPx"), "-3", "midPx"),
    (CTX, ("data", "ctx", "funding"), "x", "funding"),
    (CTX, ("data", "ctx", "openInterest"), "-1", "openInterest"),
    (CTX, ("data", "ctx", "dayNtlVlm"), "inf", "dayNtlVlm"),
    (CTX, ("data", "ctx", "impactPxs"), ["1", "nan"], "impactPxs[1]"),
    (FILLS, ("data", "fills", 0, "sz"), "abc", "sz"),
    (FILLS, ("data", "fills", 0, "sz"), "0", "sz"),
    (FILLS, ("data", "fills", 0, "px"), "NaN", "px"),
    (FILLS, ("data", "fills", 0, "side"), "S", "side"),
    (FILLS, ("data", "fills", 0, "oid"), -1, "oid"),
    (FILLS, ("data", "fills", 0, "tid"), "991", "tid"),
    (FILLS, ("data", "fills", 0, "fee"), "1e3", "fee"),
    (FILLS, ("data", "fills", 0, "closedPnl"), "NaN", "closedPnl"),
    (FILLS, ("data", "fills", 0, "cloid"), "0x12", "cloid"),
    (FILLS, ("data", "fills", 0, "coin"), "", "coin"),
    (FILLS, ("data", "fills", 0, "coin"), "a:b:c", "coin"),
    (ORDER_UPDATES, ("data", 0, "order", "coin"), ":AAA", "coin"),
    (FILLS, ("data", "fills", 0, "liquidation"), {"markPx": "NaN", "method": "market"}, "liq"),
    (ORDER_UPDATES, ("data", 0, "order", "limitPx"), "abc", "limitPx"),
    (ORDER_UPDATES, ("data", 0, "order", "origSz"), "-1", "origSz"),
    (ORDER_UPDATES, ("data", 0, "order", "origSz"), "0", "origSz"),
    (ORDER_UPDATES, ("data", 0, "order", "oid"), True, "oid"),
    (ORDER_UPDATES, ("data", 0, "statusTimestamp"), -1, "statusTimestamp"),
    (USER_EVENT, ("data", "fills", 0, "sz"), "abc", "sz"),
    (FUNDING, ("data", "funding", "usdc"), "NaN", "usdc"),
    (FUNDING, ("data", "funding", "time"), "now", "time"),
]


@pytest.mark.parametrize(("frame", "path", "value", "field"), BAD_FRAMES)
def test_a_bad_number_makes_the_frame_a_decode_error_naming_channel_and_field(
    frame: dict, path: tuple, value: Any, field: str
) -> None:
    result = decode_frame(with_value(frame, path, value))
    assert isinstance(result, DecodeError), result
    assert result.kind == "invalid"
    assert f"channel {frame['channel']!r}" in result.detail
    assert field in result.detail
    assert "\n" not in result.detail and "regex" not in result.detail


def test_a_decoded_frame_holds_only_finite_numbers() -> None:
    frame = decode_frame(json.dumps(CTX))
    ctx = frame.data.ctx
    for value in (ctx.oracle_px, ctx.mark_px, ctx.mid_px, ctx.funding, ctx.open_interest):
        assert Decimal(value).is_finite()


def post(payload: dict, pid: int = 5) -> bytes:
    return json.dumps({"channel": "post", "data": {"id": pid, "response": payload}}).encode()


def order_answer(statuses: list) -> bytes:
    return post(
        {
            "type": "action",
            "payload": {
                "status": "ok",
                "response": {"type": "order", "data": {"statuses": statuses}},
            },
        }
    )


def test_post_frame_with_a_bad_id_is_a_decode_error() -> None:
    result = decode_frame(post({"type": "error", "payload": "x"}, pid=-1))
    assert isinstance(result, DecodeError) and "id" in result.detail


@pytest.mark.parametrize(
    "element",
    [
        {"resting": {"oid": -4}},
        {"resting": {"oid": "4"}},
        {"resting": {"oid": 4, "cloid": "not-a-cloid"}},
        {"filled": {"oid": 4, "totalSz": "abc", "avgPx": "1"}},
        {"filled": {"oid": 4, "totalSz": "1", "avgPx": "NaN"}},
        {"filled": {"oid": 4, "totalSz": "1", "avgPx": "0"}},
        {"filled": {"oid": 4, "totalSz": "0", "avgPx": "2"}},
        {"filled": {"oid": 4.5, "totalSz": "1", "avgPx": "2"}},
    ],
)
def test_a_bad_order_status_element_is_unknown_in_place(element: dict) -> None:
    frame = decode_frame(order_answer([{"resting": {"oid": 1}}, element]))
    assert isinstance(frame, PostFrame)
    statuses = order_statuses(frame)
    assert [s.kind for s in statuses] == ["resting", "unknown"]


def test_good_order_statuses_keep_their_values() -> None:
    frame = decode_frame(
        order_answer([{"filled": {"oid": 4, "totalSz": "0.5", "avgPx": "101.5", "cloid": CLOID}}])
    )
    (status,) = order_statuses(frame)
    assert (status.kind, status.oid, status.total_sz, status.avg_px, status.cloid) == (
        "filled",
        4,
        "0.5",
        "101.5",
        CLOID,
    )


# --- info answers -------------------------------------------------------------------------

OPEN_ORDER = {
    "coin": "xyz:AAA",
    "limitPx": "99.5",
    "oid": 12,
    "side": "B",
    "sz": "0.5",
    "timestamp": 1_764_000_000_000,
    "origSz": "0.5",
    "cloid": CLOID,
}
STATE = {
    "assetPositions": [
        {"type": "oneWay", "position": {"coin": "xyz:AAA", "szi": "-0.5", "entryPx": "100.2"}}
    ],
    "marginSummary": {"accountValue": "1000"},
    "time": 1_764_000_000_000,
}
GOOD_ANSWERS: list[tuple[str, Any]] = [
    ("perpDexs", [None, {"name": "xyz", "deployerFeeScale": "1.0"}]),
    ("meta", {"universe": [{"name": "xyz:AAA", "szDecimals": 2, "maxLeverage": 10}]}),
    ("clearinghouseState", STATE),
    ("openOrders", [OPEN_ORDER]),
    ("frontendOpenOrders", [dict(OPEN_ORDER, isTrigger=False, orderType="Limit")]),
    ("orderStatus", {"status": "unknownOid"}),
    (
        "orderStatus",
        {
            "status": "order",
            "order": {"order": OPEN_ORDER, "status": "open", "statusTimestamp": 1},
        },
    ),
    ("userFills", [FILL]),
    ("userFillsByTime", [FILL]),
    ("userFees", {"userCrossRate": "0.00045", "activeReferralDiscount": "0.0"}),
    ("perpsAtOpenInterestCap", ["xyz:AAA"]),
    ("l2Book", {"coin": "xyz:AAA", "time": 1, "levels": [[{"px": "1", "sz": "2", "n": 1}], []]}),
    (
        "metaAndAssetCtxs",
        [
            {"universe": [{"name": "xyz:AAA", "szDecimals": 2}]},
            [{"oraclePx": "100.1", "markPx": "100", "funding": "0.0001", "midPx": None}],
        ],
    ),
    ("userRole", {"role": "user"}),
    ("userRole", {"role": "agent", "data": {"user": USER}}),
    ("userRole", {"role": "subAccount", "data": {"master": USER}}),
    ("userRole", {"role": "missing"}),
    ("extraAgents", [{"name": "bot valid_until 1800000000000", "address": USER, "validUntil": 1}]),
    ("extraAgents", [{"name": "", "address": USER, "validUntil": None}]),
    ("userAbstraction", "disabled"),
    ("userAbstraction", "unifiedAccount"),
    ("spotMeta", {"tokens": [{"name": "USDC", "index": 0}, {"name": "USDH", "index": 7}]}),
    ("activeAssetData", {"coin": "xyz:AAA", "leverage": {"type": "isolated", "value": 3}}),
]


@pytest.mark.parametrize(("info_type", "answer"), GOOD_ANSWERS)
def test_good_info_answers_come_back_as_plain_json(info_type: str, answer: Any) -> None:
    assert check_info_answer(info_type, json.dumps(answer).encode()) == answer


def test_every_checked_info_type_has_a_good_example() -> None:
    assert {t for t, _a in GOOD_ANSWERS} == CHECKED_INFO_TYPES


BAD_ANSWERS: list[tuple[str, Any, str]] = [
    ("perpDexs", [1, 2], "$[0]"),
    ("perpDexs", [{"name": "xyz"}], "first element is null"),
    ("perpDexs", [None, {"name": "xyz", "deployerFeeScale": "NaN"}], "deployerFeeScale"),
    ("perpDexs", [None, {"name": "xyz", "deployerFeeScale": None}], "deployerFeeScale"),
    ("perpDexs", [None] + [{"name": "d"}] * 9_990, "length"),
    ("meta", {"universe": [{"name": "xyz:AAA", "szDecimals": -1}]}, "szDecimals"),
    ("meta", {"universe": [{"name": "xyz:AAA", "szDecimals": 2, "maxLeverage": 0}]}, "maxLev"),
    ("meta", {"universe": "all"}, "universe"),
    ("clearinghouseState", {"assetPositions": [{"position": {"coin": "x", "szi": "NaN"}}]}, "szi"),
    (
        "clearinghouseState",
        {"assetPositions": [{"position": {"coin": "x", "szi": "1", "entryPx": "abc"}}]},
        "entryPx",
    ),
    ("clearinghouseState", [], "object"),
    ("openOrders", [dict(OPEN_ORDER, oid="abc")], "oid"),
    ("openOrders", [dict(OPEN_ORDER, limitPx="-1")], "limitPx"),
    ("openOrders", [dict(OPEN_ORDER, side="Q")], "side"),
    ("openOrders", [dict(OPEN_ORDER, sz="x")], "sz"),
    ("openOrders", {"orders": []}, "array"),
    ("orderStatus", {"status": "order", "order": {"order": {}, "status": "open"}}, "order"),
    ("orderStatus", {"status": "weird"}, "status"),
    ("userFills", [dict(FILL, sz="abc")], "sz"),
    ("userFees", {"userCrossRate": "abc"}, "userCrossRate"),
    ("userFees", {"userCrossRate": 0.00045}, "userCrossRate"),
    ("perpsAtOpenInterestCap", [1], "$[0]"),
    ("l2Book", {"coin": "x", "time": 1, "levels": [[{"px": "NaN", "sz": "1", "n": 1}], []]}, "px"),
    (
        "metaAndAssetCtxs",
        [
            {"universe": [{"name": "xyz:AAA", "szDecimals": 2}]},
            [{"oraclePx": "NaN", "markPx": "1"}],
        ],
        "oraclePx",
    ),
    ("metaAndAssetCtxs", [{"universe": [{"name": "xyz:AAA", "szDecimals": 2}]}, []], "0 asset"),
    ("userRole", {"role": "admin"}, "role"),
    ("userRole", {"role": "agent", "data": {"user": "me"}}, "user"),
    ("userRole", {"role": "agent"}, "data"),
    ("extraAgents", [{"name": "x", "address": USER, "validUntil": -1}], "validUntil"),
    ("extraAgents", [{"name": "x", "address": "0x12"}], "address"),
    ("userAbstraction", {"mode": "disabled"}, "str"),
    ("spotMeta", {"tokens": [{"name": "USDC", "index": -1}]}, "index"),
    ("activeAssetData", {"coin": "xyz:AAA", "leverage": {"type": "both", "value": 3}}, "type"),
    ("activeAssetData", {"coin": "xyz:AAA", "leverage": {"type": "cross", "value": 0}}, "value"),
    ("clearinghouseState", {"marginSummary": {"accountValue": "NaN"}}, "accountValue"),
    ("meta", {"universe": [], "collateralToken": -1}, "collateralToken"),
]


@pytest.mark.parametrize(("info_type", "answer", "field"), BAD_ANSWERS)
def test_a_bad_info_answer_is_a_bad_answer_naming_the_field(
    info_type: str, answer: Any, field: str
) -> None:
    result = check_info_answer(info_type, json.dumps(answer).encode())
    assert isinstance(result, BadAnswer), result
    assert result.info_type == info_type
    assert result.reason.startswith(f"{info_type}: ")
    assert field in result.reason
    assert "\n" not in result.reason


@pytest.mark.parametrize("raw", [b"", None, b"{", b"\xff\xfe", b"[" * 100 + b"]" * 100])
def test_broken_info_answers_are_bad_answers(raw: bytes | None) -> None:
    assert isinstance(check_info_answer("openOrders", raw), BadAnswer)


def test_an_info_type_without_a_schema_is_refused() -> None:
    result = check_info_answer("allMids", b"{}")
    assert isinstance(result, BadAnswer) and "no checked schema" in result.reason
