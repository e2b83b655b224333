"""Typed inbound WebSocket frames and outbound request encoders.

`decode_frame` is the one call the socket loop makes per inbound message. It dispatches on
`channel` through a msgspec tagged union in a single pass, and it never raises: anything it
cannot turn into a typed frame comes back as a `DecodeError` value, so a malformed frame can
only ever be counted and dropped, never crash the loop. Every number and id is checked in
that same pass (`wire_values`): a frame carrying a price "abc", an oracle "NaN" or a negative
oid is a `DecodeError` naming the channel and the field, and never reaches state. A frame
nested deeper than `nesting.MAX_DEPTH` is refused before any decoder (which would recurse)
sees it.

Decimal strings stay `str`; field names are snake_case here and camelCase on the wire.
Unknown extra fields are ignored, because the exchange adds fields over time. Shapes:
https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/websocket/subscriptions and
.../websocket/post-requests.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, TypeAlias

import msgspec

from hip3.protocol.nesting import MAX_DEPTH, within_depth
from hip3.protocol.wire_values import KNOWN_NON_NEGATIVE as _KNOWN_SIZES
from hip3.protocol.wire_values import KNOWN_POSITIVE as _KNOWN_PRICES
from hip3.protocol.wire_values import (
    NON_NEGATIVE_BODY,
    POSITIVE_BODY,
    SIGNED_BODY,
    Cloid,
    Coin,
    Count,
    NonNegativeDecimal,
    Oid,
    PositiveDecimal,
    Side,
    SignedDecimal,
    TimeMs,
    describe_constraint,
    is_cloid,
    is_oid,
    is_positive_decimal,
    joined_pattern,
    remember_level,
    require_non_negative,
    require_positive,
    require_signed,
)

__all__ = [
    "ORDER_STATUS_KINDS",
    "SHORT_FRAME_BYTES",
    "ActionErr",
    "ActionOk",
    "ActionOkBody",
    "ActionResponse",
    "ActiveAssetCtx",
    "ActiveAssetCtxFrame",
    "Bbo",
    "BboFrame",
    "DecodeError",
    "ErrorFrame",
    "FillLiquidation",
    "Frame",
    "FundingEvent",
    "InfoPayload",
    "InfoResponse",
    "L2Book",
    "L2BookFrame",
    "Level",
    "LiquidationEvent",
    "NonUserCancel",
    "OrderStatus",
    "OrderUpdatesFrame",
    "PerpAssetCtx",
    "Pong",
    "PostData",
    "PostErrorResponse",
    "PostFrame",
    "SubscriptionAck",
    "SubscriptionResponse",
    "TradesFrame",
    "UserEvent",
    "UserEventsFrame",
    "UserFills",
    "UserFillsFrame",
    "WsBasicOrder",
    "WsFill",
    "WsOrder",
    "WsTrade",
    "action_error",
    "decode_frame",
    "encode_ping",
    "encode_post_action",
    "encode_post_info",
    "encode_subscribe",
    "encode_unsubscribe",
    "order_statuses",
]


class _Data(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, rename="camel", omit_defaults=True
):
    """Base of payload structs: camelCase on the wire, no GC tracking (no cycles).

    omit_defaults makes re-encoding reproduce the wire form, where optional fields are
    absent rather than null."""


class _Frame(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="channel"):
    """Base of top-level frames: the `channel` key selects the subclass."""


# ---------------------------------------------------------------------------------------
# market data


class Level(_Data):
    # px > 0 and sz >= 0 are checked by the book that holds the level, a pattern call per
    # level or per book on the numbers' joined text rather than one per number: the bbo and
    # l2Book decodes stay lean.
    px: str
    sz: str
    n: Count


def _check_level(level: Level, field: str) -> None:
    require_positive(level.px, field + ".px")
    require_non_negative(level.sz, field + ".sz")


# One level is "px|sz": a value carrying a "|" adds a segment and fails (`joined_pattern`).
_ONE_LEVEL = joined_pattern([POSITIVE_BODY, NON_NEGATIVE_BODY])
# Any number of levels, each written "px|sz|". With a repeated pattern a value carrying "|"
# could pass as extra segments, so the text must also hold exactly two "|" per level.
_LEVEL_RUN = re.compile(r"\A(?:" + POSITIVE_BODY + r"\|" + NON_NEGATIVE_BODY + r"\|)*+\Z")


def _check_levels(levels: Any, field: str) -> None:
    """Every level's px > 0 and sz >= 0, by one regex call; a failure is then found level by
    level, so the error names the field (`field[i].px`)."""
    text = "".join([f"{level.px}|{level.sz}|" for level in levels])
    if text.count("|") != 2 * len(levels) or _LEVEL_RUN.search(text) is None:
        for i, level in enumerate(levels):
            _check_level(level, f"{field}[{i}]")
        raise ValueError("a level is not a pair of plain decimal strings")  # not reached


class Bbo(_Data):
    coin: str  # only looked up among the configured markets (unchecked: this frame is hot)
    time: TimeMs
    bbo: tuple[Level | None, Level | None]  # [bid, ask]; a side may be empty

    def __post_init__(self) -> None:
        # The hottest frame: a set lookup per number; a side with a value not seen before
        # is checked by one regex call on its "px|sz" (and then known).
        bid, ask = self.bbo
        if bid is not None and (bid.px not in _KNOWN_PRICES or bid.sz not in _KNOWN_SIZES):
            _check_new_level(bid, "bbo[0]")
        if ask is not None and (ask.px not in _KNOWN_PRICES or ask.sz not in _KNOWN_SIZES):
            _check_new_level(ask, "bbo[1]")


def _check_new_level(level: Level, field: str) -> None:
    if _ONE_LEVEL.search(f"{level.px}|{level.sz}") is None:
        _check_level(level, field)  # names the number that failed
        raise ValueError(f"{field}: a number is not a plain decimal string")  # not reached
    remember_level(level.px, level.sz)


class L2Book(_Data):
    coin: str
    time: TimeMs
    levels: tuple[list[Level], list[Level]]  # [bids descending, asks ascending]

    def __post_init__(self) -> None:
        bids, asks = self.levels
        _check_levels(bids, "levels[0]")
        _check_levels(asks, "levels[1]")


class PerpAssetCtx(_Data):
    # Oracle and mark are what the strategy needs; a ctx without them is not usable.
    # Every number is checked in __post_init__ with one regex call on all of them joined
    # (this frame carries the oracle moves the strategy trades on; one call per number cost
    # five times the decode itself).
    oracle_px: str
    mark_px: str
    funding: str | None = None
    open_interest: str | None = None
    prev_day_px: str | None = None
    day_ntl_vlm: str | None = None
    day_base_vlm: str | None = None
    premium: str | None = None
    mid_px: str | None = None
    impact_pxs: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        # An absent optional value stands in as a valid "1" (it stays None in the struct).
        impact = self.impact_pxs or ("1", "1")
        text = "|".join(
            (
                self.oracle_px,
                self.mark_px,
                "1" if self.mid_px is None else self.mid_px,
                "1" if self.funding is None else self.funding,
                "1" if self.premium is None else self.premium,
                "1" if self.open_interest is None else self.open_interest,
                "1" if self.prev_day_px is None else self.prev_day_px,
                "1" if self.day_ntl_vlm is None else self.day_ntl_vlm,
                "1" if self.day_base_vlm is None else self.day_base_vlm,
                impact[0],
                impact[1],
            )
        )
        if _CTX_NUMBERS.search(text) is None:
            self._name_the_bad_number()

    def _name_the_bad_number(self) -> None:
        """Slow path: check field by field, so the error names the one that failed."""
        require_positive(self.oracle_px, "oraclePx")
        require_positive(self.mark_px, "markPx")
        if self.mid_px is not None:
            require_positive(self.mid_px, "midPx")
        for name, value in (("funding", self.funding), ("premium", self.premium)):
            if value is not None:
                require_signed(value, name)
        for name, value in (
            ("openInterest", self.open_interest),
            ("prevDayPx", self.prev_day_px),
            ("dayNtlVlm", self.day_ntl_vlm),
            ("dayBaseVlm", self.day_base_vlm),
        ):
            if value is not None:
                require_non_negative(value, name)
        if self.impact_pxs is not None:
            require_non_negative(self.impact_pxs[0], "impactPxs[0]")
            require_non_negative(self.impact_pxs[1], "impactPxs[1]")
        raise ValueError("a number is not a plain decimal string")  # not reached


_CTX_NUMBERS = joined_pattern(
    [POSITIVE_BODY] * 3 + [SIGNED_BODY] * 2 + [NON_NEGATIVE_BODY] * 6  # order as in the join
)


class ActiveAssetCtx(_Data):
    coin: str
    ctx: PerpAssetCtx


class WsTrade(_Data):
    coin: Coin
    side: Side
    px: PositiveDecimal
    sz: NonNegativeDecimal
    time: TimeMs
    tid: Oid
    hash: str | None = None
    users: list[str] | None = None


# ---------------------------------------------------------------------------------------
# user data


class WsBasicOrder(_Data):
    coin: Coin
    side: Side
    limit_px: PositiveDecimal
    sz: NonNegativeDecimal  # remaining size, not the filled size
    oid: Oid
    timestamp: TimeMs
    orig_sz: PositiveDecimal  # an order of nothing is not an order
    cloid: Cloid | None = None
    reduce_only: bool | None = None


class WsOrder(_Data):
    order: WsBasicOrder
    status: str
    status_timestamp: TimeMs


class FillLiquidation(_Data):
    # The docs type markPx as a number, the TS SDK as a string; Decimal takes both exactly.
    mark_px: Decimal
    method: str
    liquidated_user: str | None = None

    def __post_init__(self) -> None:
        # Decimal also takes "NaN" and "Infinity"; raising here fails the decode at this field.
        if not self.mark_px.is_finite() or self.mark_px <= 0:
            raise ValueError("markPx must be a finite number > 0")


class WsFill(_Data):
    # Identity (oid, tid) and the economic facts are required; the rest is informative
    # and tolerated when absent so that a missing extra never drops a fill.
    coin: Coin
    px: PositiveDecimal
    sz: PositiveDecimal
    side: Side
    time: TimeMs
    oid: Oid
    tid: Oid
    crossed: bool | None = None
    fee: SignedDecimal | None = None  # negative for a rebate
    fee_token: str | None = None
    builder_fee: NonNegativeDecimal | None = None
    start_position: SignedDecimal | None = None
    dir: str | None = None
    closed_pnl: SignedDecimal | None = None
    hash: str | None = None
    cloid: Cloid | None = None
    liquidation: FillLiquidation | None = None
    twap_id: Count | None = None


class UserFills(_Data):
    user: str  # compared with the trading account; any other text is someone else's fills
    fills: list[WsFill]
    is_snapshot: bool = False  # streaming updates usually omit it rather than send false


class FundingEvent(_Data):
    time: TimeMs
    coin: Coin
    usdc: SignedDecimal
    szi: SignedDecimal
    funding_rate: SignedDecimal
    n_samples: Count | None = None


class LiquidationEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    # This one payload is snake_case on the wire.
    lid: Count
    liquidator: str
    liquidated_user: str
    liquidated_ntl_pos: SignedDecimal
    liquidated_account_value: SignedDecimal


class NonUserCancel(_Data):
    coin: Coin
    oid: Oid


class UserEvent(_Data):
    """Exactly one field is set on a well-formed event; `kind` names it."""

    fills: list[WsFill] | None = None
    funding: FundingEvent | None = None
    liquidation: LiquidationEvent | None = None
    non_user_cancel: list[NonUserCancel] | None = None

    @property
    def kind(self) -> str:
        if self.fills is not None:
            return "fills"
        if self.funding is not None:
            return "funding"
        if self.liquidation is not None:
            return "liquidation"
        if self.non_user_cancel is not None:
            return "nonUserCancel"
        return "unknown"


# ---------------------------------------------------------------------------------------
# post responses


class InfoPayload(_Data):
    type: str = ""
    data: msgspec.Raw = msgspec.Raw()  # decoded lazily by the caller with its own type


class InfoResponse(msgspec.Struct, frozen=True, gc=False, tag_field="type", tag="info"):
    payload: InfoPayload


class ActionOkBody(_Data):
    type: str
    data: msgspec.Raw = msgspec.Raw()  # e.g. {"statuses": [...]}; see order_statuses()


class ActionOk(msgspec.Struct, frozen=True, gc=False, tag_field="status", tag="ok"):
    response: ActionOkBody


class ActionErr(msgspec.Struct, frozen=True, gc=False, tag_field="status", tag="err"):
    response: str


class ActionResponse(msgspec.Struct, frozen=True, gc=False, tag_field="type", tag="action"):
    payload: ActionOk | ActionErr


class PostErrorResponse(msgspec.Struct, frozen=True, gc=False, tag_field="type", tag="error"):
    payload: str


class PostData(_Data):
    id: Count
    response: InfoResponse | ActionResponse | PostErrorResponse


# ---------------------------------------------------------------------------------------
# frames


class SubscriptionAck(_Data):
    method: str
    subscription: dict[str, Any]


class SubscriptionResponse(_Frame, tag="subscriptionResponse"):
    data: SubscriptionAck


class Pong(_Frame, tag="pong"):
    pass


class ErrorFrame(_Frame, tag="error"):
    data: str


class BboFrame(_Frame, tag="bbo"):
    data: Bbo


class L2BookFrame(_Frame, tag="l2Book"):
    data: L2Book


class ActiveAssetCtxFrame(_Frame, tag="activeAssetCtx"):
    data: ActiveAssetCtx


class TradesFrame(_Frame, tag="trades"):
    data: list[WsTrade]


class OrderUpdatesFrame(_Frame, tag="orderUpdates"):
    data: list[WsOrder]


class UserFillsFrame(_Frame, tag="userFills"):
    data: UserFills


class UserEventsFrame(_Frame, tag="user"):  # userEvents arrive on channel "user"
    data: UserEvent


class PostFrame(_Frame, tag="post"):
    data: PostData


Frame: TypeAlias = (
    SubscriptionResponse
    | Pong
    | ErrorFrame
    | BboFrame
    | L2BookFrame
    | ActiveAssetCtxFrame
    | TradesFrame
    | OrderUpdatesFrame
    | UserFillsFrame
    | UserEventsFrame
    | PostFrame
)

_FRAME_TYPES: tuple[type, ...] = Frame.__args__  # type: ignore[attr-defined]
KNOWN_CHANNELS = frozenset(t.__struct_config__.tag for t in _FRAME_TYPES)


class DecodeError(msgspec.Struct, frozen=True, gc=False):
    """Why a frame could not be decoded: the typed "bad frame" result.

    kind: "not_json" (e.g. the server's plain-text greeting), "not_object",
    "missing_channel", "unknown_channel", "invalid" (known channel, a field of the wrong
    shape or an out-of-range number; detail names the channel and the field), "too_deep"
    (nested beyond `MAX_DEPTH`) or "bad_input" (neither bytes nor str). detail is one line;
    raw_prefix holds the first characters for logs.
    """

    kind: str
    detail: str
    raw_prefix: str


_RAW_PREFIX_CHARS = 120
# At most 512 levels of nesting fit in this many bytes: a few hundred C frames of any JSON
# decoder, far from exhausting the stack even where Python's recursion limit was raised.
SHORT_FRAME_BYTES = 1024
_DETAIL_CHARS = 300
_frame_decoder = msgspec.json.Decoder(Frame)
_generic_decoder = msgspec.json.Decoder()


def _prefix(raw: bytes) -> str:
    return raw[:_RAW_PREFIX_CHARS].decode("utf-8", "replace")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:_DETAIL_CHARS]


def _classify_failure(raw: bytes, exc: Exception) -> DecodeError:
    """Slow path, only for frames that failed the typed decode: say what was wrong.

    `raw` has already passed the depth check, so the generic decode here cannot recurse
    without bound."""
    prefix = _prefix(raw)
    try:
        generic = _generic_decoder.decode(raw)
    except msgspec.DecodeError as json_exc:
        return DecodeError("not_json", _one_line(str(json_exc)), prefix)
    if not isinstance(generic, dict):
        return DecodeError(
            "not_object", f"expected a JSON object, got {type(generic).__name__}", prefix
        )
    if "channel" not in generic:
        return DecodeError("missing_channel", "frame has no 'channel' key", prefix)
    channel = generic["channel"]
    if not isinstance(channel, str) or channel not in KNOWN_CHANNELS:
        shown = channel[:40] if isinstance(channel, str) else type(channel).__name__
        return DecodeError(
            "unknown_channel", _one_line(f"channel {shown!r} is not one this bot reads"), prefix
        )
    return DecodeError(
        "invalid", _one_line(f"channel {channel!r}: {describe_constraint(str(exc))}"), prefix
    )


def _as_bytes(raw: Any) -> bytes:
    if isinstance(raw, str):
        return raw.encode("utf-8")
    if isinstance(raw, bytearray | memoryview):
        return bytes(raw)
    raise TypeError(f"expected bytes or str, got {type(raw).__name__}")


def decode_frame(raw: bytes | str) -> Frame | DecodeError:
    """Decode one inbound frame; never raises.

    A frame of at most `SHORT_FRAME_BYTES` skips the depth check (market data is far
    shorter): it cannot nest deep enough to threaten the C stack, and no type here accepts
    more than a dozen levels, so a deep short frame still fails the typed decode."""
    try:
        if type(raw) is not bytes:
            raw = _as_bytes(raw)
        if len(raw) > SHORT_FRAME_BYTES and not within_depth(raw):
            return DecodeError(
                "too_deep", f"nested deeper than {MAX_DEPTH} levels", _prefix(raw)[:40]
            )
        return _frame_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        try:
            return _classify_failure(raw, exc)
        except Exception as inner:  # last line of defence for the socket loop
            return DecodeError(
                "invalid",
                _one_line(f"{exc}; while classifying: {type(inner).__name__}"),
                "",
            )
    except Exception as exc:
        return DecodeError("bad_input", _one_line(f"{type(exc).__name__}: {exc}"), "")


# ---------------------------------------------------------------------------------------
# order statuses

ORDER_STATUS_KINDS = frozenset(
    {"resting", "filled", "error", "success", "waitingForFill", "waitingForTrigger", "unknown"}
)
_BARE_STATUSES = frozenset({"success", "waitingForFill", "waitingForTrigger"})


class OrderStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One element of an order/cancel/batchModify `statuses` array, in request order."""

    kind: str
    oid: int | None = None
    cloid: str | None = None
    total_sz: str | None = None
    avg_px: str | None = None
    error: str | None = None  # the exchange's text for "error"; a description for "unknown"


def _optional_cloid(body: dict) -> tuple[bool, str | None]:
    value = body.get("cloid")
    return (value is None or is_cloid(value)), value


def _status_from_element(element: Any) -> OrderStatus:
    if isinstance(element, str):
        if element in _BARE_STATUSES:
            return OrderStatus(kind=element)
        return OrderStatus(kind="unknown", error=f"unrecognised status {element[:200]!r}")
    if isinstance(element, dict) and len(element) == 1:
        ((key, body),) = element.items()
        if key == "error" and isinstance(body, str):
            return OrderStatus(kind="error", error=body)
        if key == "resting" and isinstance(body, dict) and is_oid(body.get("oid")):
            ok, cloid = _optional_cloid(body)
            if ok:
                return OrderStatus(kind="resting", oid=body["oid"], cloid=cloid)
        if key == "filled" and isinstance(body, dict) and is_oid(body.get("oid")):
            ok, cloid = _optional_cloid(body)
            total_sz, avg_px = body.get("totalSz"), body.get("avgPx")
            # a fill of nothing is no fill: "filled" needs a total above zero
            if ok and is_positive_decimal(total_sz) and is_positive_decimal(avg_px):
                return OrderStatus(
                    kind="filled", oid=body["oid"], cloid=cloid, total_sz=total_sz, avg_px=avg_px
                )
    return OrderStatus(kind="unknown", error=f"unrecognised status {str(element)[:200]!r}")


def order_statuses(frame: PostFrame) -> list[OrderStatus]:
    """Per-order statuses of an ok action response, index-aligned with the request.

    Unrecognised elements become kind "unknown" in place (never skipped). Returns [] when
    the response carries no statuses (info, error, top-level err, or a "default" response);
    callers compare the length with the number of orders they sent.
    """
    response = frame.data.response
    if not isinstance(response, ActionResponse) or not isinstance(response.payload, ActionOk):
        return []
    raw = response.payload.response.data
    if not raw:
        return []
    try:
        data = _generic_decoder.decode(raw)
    except msgspec.DecodeError:
        return []
    statuses = data.get("statuses") if isinstance(data, dict) else None
    if not isinstance(statuses, list):
        return []
    return [_status_from_element(element) for element in statuses]


def action_error(frame: PostFrame) -> str | None:
    """The exchange's text when the whole action failed, else None.

    Covers a top-level `{"status":"err"}` and a post-level `type:"error"` response.
    """
    response = frame.data.response
    if isinstance(response, PostErrorResponse):
        return response.payload
    if isinstance(response, ActionResponse) and isinstance(response.payload, ActionErr):
        return response.payload.response
    return None


# ---------------------------------------------------------------------------------------
# outbound


def _json(message: dict) -> bytes:
    # The UTF-8 bytes of a text frame: what the socket writes, so nothing is converted twice.
    return msgspec.json.encode(message)


def _check_subscription(subscription: dict) -> dict:
    if not isinstance(subscription, dict) or not isinstance(subscription.get("type"), str):
        raise ValueError(f"subscription must be a dict with a string 'type', got {subscription!r}")
    return subscription


def _check_post_id(post_id: int) -> int:
    if isinstance(post_id, bool) or not isinstance(post_id, int) or post_id < 0:
        raise ValueError(f"post_id must be an int >= 0, got {post_id!r}")
    return post_id


def encode_subscribe(subscription: dict) -> bytes:
    return _json({"method": "subscribe", "subscription": _check_subscription(subscription)})


def encode_unsubscribe(subscription: dict) -> bytes:
    return _json({"method": "unsubscribe", "subscription": _check_subscription(subscription)})


_PING = _json({"method": "ping"})


def encode_ping() -> bytes:
    return _PING


def encode_post_info(post_id: int, payload: dict) -> bytes:
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise ValueError(f"info payload must be a dict with a string 'type', got {payload!r}")
    return _json(
        {
            "method": "post",
            "id": _check_post_id(post_id),
            "request": {"type": "info", "payload": payload},
        }
    )


def encode_post_action(
    post_id: int,
    *,
    action: dict,
    nonce: int,
    signature: dict,
    vault_address: str | None = None,
    expires_after: int | None = None,
) -> bytes:
    """A signed action as a WS post. The action dict is sent exactly as it was hashed;
    vaultAddress and expiresAfter appear only when set."""
    if not isinstance(action, dict) or not isinstance(action.get("type"), str):
        raise ValueError("action must be a dict with a string 'type'")
    if isinstance(nonce, bool) or not isinstance(nonce, int) or nonce < 0:
        raise ValueError(f"nonce must be an int >= 0, got {nonce!r}")
    if not isinstance(signature, dict) or set(signature) != {"r", "s", "v"}:
        raise ValueError("signature must be a dict with exactly r, s, v")
    payload: dict[str, Any] = {
        "action": action,
        "nonce": nonce,
        "signature": {"r": signature["r"], "s": signature["s"], "v": signature["v"]},
    }
    if vault_address is not None:
        payload["vaultAddress"] = vault_address
    if expires_after is not None:
        payload["expiresAfter"] = expires_after
    return _json(
        {
            "method": "post",
            "id": _check_post_id(post_id),
            "request": {"type": "action", "payload": payload},
        }
    )
