"""Exchange actions as plain dicts in the exchange's exact key order.

Shapes and answers: docs/exchange/actions.md; user-signed actions:
docs/exchange/signing.md#user-signed-actions.

The L1 signature hashes the msgpack encoding of these dicts, and msgpack writes keys in
insertion order, so every builder below inserts keys in the order the official SDKs use.
Optional flags are left out entirely when false: an action hashed with `"f": false` or
`"a": false` is rejected by the exchange.

Prices and sizes must already be canonical wire strings (see `numbers.format_price` and
`numbers.format_size`); "2000.0" instead of "2000" would sign a different action.
"""

from __future__ import annotations

import re
from typing import Any

from hip3.protocol.ids import is_cloid
from hip3.protocol.numbers import DecimalFormatError, parse_decimal, wire_decimal

__all__ = [
    "GROUPINGS",
    "MAX_BUILDER_FEE",
    "SIGNATURE_CHAIN_ID",
    "TIFS",
    "TPSLS",
    "ActionError",
    "approve_agent_action",
    "batch_modify_action",
    "cancel_action",
    "cancel_by_cloid_action",
    "limit_order_wire",
    "noop_action",
    "order_action",
    "schedule_cancel_action",
    "trigger_order_wire",
    "update_leverage_action",
]

TIFS = ("Alo", "Ioc", "Gtc")
TPSLS = ("tp", "sl")
GROUPINGS = ("na", "normalTpsl", "positionTpsl")
# Tenths of a basis point; 1000 (1%) is the spot cap, perps are capped lower by the exchange.
MAX_BUILDER_FEE = 1000
# Chain id the wallet signs user-signed actions with (Arbitrum Sepolia); any id is accepted.
SIGNATURE_CHAIN_ID = "0x66eee"
_UINT64_MAX = (1 << 64) - 1
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
# Exactly the strings `_check_wire_number` accepts: positive, no sign, no leading zeros, no
# trailing zeros or point after a fraction (what `wire_decimal` prints for a value > 0). A
# match skips the Decimal round trip; anything else takes the full check and its messages.
_CANONICAL_POSITIVE = re.compile(r"[1-9][0-9]*(?:\.[0-9]*[1-9])?|0\.[0-9]*[1-9]").fullmatch


class ActionError(ValueError):
    """An action argument the exchange would reject or sign differently."""


