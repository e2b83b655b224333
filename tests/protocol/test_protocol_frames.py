"""Inbound frame decoding and outbound encoders."""

from __future__ import annotations

import json
import string
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.protocol.frames import (
    ActionErr,
    ActionOk,
    ActionResponse,
    ActiveAssetCtxFrame,
    BboFrame,
    DecodeError,
    ErrorFrame,
    InfoResponse,
    L2BookFrame,
    OrderUpdatesFrame,
    Pong,
    PostErrorResponse,
    PostFrame,
    SubscriptionResponse,
    TradesFrame,
    UserEventsFrame,
    UserFillsFrame,
    action_error,
    decode_frame,
    encode_ping,
    encode_post_action,
    encode_post_info,
    encode_subscribe,
    encode_unsubscribe,
    order_statuses,
)
from hip3.protocol.wire_values import MAX_TIME_MS

# --- strategies: wire-shaped dicts -------------------------------------------------------

# coin names: "BTC", "xyz:NVDA", "@107", "PURR/USDC"
names = st.builds(
    lambda dex, coin: f"{dex}:{coin}" if dex else coin,
    st.text(alphabet=string.ascii_lowercase, max_size=4),
    st.text(alphabet=string.ascii_letters + string.digits + "@/", min_size=1, max_size=8),
)


def _decimal_text(digits: int, places: int, neg: bool) -> str:
    return ("-" if neg else "") + format(Decimal(digits).scaleb(-places), "f")


# signed, non-negative and positive wire decimals: the three kinds the decoder accepts
decimals = st.builds(
    _decimal_text,
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=4),
    st.booleans(),
)
sizes = st.builds(
    _decimal_text,
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=4),
    st.just(False),
)
prices = st.builds(
    _decimal_text,
    st.integers(min_value=1, max_value=10**6),
    st.integers(min_value=0, max_value=4),
    st.just(False),
)
ms = st.integers(min_value=0, max_value=MAX_TIME_MS)
ints = st.integers(min_value=0, max_value=2**53)
sides = st.sampled_from(["A", "B"])
hexes = st.integers(min_value=0, max_value=2**128 - 1).map(lambda n: f"0x{n:032x}")
levels = st.fixed_dictionaries({"px": prices, "sz": sizes, "n": ints})


def frame(channel: str, data) -> st.SearchStrategy:
    return st.fixed_dictionaries({"channel": st.just(channel), "data": data})


fills = st.fixed_dictionaries(
    {
        "coin": names,
        "px": prices,
        "sz": prices,
        "side": sides,
        "time": ms,
        "oid": ints,
        "tid": ints,
    },
    optional={
        "crossed": st.booleans(),
        "fee": decimals,
        "feeToken": names,
        "builderFee": sizes,
        "startPosition": decimals,
        "dir": st.sampled_from(["Open Long", "Close Short", "Buy", "Sell"]),
        "closedPnl": decimals,
        "hash": hexes,
        "cloid": hexes,
        "twapId": ints,
        "liquidation": st.fixed_dictionaries(
            {"markPx": prices, "method": st.sampled_from(["market", "backstop"])},
            optional={"liquidatedUser": hexes},
        ),
    },
)
order_status_elements = st.one_of(
    st.fixed_dictionaries(
        {"resting": st.fixed_dictionaries({"oid": ints}, optional={"cloid": hexes})}
    ),
    st.fixed_dictionaries(
        {
            "filled": st.fixed_dictionaries(
                {"totalSz": prices, "avgPx": prices, "oid": ints}, optional={"cloid": hexes}
            )
        }
    ),
    st.fixed_dictionaries({"error": st.text(max_size=40)}),
    st.sampled_from(["success", "waitingForFill", "waitingForTrigger"]),
)
post_responses = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("info"),
            "payload": st.fixed_dictionaries(
                {
                    "type": st.just("l2Book"),
                    "data": st.dictionaries(names, st.integers() | st.text(max_size=5), max_size=3),
                }
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("action"),
            "payload": st.one_of(
                st.fixed_dictionaries(
                    {
                        "status": st.just("ok"),
                        "response": st.fixed_dictionaries(
                            {
                                "type": st.sampled_from(["order", "cancel"]),
                                "data": st.fixed_dictionaries(
                                    {"statuses": st.lists(order_status_elements, max_size=4)}
                                ),
                            }
                        ),
                    }
                ),
                st.just({"status": "ok", "response": {"type": "default"}}),
                st.fixed_dictionaries({"status": st.just("err"), "response": st.text(max_size=40)}),
            ),
        }
    ),
    st.fixed_dictionaries({"type": st.just("error"), "payload": st.text(max_size=40)}),
)

