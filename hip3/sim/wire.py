"""Structural validation of /exchange payloads: types and required fields, with clear texts.

A payload that fails here never reaches signature recovery, like a body the exchange cannot
deserialize. Messages start with the exchange's own prefix and then name the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from hip3.sim import texts

DESERIALIZE = "Failed to deserialize the JSON body into the target type"
_CLOID = re.compile(r"^0x[0-9a-fA-F]{32}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_TIFS = ("Gtc", "Ioc", "Alo")
_WIRE_QUANTUM = Decimal("1e-8")
MAX_BATCH = 200  # entries in one action; more and nothing executes


class ActionError(Exception):
    """Whole-action failure: becomes {"status": "err", "response": str(error)}."""


class SchemaError(ActionError):
    """A body that does not fit the action schema: HTTP 422 on /exchange (the exchange cannot
    deserialize it); over a websocket post it is answered as a whole-action error."""


def malformed(where: str, problem: str) -> SchemaError:
    return SchemaError(f"{DESERIALIZE}: {where} {problem}")


@dataclass(frozen=True, slots=True)
class Trigger:
    """`t: {"trigger": {isMarket, triggerPx, tpsl}}` of a trigger order."""

    is_market: bool
    trigger_px: Decimal  # zero is a tick error of that order
    tpsl: str  # "tp" | "sl"


@dataclass(frozen=True, slots=True)
class OrderWire:
    asset: int
    is_buy: bool
    px: Decimal  # zero is a tick error of that order
    sz: Decimal  # zero is a zero-size error of that order
    reduce_only: bool
    tif: str | None  # None for trigger orders
    cloid: str | None  # lowercased
    trigger: Trigger | None = None


def require(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise malformed(where, f"is missing field '{key}'")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise malformed(f"{where}.{key}", f"must be {_kind_name(kinds)}, got a boolean")
    if not isinstance(value, kinds):
        raise malformed(f"{where}.{key}", f"must be {_kind_name(kinds)}, got {_json_type(value)}")
    return value


def require_int(obj: dict[str, Any], key: str, where: str, *, minimum: int = 0) -> int:
    value = require(obj, key, int, where)
    if value < minimum or value >= 1 << 64:
        raise malformed(f"{where}.{key}", f"is out of range ({value})")
    return value


def optional_address(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise malformed(where, "must be null or a 0x-prefixed 40-hex-digit address")
    return value.lower()


def address(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise malformed(where, "must be a 0x-prefixed 40-hex-digit address")
    return value.lower()


def cloid(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _CLOID.match(value):
        raise malformed(where, "must be a cloid: 0x followed by 32 hex digits")
    return value.lower()


def batch(action: dict[str, Any], key: str) -> list[Any]:
    items = require(action, key, list, "action")
    if not items:
        if key == "orders":
            raise ActionError(texts.ORDERS_EMPTY)
        raise ActionError(f"Empty batch: action.{key} has no elements.")
    if len(items) > MAX_BATCH:
        raise ActionError(texts.OVER_WEIGHT_LIMIT.format(limit=MAX_BATCH))
    return items


def order_wire(raw: Any, where: str) -> OrderWire:
    if not isinstance(raw, dict):
        raise malformed(where, f"must be an order object, got {_json_type(raw)}")
    asset = require_int(raw, "a", where)
    is_buy = require(raw, "b", bool, where)
    px_text = require(raw, "p", str, where)
    sz_text = require(raw, "s", str, where)
    reduce_only = require(raw, "r", bool, where)
    order_type = require(raw, "t", dict, where)
    tif: str | None
    trigger = None
    if "limit" in order_type:
        limit = require(order_type, "limit", dict, f"{where}.t")
        tif = require(limit, "tif", str, f"{where}.t.limit")
        if tif not in _TIFS:
            raise malformed(f"{where}.t.limit.tif", f"must be one of Gtc, Ioc, Alo, got {tif!r}")
    elif "trigger" in order_type:
        trigger = _trigger(require(order_type, "trigger", dict, f"{where}.t"), f"{where}.t")
        tif = None
    else:
        raise malformed(f"{where}.t", 'must be {"limit": {...}} or {"trigger": {...}}')
    order_cloid = cloid(raw["c"], f"{where}.c") if "c" in raw else None
    unknown = set(raw) - {"a", "b", "p", "s", "r", "t", "c"}
    if unknown:
        raise malformed(where, f"has unknown field(s) {sorted(unknown)}")
    return OrderWire(
        asset=asset,
        is_buy=is_buy,
        px=_number(px_text, f"{where}.p"),
        sz=_number(sz_text, f"{where}.s"),
        reduce_only=reduce_only,
        tif=tif,
        cloid=order_cloid,
        trigger=trigger,
    )


def _trigger(raw: dict[str, Any], where: str) -> Trigger:
    where = f"{where}.trigger"
    is_market = require(raw, "isMarket", bool, where)
    trigger_px = _number(require(raw, "triggerPx", str, where), f"{where}.triggerPx")
    tpsl = require(raw, "tpsl", str, where)
    if tpsl not in ("tp", "sl"):
        raise malformed(f"{where}.tpsl", f'must be "tp" or "sl", got {tpsl!r}')
    unknown = set(raw) - {"isMarket", "triggerPx", "tpsl"}
    if unknown:
        raise malformed(where, f"has unknown field(s) {sorted(unknown)}")
    return Trigger(is_market, trigger_px, tpsl)


def _number(text: str, where: str) -> Decimal:
    """Decimal of a wire number: a plain, non-negative decimal string with at most 8 nonzero
    decimals (trailing zeros beyond are fine), as the exchange deserializes it. Zero is left
    to the order rules."""
    if len(text) > 40:
        raise malformed(where, "is too long for a number")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise malformed(where, f"must be a decimal string, got {text!r}") from None
    if not value.is_finite() or "e" in text.lower():
        raise malformed(where, f"must be a plain decimal string, got {text!r}")
    if value < 0 or text.startswith("-"):
        raise malformed(where, f"must not be negative, got {text!r}")
    if value != value.quantize(_WIRE_QUANTUM, rounding=ROUND_DOWN):
        raise malformed(where, f"has a nonzero digit beyond 8 decimals: {text!r}")
    return value


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {
        int: "an integer",
        str: "a string",
        bool: "a boolean",
        dict: "an object",
        list: "an array",
        type(None): "null",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