def _check_int(value: object, name: str, *, minimum: int = 0, maximum: int = _UINT64_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ActionError(f"{name} must be an int, got {type(value).__name__}: {value!r}")
    if not minimum <= value <= maximum:
        raise ActionError(f"{name} must be in [{minimum}, {maximum}], got {value}")
    return value


def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ActionError(f"{name} must be a bool, got {type(value).__name__}: {value!r}")
    return value


def _check_wire_number(value: object, name: str) -> str:
    """A positive decimal string already in canonical wire form."""
    if type(value) is str and _CANONICAL_POSITIVE(value) is not None:
        return value
    try:
        parsed = parse_decimal(value)  # type: ignore[arg-type]
    except DecimalFormatError as exc:
        raise ActionError(f"{name}: {exc}") from None
    if parsed <= 0:
        raise ActionError(f"{name} must be > 0, got {value!r}")
    canonical = wire_decimal(parsed)
    if canonical != value:
        raise ActionError(f"{name} {value!r} is not canonical; send {canonical!r}")
    return value


def _check_cloid(value: object, name: str = "cloid") -> str:
    if not is_cloid(value):
        raise ActionError(f"{name} must be '0x' + 32 lowercase hex digits, got {value!r}")
    return value  # type: ignore[return-value]


def _check_address(value: object, name: str) -> str:
    if not isinstance(value, str) or _ADDRESS.fullmatch(value) is None:
        raise ActionError(f"{name} must be a 0x-prefixed 20-byte hex address, got {value!r}")
    # Hex fields may be parsed as bytes server-side; lowercase is what gets hashed.
    return value.lower()


def _order_wire(
    asset: int, is_buy: bool, px: str, sz: str, reduce_only: bool, order_type: dict, cloid
) -> dict:
    wire: dict[str, Any] = {
        "a": _check_int(asset, "asset"),
        "b": _check_bool(is_buy, "is_buy"),
        "p": _check_wire_number(px, "px"),
        "s": _check_wire_number(sz, "sz"),
        "r": _check_bool(reduce_only, "reduce_only"),
        "t": order_type,
    }
    if cloid is not None:
        wire["c"] = _check_cloid(cloid)
    return wire


def limit_order_wire(
    *,
    asset: int,
    is_buy: bool,
    px: str,
    sz: str,
    reduce_only: bool,
    tif: str,
    cloid: str | None = None,
) -> dict:
    """One limit order: keys a, b, p, s, r, t, c (c only with a cloid)."""
    if tif not in TIFS:
        raise ActionError(f"tif must be one of {TIFS}, got {tif!r}")
    return _order_wire(asset, is_buy, px, sz, reduce_only, {"limit": {"tif": tif}}, cloid)


def trigger_order_wire(
    *,
    asset: int,
    is_buy: bool,
    px: str,
    sz: str,
    reduce_only: bool,
    trigger_px: str,
    is_market: bool,
    tpsl: str,
    cloid: str | None = None,
) -> dict:
    """One trigger (TP/SL) order; `px` is the limit price used once triggered."""
    if tpsl not in TPSLS:
        raise ActionError(f"tpsl must be one of {TPSLS}, got {tpsl!r}")
    trigger = {
        "isMarket": _check_bool(is_market, "is_market"),
        "triggerPx": _check_wire_number(trigger_px, "trigger_px"),
        "tpsl": tpsl,
    }
    return _order_wire(asset, is_buy, px, sz, reduce_only, {"trigger": trigger}, cloid)


def _check_grouping(grouping: str | dict) -> str | dict:
    if isinstance(grouping, str):
        if grouping not in GROUPINGS:
            raise ActionError(
                f"grouping must be one of {GROUPINGS} or {{'p': int}}, got {grouping!r}"
            )
        return grouping
    if isinstance(grouping, dict) and set(grouping) == {"p"}:
        return {"p": _check_int(grouping["p"], "grouping priority p", maximum=100_000_000)}
    raise ActionError(f"grouping must be one of {GROUPINGS} or {{'p': int}}, got {grouping!r}")


def _check_orders(orders: list[dict], name: str = "orders") -> list[dict]:
    if not isinstance(orders, list) or not orders:
        raise ActionError(f"{name} must be a non-empty list of order wires")
    for i, order in enumerate(orders):
        if not isinstance(order, dict) or tuple(order)[:6] != ("a", "b", "p", "s", "r", "t"):
            raise ActionError(
                f"{name}[{i}] is not an order wire (build it with limit_order_wire or "
                "trigger_order_wire)"
            )
    return orders


def order_action(
    orders: list[dict], *, grouping: str | dict = "na", builder: dict | None = None
) -> dict:
    """`order` action: keys type, orders, grouping, builder (builder only when given)."""
    action: dict[str, Any] = {
        "type": "order",
        "orders": _check_orders(orders),
        "grouping": _check_grouping(grouping),
    }
    if builder is not None:
        if not isinstance(builder, dict) or set(builder) != {"b", "f"}:
            raise ActionError(f"builder must be {{'b': address, 'f': fee}}, got {builder!r}")
        action["builder"] = {
            "b": _check_address(builder["b"], "builder address"),
            "f": _check_int(builder["f"], "builder fee", maximum=MAX_BUILDER_FEE),
        }
    return action


def _check_nonempty(items: object, name: str) -> list:
    if not isinstance(items, list | tuple) or not items:
        raise ActionError(f"{name} must be a non-empty list")
    return list(items)


def cancel_action(cancels: list[tuple[int, int]], *, fast: bool = False) -> dict:
    """`cancel` by (asset, oid); `"f": true` appended only for a fast cancel."""
    wires = [
        {"a": _check_int(asset, "cancel asset"), "o": _check_int(oid, "cancel oid")}
        for asset, oid in _check_nonempty(cancels, "cancels")
    ]
    action: dict[str, Any] = {"type": "cancel", "cancels": wires}
    if _check_bool(fast, "fast"):
        action["f"] = True
    return action


def cancel_by_cloid_action(cancels: list[tuple[int, str]], *, fast: bool = False) -> dict:
    """`cancelByCloid` by (asset, cloid); note the long keys `asset` and `cloid`."""
    wires = [
        {"asset": _check_int(asset, "cancel asset"), "cloid": _check_cloid(cloid)}
        for asset, cloid in _check_nonempty(cancels, "cancels")
    ]
    action: dict[str, Any] = {"type": "cancelByCloid", "cancels": wires}
    if _check_bool(fast, "fast"):
        action["f"] = True
    return action


def batch_modify_action(
    modifies: list[tuple[int | str, dict]], *, always_place: bool = False
) -> dict:
    """`batchModify`: each entry {oid (int oid or cloid string), order}; `"a": true` last,
    only when the new order must be placed even if the cancel fails."""
    wires = []
    for oid, order in _check_nonempty(modifies, "modifies"):
        target = oid if isinstance(oid, str) else _check_int(oid, "modify oid")
        if isinstance(target, str):
            _check_cloid(target, "modify oid (cloid)")
        _check_orders([order], "modify order")
        wires.append({"oid": target, "order": order})
    action: dict[str, Any] = {"type": "batchModify", "modifies": wires}
    if _check_bool(always_place, "always_place"):
        action["a"] = True
    return action


def schedule_cancel_action(time_ms: int | None = None) -> dict:
    """Dead man's switch: set it for `time_ms` (unix ms, >= 5 s ahead), or clear it with None."""
    action: dict[str, Any] = {"type": "scheduleCancel"}
    if time_ms is not None:
        action["time"] = _check_int(time_ms, "time_ms")
    return action


def update_leverage_action(*, asset: int, is_cross: bool, leverage: int) -> dict:
    """`updateLeverage`; HIP-3 isolated-only assets need is_cross=False."""
    return {
        "type": "updateLeverage",
        "asset": _check_int(asset, "asset"),
        "isCross": _check_bool(is_cross, "is_cross"),
        "leverage": _check_int(leverage, "leverage", minimum=1, maximum=1000),
    }


def noop_action() -> dict:
    """`noop`: burns a nonce, e.g. to invalidate an in-flight action signed with it."""
    return {"type": "noop"}


def approve_agent_action(
    *, agent_address: str, agent_name: str | None, nonce: int, mainnet: bool
) -> dict:
    """User-signed `approveAgent`, signed by the master key (docs/exchange/signing.md#approveagent).

    An unnamed agent is signed with agentName "" but posted without the key, as the
    official SDK does; `signing.sign_user_action` signs the missing name as "".
    """
    action: dict[str, Any] = {
        "type": "approveAgent",
        "agentAddress": _check_address(agent_address, "agent_address"),
    }
    if agent_name is not None:
        if not isinstance(agent_name, str):
            raise ActionError(f"agent_name must be a string or None, got {agent_name!r}")
        action["agentName"] = agent_name
    action["nonce"] = _check_int(nonce, "nonce")
    action["signatureChainId"] = SIGNATURE_CHAIN_ID
    action["hyperliquidChain"] = "Mainnet" if _check_bool(mainnet, "mainnet") else "Testnet"
    return action