frames = st.one_of(
    frame(
        "subscriptionResponse",
        st.fixed_dictionaries(
            {
                "method": st.sampled_from(["subscribe", "unsubscribe"]),
                "subscription": st.fixed_dictionaries(
                    {"type": st.sampled_from(["bbo", "l2Book", "trades"]), "coin": names}
                ),
            }
        ),
    ),
    st.just({"channel": "pong"}),
    frame("error", st.text(max_size=60)),
    frame(
        "bbo",
        st.fixed_dictionaries(
            {
                "coin": names,
                "time": ms,
                "bbo": st.tuples(st.none() | levels, st.none() | levels).map(list),
            }
        ),
    ),
    frame(
        "l2Book",
        st.fixed_dictionaries(
            {
                "coin": names,
                "time": ms,
                "levels": st.tuples(st.lists(levels, max_size=4), st.lists(levels, max_size=4)).map(
                    list
                ),
            }
        ),
    ),
    frame(
        "activeAssetCtx",
        st.fixed_dictionaries(
            {
                "coin": names,
                "ctx": st.fixed_dictionaries(
                    {"oraclePx": prices, "markPx": prices},
                    optional={
                        "funding": decimals,
                        "openInterest": sizes,
                        "prevDayPx": sizes,
                        "dayNtlVlm": sizes,
                        "dayBaseVlm": sizes,
                        "premium": decimals,
                        "midPx": prices,
                        "impactPxs": st.lists(sizes, min_size=2, max_size=2),
                    },
                ),
            }
        ),
    ),
    frame(
        "trades",
        st.lists(
            st.fixed_dictionaries(
                {
                    "coin": names,
                    "side": sides,
                    "px": prices,
                    "sz": sizes,
                    "time": ms,
                    "tid": ints,
                },
                optional={"hash": hexes, "users": st.lists(hexes, min_size=2, max_size=2)},
            ),
            max_size=3,
        ),
    ),
    frame(
        "orderUpdates",
        st.lists(
            st.fixed_dictionaries(
                {
                    "order": st.fixed_dictionaries(
                        {
                            "coin": names,
                            "side": sides,
                            "limitPx": prices,
                            "sz": sizes,
                            "oid": ints,
                            "timestamp": ms,
                            "origSz": prices,
                        },
                        optional={"cloid": hexes, "reduceOnly": st.booleans()},
                    ),
                    "status": st.sampled_from(
                        ["open", "filled", "canceled", "rejected", "scheduledCancel"]
                    ),
                    "statusTimestamp": ms,
                }
            ),
            max_size=3,
        ),
    ),
    frame(
        "userFills",
        st.fixed_dictionaries(
            {"user": hexes, "fills": st.lists(fills, max_size=3)},
            optional={"isSnapshot": st.booleans()},
        ),
    ),
    frame(
        "user",
        st.one_of(
            st.fixed_dictionaries({"fills": st.lists(fills, max_size=2)}),
            st.fixed_dictionaries(
                {
                    "funding": st.fixed_dictionaries(
                        {
                            "time": ms,
                            "coin": names,
                            "usdc": decimals,
                            "szi": decimals,
                            "fundingRate": decimals,
                        },
                        optional={"nSamples": ints},
                    )
                }
            ),
            st.fixed_dictionaries(
                {
                    "liquidation": st.fixed_dictionaries(
                        {
                            "lid": ints,
                            "liquidator": hexes,
                            "liquidated_user": hexes,
                            "liquidated_ntl_pos": decimals,
                            "liquidated_account_value": decimals,
                        }
                    )
                }
            ),
            st.fixed_dictionaries(
                {
                    "nonUserCancel": st.lists(
                        st.fixed_dictionaries({"coin": names, "oid": ints}), max_size=3
                    )
                }
            ),
        ),
    ),
    frame("post", st.fixed_dictionaries({"id": ints, "response": post_responses})),
)


