"""The shapes in which the exchange shows a resting order to its owner.

The same seven fields (plus `cloid` and `reduceOnly` when set) appear in two places, in a
different key order: the `openOrders` info answer and the order inside an `orderUpdates` item.
The key order follows the API documentation's examples for each, so a client that compares
frames textually sees what it would see live.
"""

from __future__ import annotations

from typing import Any

from hip3.sim import rules
from hip3.sim.book import Order

# openOrders: {coin, limitPx, oid, side, sz, timestamp, origSz}
_OPEN_ORDER_KEYS = ("coin", "limitPx", "oid", "side", "sz", "timestamp", "origSz")
# orderUpdates' WsBasicOrder: {coin, side, limitPx, sz, oid, timestamp, origSz}
_BASIC_ORDER_KEYS = ("coin", "side", "limitPx", "sz", "oid", "timestamp", "origSz")


def _wire(order: Order, keys: tuple[str, ...]) -> dict[str, Any]:
    fields = {
        "coin": order.coin,
        "side": order.side,
        "limitPx": rules.wire(order.limit_px),
        "sz": rules.wire(order.sz),
        "oid": order.oid,
        "timestamp": order.timestamp,
        "origSz": rules.wire(order.orig_sz),
    }
    wire = {key: fields[key] for key in keys}
    if order.cloid is not None:
        wire["cloid"] = order.cloid
    if order.reduce_only:
        wire["reduceOnly"] = True
    return wire


def open_order_wire(order: Order) -> dict[str, Any]:
    """The order as the `openOrders` info answer lists it."""
    return _wire(order, _OPEN_ORDER_KEYS)


def basic_order_wire(order: Order) -> dict[str, Any]:
    """The order as an `orderUpdates` item carries it."""
    return _wire(order, _BASIC_ORDER_KEYS)
