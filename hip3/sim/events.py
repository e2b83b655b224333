"""Events the exchange core emits to its sink; the server turns them into websocket frames.

The core knows nothing of sockets: every state change is reported as one of these frozen
records through a plain callable `emit(event)`. Payload dicts are already wire-shaped (exact
strings for numbers) so the transport only wraps them in `{"channel": ..., "data": ...}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class OrderUpdates:
    """Channel `orderUpdates`: a list of WsOrder dicts `{order, status, statusTimestamp}`."""

    user: str
    orders: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class UserFills:
    """Channel `userFills` (streaming, never a snapshot): WsFill dicts for one user."""

    user: str
    fills: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class UserEvent:
    """Channel `user` (userEvents): exactly one of {"fills": [...]}, {"nonUserCancel": [...]}..."""

    user: str
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BookChanged:
    """Top of book or depth of `coin` changed; the server re-reads bbo/l2_book when it publishes."""

    coin: str


@dataclass(frozen=True, slots=True)
class Trades:
    """Channel `trades`: WsTrade dicts for `coin`, in execution order."""

    coin: str
    trades: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class CtxChanged:
    """Oracle, mark, funding or open interest of `coin` changed (channel `activeAssetCtx`)."""

    coin: str


Event = OrderUpdates | UserFills | UserEvent | BookChanged | Trades | CtxChanged