def normalise(value):
    """The wire form after a decode/encode cycle: `isSnapshot: false` is the default."""
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items() if not (k == "isSnapshot" and v is False)}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


@given(original=frames, as_bytes=st.booleans())
def test_every_frame_type_round_trips(original: dict, as_bytes: bool) -> None:
    text = json.dumps(original)
    decoded = decode_frame(text.encode() if as_bytes else text)
    assert not isinstance(decoded, DecodeError), decoded
    assert decoded.__struct_config__.tag == original["channel"]
    assert msgspec.json.decode(msgspec.json.encode(decoded)) == normalise(original)


# --- typed access --------------------------------------------------------------------------


def test_bbo_fields_are_typed_and_exact() -> None:
    raw = b'{"channel":"bbo","data":{"coin":"xyz:NVDA","time":5,"bbo":[{"px":"0.1000000000000000055","sz":"2","n":1},null]}}'
    f = decode_frame(raw)
    assert isinstance(f, BboFrame)
    bid, ask = f.data.bbo
    assert bid is not None and bid.px == "0.1000000000000000055" and ask is None


def test_user_fills_snapshot_flag() -> None:
    base = {"user": "0x" + "1" * 40, "fills": []}
    absent = decode_frame(json.dumps({"channel": "userFills", "data": base}))
    snap = decode_frame(json.dumps({"channel": "userFills", "data": {**base, "isSnapshot": True}}))
    assert isinstance(absent, UserFillsFrame) and absent.data.is_snapshot is False
    assert isinstance(snap, UserFillsFrame) and snap.data.is_snapshot is True


def test_user_event_kinds_and_number_mark_px() -> None:
    fill = {"coin": "xyz:A", "px": "1", "sz": "2", "side": "B", "time": 1, "oid": 2, "tid": 3}
    liquidated = {**fill, "liquidation": {"markPx": 12.25, "method": "market"}}
    f = decode_frame(json.dumps({"channel": "user", "data": {"fills": [liquidated]}}))
    assert isinstance(f, UserEventsFrame) and f.data.kind == "fills"
    assert str(f.data.fills[0].liquidation.mark_px) == "12.25"
    f = decode_frame(
        json.dumps({"channel": "user", "data": {"nonUserCancel": [{"coin": "A", "oid": 1}]}})
    )
    assert isinstance(f, UserEventsFrame) and f.data.kind == "nonUserCancel"
    f = decode_frame(json.dumps({"channel": "user", "data": {"twapHistory": []}}))
    assert isinstance(f, UserEventsFrame) and f.data.kind == "unknown"


