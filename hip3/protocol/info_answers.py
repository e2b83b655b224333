"""Checked decoding of the info answers the bot acts on.

An info answer arrives as the raw `data` of a post response. Reconciliation adopts what it
says (positions, open orders, fills, fee rates, market specs), so a garbage answer must fail
that step cleanly instead of reaching state or raising deep inside the dispatcher. Each info
type the bot asks for has a schema here with the same number and id checks as the streamed
frames (`wire_values`); `check_info_answer` returns either the answer as plain JSON (the
shape the reconciliation code reads) or a `BadAnswer` naming the info type and the field.
Fields the bot does not read are not checked, and extra fields are ignored, because the
exchange adds fields over time.

Shapes: https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/info-endpoint and
.../info-endpoint/perpetuals.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from hip3.protocol.frames import L2Book, PerpAssetCtx, WsFill
from hip3.protocol.nesting import within_depth
from hip3.protocol.wire_values import (
    Address,
    Cloid,
    Coin,
    NonNegativeDecimal,
    Oid,
    PositiveDecimal,
    Side,
    SignedDecimal,
    TimeMs,
    describe_constraint,
)

__all__ = ["CHECKED_INFO_TYPES", "BadAnswer", "check_info_answer"]

# Perp szDecimals run from 0 to 6 (prices carry at most 6 - szDecimals decimals); a dex lists
# at most 10,000 assets (HIP-3 asset ids step by 10,000 per dex from 100,000), and below the
# outcome ids at 100,000,000 that leaves room for 9,990 dexes.
_SzDecimals = Annotated[int, msgspec.Meta(ge=0, le=6)]
_Leverage = Annotated[int, msgspec.Meta(ge=1, le=1000)]
_DexName = Annotated[str, msgspec.Meta(pattern=r"\A[^:\s]{1,16}\Z")]
_MAX_ASSETS_PER_DEX = 10_000
_MAX_DEXES = 9_990
_DETAIL_CHARS = 300


class _Answer(msgspec.Struct, frozen=True, kw_only=True, gc=False, rename="camel"):
    """Base of answer schemas: camelCase on the wire, extra fields ignored."""


class _PerpDex(_Answer):
    name: _DexName
    # absent means 1; null is refused, since discovery reads it as a number
    deployer_fee_scale: NonNegativeDecimal = "1"


class _AssetMeta(_Answer):
    name: Coin
    sz_decimals: _SzDecimals
    max_leverage: _Leverage = 1
    margin_mode: str | None = None
    growth_mode: str | None = None
    is_delisted: bool | None = None


class _Meta(_Answer):
    universe: Annotated[list[_AssetMeta], msgspec.Meta(max_length=_MAX_ASSETS_PER_DEX)]
    # the dex's collateral: an index into spotMeta's tokens (absent: 0, USDC)
    collateral_token: Annotated[int, msgspec.Meta(ge=0)] = 0


class _SpotToken(_Answer):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    index: Annotated[int, msgspec.Meta(ge=0)]


class _SpotMeta(_Answer):
    tokens: list[_SpotToken]


class _Position(_Answer):
    coin: Coin
    szi: SignedDecimal
    entry_px: NonNegativeDecimal | None = None


class _AssetPosition(_Answer):
    position: _Position


class _MarginSummary(_Answer):
    account_value: SignedDecimal


class _ClearinghouseState(_Answer):
    asset_positions: list[_AssetPosition] = []
    margin_summary: _MarginSummary | None = None
    withdrawable: SignedDecimal | None = None


class _OpenOrder(_Answer):
    coin: Coin
    side: Side
    limit_px: PositiveDecimal
    sz: NonNegativeDecimal
    oid: Oid
    timestamp: TimeMs
    orig_sz: PositiveDecimal | None = None
    cloid: Cloid | None = None
    reduce_only: bool | None = None


class _OrderStatusBody(_Answer):
    order: _OpenOrder
    status: str
    status_timestamp: TimeMs


class _OrderFound(msgspec.Struct, frozen=True, gc=False, tag_field="status", tag="order"):
    order: _OrderStatusBody


class _OrderUnknown(msgspec.Struct, frozen=True, gc=False, tag_field="status", tag="unknownOid"):
    pass


class _UserFees(_Answer):
    user_cross_rate: NonNegativeDecimal | None = None
    user_add_rate: SignedDecimal | None = None  # the maker rate; negative is a rebate
    active_referral_discount: NonNegativeDecimal | None = None


class _RoleUser(msgspec.Struct, frozen=True, gc=False, tag_field="role", tag="user"):
    pass


class _AgentOf(_Answer):
    user: Address


class _RoleAgent(msgspec.Struct, frozen=True, gc=False, tag_field="role", tag="agent"):
    data: _AgentOf


class _MasterOf(_Answer):
    master: Address


class _RoleSubAccount(msgspec.Struct, frozen=True, gc=False, tag_field="role", tag="subAccount"):
    data: _MasterOf


class _RoleVault(msgspec.Struct, frozen=True, gc=False, tag_field="role", tag="vault"):
    pass


class _RoleMissing(msgspec.Struct, frozen=True, gc=False, tag_field="role", tag="missing"):
    pass


class _ExtraAgent(_Answer):
    name: str
    address: Address
    valid_until: TimeMs | None = None


class _LeverageSetting(_Answer):
    type: Literal["cross", "isolated"]
    value: _Leverage


class _ActiveAssetData(_Answer):
    coin: Coin
    leverage: _LeverageSetting


def _ctxs_match_universe(answer: tuple) -> str | None:
    meta, ctxs = answer
    if len(ctxs) != len(meta.universe):
        return f"{len(ctxs)} asset contexts for {len(meta.universe)} assets"
    return None


# No fee tier charges or rebates 1 % of a fill's notional: a rate that large is a units mistake
# (bps read as a fraction). The fee table (hip3/strategy/fees.py) holds rates to the same bound.
_MAX_FEE_RATE = Decimal("0.01")


def _user_fees_ok(answer: _UserFees) -> str | None:
    for name, value, low in (
        ("userCrossRate", answer.user_cross_rate, Decimal(0)),
        ("userAddRate", answer.user_add_rate, -_MAX_FEE_RATE),
    ):
        if value is not None and not low <= Decimal(value) <= _MAX_FEE_RATE:
            return f"{name} = {value} is outside [{low}, {_MAX_FEE_RATE}]"
    discount = answer.active_referral_discount
    if discount is not None and Decimal(discount) > 1:
        return f"activeReferralDiscount = {discount} is above 1"
    return None


def _perp_dexs_ok(answer: list) -> str | None:
    if not answer or answer[0] is not None:
        return "expected a list whose first element is null (the validator dex)"
    return None


# info type -> (schema, extra check on the decoded answer or None)
_SCHEMAS: dict[str, tuple[Any, Any]] = {
    "perpDexs": (
        Annotated[list[_PerpDex | None], msgspec.Meta(max_length=_MAX_DEXES)],
        _perp_dexs_ok,
    ),
    "meta": (_Meta, None),
    "spotMeta": (_SpotMeta, None),
    "metaAndAssetCtxs": (tuple[_Meta, list[PerpAssetCtx]], _ctxs_match_universe),
    "clearinghouseState": (_ClearinghouseState, None),
    "openOrders": (list[_OpenOrder], None),
    "frontendOpenOrders": (list[_OpenOrder], None),
    "orderStatus": (_OrderFound | _OrderUnknown, None),
    "userFills": (list[WsFill], None),
    "userFillsByTime": (list[WsFill], None),
    "userFees": (_UserFees, _user_fees_ok),
    "perpsAtOpenInterestCap": (list[Coin], None),
    "l2Book": (L2Book | None, None),
    # the account check: who the signer is, and until when an agent may sign
    "userRole": (_RoleUser | _RoleAgent | _RoleSubAccount | _RoleVault | _RoleMissing, None),
    "extraAgents": (list[_ExtraAgent], None),
    # the account's leverage setting on one market
    "activeAssetData": (_ActiveAssetData, None),
    # the account mode: a bare string ("disabled", "unifiedAccount", "portfolioMargin", ...)
    "userAbstraction": (Annotated[str, msgspec.Meta(max_length=64)], None),
}
_DECODERS = {kind: msgspec.json.Decoder(schema) for kind, (schema, _check) in _SCHEMAS.items()}
_plain = msgspec.json.Decoder()
CHECKED_INFO_TYPES = frozenset(_SCHEMAS)


class BadAnswer(msgspec.Struct, frozen=True, gc=False):
    """An info answer that failed its checks; `reason` is one line naming the field."""

    info_type: str
    reason: str


def _bad(info_type: str, reason: str) -> BadAnswer:
    return BadAnswer(info_type, " ".join(f"{info_type}: {reason}".split())[:_DETAIL_CHARS])


def check_info_answer(info_type: str, raw: bytes | None) -> Any:
    """The answer to an info request of `info_type` as plain JSON, or a `BadAnswer`.

    Never raises. `raw` is the post response's `data` (absent data is null). An info type
    without a schema here is refused, so a new request cannot skip the checks unnoticed.
    """
    try:
        decoder = _DECODERS.get(info_type)
        if decoder is None:
            return _bad(info_type, "no checked schema for this info type")
        data = bytes(raw) if raw else b"null"
        if not within_depth(data):
            return _bad(info_type, "answer nested too deeply")
        typed = decoder.decode(data)
        check = _SCHEMAS[info_type][1]
        problem = check(typed) if check is not None else None
        if problem is not None:
            return _bad(info_type, problem)
        return _plain.decode(data)
    except msgspec.ValidationError as exc:
        return _bad(info_type, describe_constraint(str(exc)))
    except msgspec.DecodeError as exc:
        return _bad(info_type, f"not JSON: {exc}")
    except Exception as exc:  # a bad answer must never raise inside the dispatcher
        return _bad(info_type, f"{type(exc).__name__}: {exc}")
