"""Order bookkeeping: ids, resting orders on books and accounts, status history, updates.

The one place an order's lifecycle is written down: a new order gets its oid here, rests and
leaves the book here, and every status it reaches is recorded here (for `orderStatus`) and
reported as an orderUpdates entry of the call's event batch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from decimal import Decimal

from hip3.sim.accounts import ZERO, Account
from hip3.sim.book import Order
from hip3.sim.events import PendingEvents
from hip3.sim.market import Markets
from hip3.sim.order_wires import basic_order_wire
from hip3.sim.universe import Asset, Universe

MAX_STATUS_HISTORY = 200_000
MAX_USER_HISTORY = 2000  # historicalOrders answers at most the 2000 most recent orders
FIRST_OID = 1_000_000


class OrderLedger:
    def __init__(self, universe: Universe, markets: Markets) -> None:
        self._universe = universe
        self._books = markets.books
        self._status: OrderedDict[int, tuple[Order, str, int]] = OrderedDict()
        self._cloid_oids: dict[tuple[str, str], int] = {}
        # Per user, oids by their latest status change, oldest first (historicalOrders).
        self._history: dict[str, OrderedDict[int, None]] = {}
        self._next_oid = FIRST_OID

    def new_order(
        self,
        account: Account,
        asset: Asset,
        is_buy: bool,
        px: Decimal,
        sz: Decimal,
        tif: str,
        reduce_only: bool,
        cloid: str | None,
        now: int,
        priority: int = 0,
    ) -> Order:
        oid = self._next_oid
        self._next_oid += 1
        # Positional, in Order's field order: keywords make this call twice as slow, and it
        # runs for every order and every maker quote.
        return Order(
            oid,
            account.address,
            asset.coin,
            is_buy,
            px,  # limit_px
            sz,
            sz,  # orig_sz
            now,  # timestamp
            tif,
            reduce_only,
            cloid,
            ZERO,  # margin: reserved when it rests
            priority,
        )

    def skip_ids(self, n: int) -> None:
        """Hand `n` order ids to nobody: orders that would have been made and replaced before
        anything could see them (the ids that come after are the same as if they had been)."""
        if n < 0:
            raise ValueError(f"cannot take back order ids, asked to skip {n}")
        self._next_oid += n

    def rest(self, account: Account, order: Order, pending: PendingEvents, *, notify: bool) -> None:
        """Put the unfilled rest of `order` on its book, reserving margin for what rests."""
        asset = self._universe.by_coin[order.coin]
        if order.margin and order.sz != order.orig_sz:
            order.margin = order.margin * order.sz / order.orig_sz
        self._books[order.coin].add(order)
        account.open_orders[order.oid] = order
        if order.cloid is not None:
            account.open_cloids[order.cloid] = order.oid
        if order.margin:
            account.order_margin[asset.dex] = (
                account.order_margin.get(asset.dex, ZERO) + order.margin
            )
        if notify:
            self.record(account, order, "open", order.timestamp, pending)

    def rest_quote(self, account: Account, order: Order) -> None:
        """Put a simulated maker's quote on its book: `rest` without its user-order parts
        (makers reserve no margin, send no cloid and have no orderUpdates stream)."""
        self._books[order.coin].add(order)
        account.open_orders[order.oid] = order

    def withdraw_quotes(self, account: Account, orders: Iterable[Order]) -> None:
        """Take a simulated maker's quotes off their books, the ones still resting (a quote
        that filled or was canceled by a self-trade is already gone); no events."""
        open_orders = account.open_orders
        for order in orders:
            if open_orders.get(order.oid) is order:
                self._books[order.coin].remove(order)
                del open_orders[order.oid]

    def remove_open(self, account: Account, order: Order) -> None:
        """Take a resting order off the book and release its margin (no event)."""
        self._books[order.coin].remove(order)
        account.open_orders.pop(order.oid, None)
        if order.cloid is not None and account.open_cloids.get(order.cloid) == order.oid:
            del account.open_cloids[order.cloid]
        if order.margin:
            dex = self._universe.by_coin[order.coin].dex
            account.order_margin[dex] -= order.margin
            order.margin = ZERO

    def cancel(
        self, account: Account, order: Order, status: str, now: int, pending: PendingEvents
    ) -> None:
        """Remove a resting order and report it with `status` (canceled, scheduledCancel...)."""
        self.remove_open(account, order)
        self.record(account, order, status, now, pending)
        pending.books[order.coin] = None

    def record(
        self,
        account: Account,
        order: Order,
        status: str,
        now: int,
        pending: PendingEvents,
        *,
        index_cloid: bool = True,
    ) -> None:
        if account.internal:
            return
        self._status[order.oid] = (order, status, now)
        if len(self._status) > MAX_STATUS_HISTORY:
            self._status.popitem(last=False)
        if order.cloid is not None and index_cloid:
            self._cloid_oids[(account.address, order.cloid)] = order.oid
        history = self._history.get(account.address)
        if history is None:
            history = self._history[account.address] = OrderedDict()
        history[order.oid] = None
        history.move_to_end(order.oid)
        if len(history) > MAX_USER_HISTORY:
            history.popitem(last=False)
        pending.order_updates.setdefault(account.address, []).append(
            {"order": basic_order_wire(order), "status": status, "statusTimestamp": now}
        )

    def history(self, user: str) -> list[tuple[Order, str, int]]:
        """`user`'s orders with their latest status, most recently changed first."""
        status = self._status
        entries = []
        for oid in reversed(self._history.get(user, ())):
            entry = status.get(oid)
            if entry is not None:
                entries.append(entry)
        return entries

    def status(self, user: str, oid: int | str) -> tuple[Order, str, int] | None:
        """(order, latest status, its timestamp) of `user`'s order by oid or cloid."""
        if isinstance(oid, str):
            found = self._cloid_oids.get((user, oid.lower()))
            if found is None:
                return None
            oid = found
        entry = self._status.get(oid)
        if entry is None or entry[0].user != user:
            return None
        return entry