def test_other_frames_decode_to_their_types() -> None:
    assert isinstance(decode_frame('{"channel":"pong"}'), Pong)
    err = decode_frame('{"channel":"error","data":"too many pending post requests id=12"}')
    assert isinstance(err, ErrorFrame) and err.data.endswith("id=12")
    ack = decode_frame(
        '{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"l2Book","coin":"ETH","nSigFigs":null}}}'
    )
    assert isinstance(ack, SubscriptionResponse) and ack.data.subscription["nSigFigs"] is None
    ctx = decode_frame(
        '{"channel":"activeAssetCtx","data":{"coin":"xyz:A","ctx":{"oraclePx":"1.5","markPx":"1.4","premium":null,"extra":1}}}'
    )
    assert isinstance(ctx, ActiveAssetCtxFrame) and ctx.data.ctx.oracle_px == "1.5"
    assert isinstance(decode_frame('{"channel":"trades","data":[]}'), TradesFrame)
    assert isinstance(decode_frame('{"channel":"orderUpdates","data":[]}'), OrderUpdatesFrame)
    book = decode_frame('{"channel":"l2Book","data":{"coin":"A","time":1,"levels":[[],[]]}}')
    assert isinstance(book, L2BookFrame)


# --- post responses ------------------------------------------------------------------------


def post(response: dict) -> PostFrame:
    f = decode_frame(json.dumps({"channel": "post", "data": {"id": 9, "response": response}}))
    assert isinstance(f, PostFrame), f
    return f


def test_order_statuses_keep_alignment() -> None:
    statuses = [
        {"resting": {"oid": 1, "cloid": "0x" + "0" * 31 + "1"}},
        {"filled": {"totalSz": "0.02", "avgPx": "1891.4", "oid": 2}},
        {"error": "Order must have minimum value of $10. asset=110000"},
        "success",
        "waitingForFill",
        "waitingForTrigger",
        "somethingNew",
        {"resting": {"oid": "not-an-int"}},
        7,
        {"filled": {"oid": 3}},
    ]
    f = post(
        {
            "type": "action",
            "payload": {
                "status": "ok",
                "response": {"type": "order", "data": {"statuses": statuses}},
            },
        }
    )
    out = order_statuses(f)
    assert [s.kind for s in out] == [
        "resting",
        "filled",
        "error",
        "success",
        "waitingForFill",
        "waitingForTrigger",
        "unknown",
        "unknown",
        "unknown",
        "unknown",
    ]
    assert out[0].oid == 1 and out[0].cloid == "0x" + "0" * 31 + "1"
    assert (out[1].total_sz, out[1].avg_px, out[1].oid) == ("0.02", "1891.4", 2)
    assert out[2].error.startswith("Order must have minimum value of $10.")
    assert action_error(f) is None


def test_post_errors_and_non_order_responses() -> None:
    err = post(
        {
            "type": "action",
            "payload": {"status": "err", "response": "User or API Wallet 0x1 does not exist."},
        }
    )
    assert isinstance(err.data.response, ActionResponse) and isinstance(
        err.data.response.payload, ActionErr
    )
    assert action_error(err) == "User or API Wallet 0x1 does not exist."
    assert order_statuses(err) == []
    failed = post({"type": "error", "payload": "400 Bad Request"})
    assert (
        isinstance(failed.data.response, PostErrorResponse)
        and action_error(failed) == "400 Bad Request"
    )
    default = post({"type": "action", "payload": {"status": "ok", "response": {"type": "default"}}})
    assert isinstance(default.data.response.payload, ActionOk) and order_statuses(default) == []
    info = post(
        {"type": "info", "payload": {"type": "l2Book", "data": {"coin": "A", "levels": [[], []]}}}
    )
    assert isinstance(info.data.response, InfoResponse)
    assert msgspec.json.decode(info.data.response.payload.data) == {"coin": "A", "levels": [[], []]}
    assert order_statuses(info) == [] and action_error(info) is None


