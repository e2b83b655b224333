"""One coin's limit order book with price-time priority.

Levels are dicts keyed by oid (insertion order = time priority) so a cancel is O(1) inside
its level; the sorted price lists only change when a level appears or empties.

An order that paid a priority fee to rest (an ALO with `grouping: {"p": n}`) is placed ahead
of the orders of its level that arrived in the last `PRIORITY_WINDOW_MS` and paid less: each
level's recent tail is kept sorted by decreasing rate, time order among equal rates
(https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/priority-fees: "the tail of orders
placed in the last 400 ms is re-sorted", a continuous window).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hip3.sim.wire import Trigger

PRIORITY_WINDOW_MS = 400


@dataclass(slots=True, eq=False)
class Order:
    oid: int
    user: str
    coin: str
    is_buy: bool
    limit_px: Decimal
    sz: Decimal  # remaining
    orig_sz: Decimal
    timestamp: int
    tif: str
    reduce_only: bool = False
    cloid: str | None = None
    margin: Decimal = Decimal(0)  # margin reserved while resting (0 for reduce-only, makers)
    priority: int = 0  # the priority fee rate it paid to rest ahead (1e-8 of notional)
    # Trigger orders (hip3.sim.triggers): off the book until the mark reaches the trigger.
    trigger: Trigger | None = None
    triggered: bool = False
    position_tpsl: bool = False  # sized to the position when it fires; dies with it

    @property
    def side(self) -> str:
        return "B" if self.is_buy else "A"


@dataclass(slots=True)
class Level:
    orders: dict[int, Order] = field(default_factory=dict)
    total: Decimal = Decimal(0)


class Book:
    __slots__ = ("_ask_prices", "_bid_prices", "asks", "bids", "coin")

    def __init__(self, coin: str) -> None:
        self.coin = coin
        self.bids: dict[Decimal, Level] = {}
        self.asks: dict[Decimal, Level] = {}
        self._bid_prices: list[Decimal] = []  # ascending; best bid is last
        self._ask_prices: list[Decimal] = []  # ascending; best ask is first

    def best_bid(self) -> Decimal | None:
        return self._bid_prices[-1] if self._bid_prices else None

    def best_ask(self) -> Decimal | None:
        return self._ask_prices[0] if self._ask_prices else None

    def add(self, order: Order) -> None:
        side, prices = (
            (self.bids, self._bid_prices) if order.is_buy else (self.asks, self._ask_prices)
        )
        level = side.get(order.limit_px)
        if level is None:
            level = side[order.limit_px] = Level()
            bisect.insort(prices, order.limit_px)
        level.orders[order.oid] = order
        level.total += order.sz
        if order.priority:
            _resort_recent(level, order)

    def remove(self, order: Order) -> None:
        side, prices = (
            (self.bids, self._bid_prices) if order.is_buy else (self.asks, self._ask_prices)
        )
        level = side.get(order.limit_px)
        if level is None or level.orders.pop(order.oid, None) is None:
            return
        level.total -= order.sz
        if not level.orders:
            del side[order.limit_px]
            del prices[bisect.bisect_left(prices, order.limit_px)]

    def reduce(self, order: Order, filled: Decimal) -> None:
        """A resting order traded `filled`; drop it from the book when nothing remains."""
        side = self.bids if order.is_buy else self.asks
        level = side[order.limit_px]
        order.sz -= filled
        level.total -= filled
        if not order.sz:
            self.remove_filled(order)

    def remove_filled(self, order: Order) -> None:
        side, prices = (
            (self.bids, self._bid_prices) if order.is_buy else (self.asks, self._ask_prices)
        )
        level = side[order.limit_px]
        del level.orders[order.oid]
        if not level.orders:
            del side[order.limit_px]
            del prices[bisect.bisect_left(prices, order.limit_px)]

    def crosses(self, is_buy: bool, limit_px: Decimal) -> bool:
        """Whether an order at `limit_px` on the `is_buy` side would trade at once."""
        if is_buy:
            return bool(self._ask_prices) and self._ask_prices[0] <= limit_px
        return bool(self._bid_prices) and self._bid_prices[-1] >= limit_px

    def crossing_levels(self, is_buy: bool, limit_px: Decimal):
        """Resting levels a taker on `is_buy` side at `limit_px` would trade, best first.

        Yields (px, level); the caller mutates levels through reduce(), so the next best is
        re-read on every step instead of iterating a stale list.
        """
        while True:
            if is_buy:
                if not self._ask_prices or self._ask_prices[0] > limit_px:
                    return
                px = self._ask_prices[0]
                yield px, self.asks[px]
            else:
                if not self._bid_prices or self._bid_prices[-1] < limit_px:
                    return
                px = self._bid_prices[-1]
                yield px, self.bids[px]

    def depth(self, is_buy: bool, levels: int) -> list[tuple[Decimal, Decimal, int]]:
        if is_buy:
            prices = self._bid_prices[-levels:][::-1] if levels else []
            side = self.bids
        else:
            prices = self._ask_prices[:levels]
            side = self.asks
        return [(px, side[px].total, len(side[px].orders)) for px in prices]

    def orders_of(self, user: str) -> list[Order]:
        found: list[Order] = []
        for side in (self.bids, self.asks):
            for level in side.values():
                found.extend(order for order in level.orders.values() if order.user == user)
        return found

    def all_orders(self) -> list[Order]:
        return [
            order
            for side in (self.bids, self.asks)
            for level in side.values()
            for order in level.orders.values()
        ]


def _resort_recent(level: Level, newest: Order) -> None:
    """Move `newest` ahead of the level's orders from the last window that paid less."""
    orders = list(level.orders.values())
    horizon = newest.timestamp - PRIORITY_WINDOW_MS
    start = len(orders) - 1
    while start > 0 and orders[start - 1].timestamp >= horizon:
        start -= 1
    tail = orders[start:]
    tail.sort(key=lambda order: -order.priority)  # stable: time order among equal rates
    level.orders = {order.oid: order for order in orders[:start] + tail}
