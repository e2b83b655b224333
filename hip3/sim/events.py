"""Events the exchange core emits to its sink; the server turns them into websocket frames.

The core knows nothing of sockets: every state change is reported as one of these frozen
records through a plain callable `emit(event)`. Payload dicts are already wire-shaped (exact
strings for numbers) so the transport only wraps them in `{"channel": ..., "data": ...}`.
"""

from __future__ import annotations

from collections.abc import Callable
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


@dataclass(frozen=True, slots=True)
class LedgerUpdate:
    """Channel `userNonFundingLedgerUpdates`: one `{time, hash, delta}` of `user`."""

    user: str
    update: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AccountChanged:
    """Margin or leverage of `user` changed without an order, fill or funding payment
    (updateLeverage, updateIsolatedMargin): state feeds read the account again."""

    user: str


@dataclass(frozen=True, slots=True)
class Notification:
    """Channel `notification`: a one-line message to `user`."""

    user: str
    text: str


Event = (
    OrderUpdates
    | UserFills
    | UserEvent
    | BookChanged
    | Trades
    | CtxChanged
    | LedgerUpdate
    | AccountChanged
    | Notification
)


class PendingEvents:
    """Events of one entry-point call, grouped per user/coin and emitted together at the end.

    A call that fills ten makers sends each user one orderUpdates and one userFills frame,
    not ten: collaborators record into this batch and the caller flushes it once.
    """

    __slots__ = ("books", "ctxs", "fills", "non_user_cancels", "order_updates", "trades")

    def __init__(self) -> None:
        self.order_updates: dict[str, list[dict[str, Any]]] = {}
        self.fills: dict[str, list[dict[str, Any]]] = {}
        self.non_user_cancels: dict[str, list[dict[str, Any]]] = {}
        self.trades: dict[str, list[dict[str, Any]]] = {}
        self.books: dict[str, None] = {}
        self.ctxs: dict[str, None] = {}

    def flush(self, emit: Callable[[object], None]) -> None:
        for user, updates in self.order_updates.items():
            emit(OrderUpdates(user, updates))
        for user, fills in self.fills.items():
            emit(UserFills(user, fills))
            emit(UserEvent(user, {"fills": fills}))
        for user, cancels in self.non_user_cancels.items():
            emit(UserEvent(user, {"nonUserCancel": cancels}))
        for coin, trades in self.trades.items():
            emit(Trades(coin, trades))
        for coin in self.books:
            emit(BookChanged(coin))
        for coin in self.ctxs:
            emit(CtxChanged(coin))