# --- malformed input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("Websocket connection established.", "not_json"),
        (b"\xff\xfe", "not_json"),
        ('{"channel":"bbo"', "not_json"),
        ("[1, 2]", "not_object"),
        ('"bbo"', "not_object"),
        ('{"data": {}}', "missing_channel"),
        ('{"channel": "allMids", "data": {}}', "unknown_channel"),
        ('{"channel": 5, "data": {}}', "unknown_channel"),
        (
            '{"channel": "bbo", "data": {"coin": "A", "time": 1, "bbo": [{"px": 1.5, "sz": "1", "n": 1}, null]}}',
            "invalid",
        ),
        ('{"channel": "bbo", "data": {"coin": "A", "time": 1, "bbo": [null]}}', "invalid"),
        ('{"channel": "userFills", "data": {"user": "0x1", "fills": [{"coin": "A"}]}}', "invalid"),
        ('{"channel": "post", "data": {"id": 1, "response": {"type": "mystery"}}}', "invalid"),
        ('{"channel": "activeAssetCtx", "data": {"coin": "A", "ctx": {"markPx": "1"}}}', "invalid"),
        (
            '{"channel": "trades", "data": [{"coin": "A", "side": "X", "px": "1", "sz": "1", "time": 1, "tid": 1}]}',
            "invalid",
        ),
        (12345, "bad_input"),
        (None, "bad_input"),
    ],
)
def test_malformed_frames_become_decode_errors(raw, kind: str) -> None:
    result = decode_frame(raw)
    assert isinstance(result, DecodeError)
    assert result.kind == kind, result
    assert result.detail


def test_invalid_detail_names_the_path() -> None:
    result = decode_frame('{"channel":"bbo","data":{"coin":"A","time":"soon","bbo":[null,null]}}')
    assert isinstance(result, DecodeError) and "$.data.time" in result.detail


@given(st.binary(max_size=200) | st.text(max_size=200))
def test_decode_frame_never_raises(raw) -> None:
    result = decode_frame(raw)
    assert isinstance(result, DecodeError) or hasattr(result, "__struct_config__")


@given(frames, st.integers(min_value=1, max_value=400))
def test_truncated_frames_never_raise(original: dict, cut: int) -> None:
    text = json.dumps(original)
    if cut < len(text):
        assert isinstance(decode_frame(text[:cut]), DecodeError)


# --- outbound ------------------------------------------------------------------------------


def test_subscription_encoders() -> None:
    sub = {"type": "l2Book", "coin": "xyz:NVDA"}
    assert json.loads(encode_subscribe(sub)) == {"method": "subscribe", "subscription": sub}
    assert json.loads(encode_unsubscribe(sub)) == {"method": "unsubscribe", "subscription": sub}
    assert json.loads(encode_ping()) == {"method": "ping"}
    assert isinstance(encode_ping(), bytes)  # the text frame's UTF-8, written as is
    with pytest.raises(ValueError, match="type"):
        encode_subscribe({"coin": "A"})


def test_post_encoders() -> None:
    info = json.loads(encode_post_info(3, {"type": "openOrders", "user": "0x1", "dex": "xyz"}))
    assert info == {
        "method": "post",
        "id": 3,
        "request": {"type": "info", "payload": {"type": "openOrders", "user": "0x1", "dex": "xyz"}},
    }
    action = {"type": "order", "orders": [], "grouping": "na"}
    sig = {"v": 27, "s": "0x" + "2" * 64, "r": "0x" + "1" * 64}
    bare = json.loads(encode_post_action(4, action=action, nonce=17, signature=sig))
    payload = bare["request"]["payload"]
    assert list(payload) == ["action", "nonce", "signature"]
    assert list(payload["signature"]) == ["r", "s", "v"] and payload["signature"]["v"] == 27
    assert list(payload["action"]) == ["type", "orders", "grouping"]
    full = json.loads(
        encode_post_action(
            5,
            action=action,
            nonce=18,
            signature=sig,
            vault_address="0x" + "a" * 40,
            expires_after=99,
        )
    )
    assert list(full["request"]["payload"]) == [
        "action",
        "nonce",
        "signature",
        "vaultAddress",
        "expiresAfter",
    ]
    with pytest.raises(ValueError, match="post_id"):
        encode_post_info(-1, {"type": "meta"})
    with pytest.raises(ValueError, match="signature"):
        encode_post_action(1, action=action, nonce=1, signature={"r": "0x1"})
