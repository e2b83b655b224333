"""Trigger orders: take-profit and stop-loss, market or limit, fired on the mark price.

From the exchange's docs (https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/
exchange-endpoint, https://hyperliquid.gitbook.io/hyperliquid-docs/trading/take-profit-and-
stop-loss-orders-tp-sl) and the official SDKs' order types:

- `t: {"trigger": {isMarket, triggerPx, tpsl}}`; `p` is the limit price once triggered (for a
  market trigger it bounds the slippage). A trigger fires when the mark price reaches
  `triggerPx`: a take-profit sell or a stop-loss buy when the mark is at or above it, a
  take-profit buy or a stop-loss sell when it is at or below it. On firing the order reports
  `triggered` (orderUpdates) and then executes under the same oid: a market trigger as an IOC
  at `p`, a limit trigger as a GTC at `p`.
- Groupings: `na` (each trigger stands alone), `normalTpsl` (the first order is a plain
  parent; the others are its TP/SL children, of fixed size, that wait for the parent to fill),
  `positionTpsl` (TP/SL attached to the position: sized to the whole position when it fires,
  and canceled when the position closes). When one TP/SL child of a parent or one order of a
  position's TP/SL fires, its siblings are canceled (`siblingFilledCanceled`).
- Fast cancels (`f: true`) are refused for trigger orders.

Chosen by the simulator (the live rules or texts are not published; texts in
`hip3.sim.texts`):
- statuses: a standalone trigger answers `{"resting": {"oid"}}`; a position TP/SL, and a child
  whose parent filled at once, answers `"waitingForTrigger"`; a child of a resting parent
  answers `"waitingForFill"` and is placed (orderUpdates `open`) when the parent has filled
  completely; it is canceled if the parent ends any other way;
- a waiting trigger reserves no margin: margin is checked when it fires, like a new order;
- in a TP/SL grouping every TP/SL must be reduce-only and on the parent's coin and opposite
  side, at most two (a whole-action error otherwise); a TP/SL whose trigger the mark has
  already reached answers `Invalid TP/SL price.` (live text, with ` asset=`); a standalone
  trigger that is already reached fires at once;
- a position TP/SL left without a position is canceled with `reduceOnlyCanceled`, and
  waiting triggers of a halted market with `canceled`;
- frontendOpenOrders shows `triggerCondition` as "Price above <px>" / "Price below <px>",
  `orderType` "Take Profit Market|Limit" / "Stop Market|Limit", and `tif` null while waiting;
- each firing sends the user a `notification` (its text is invented).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hip3.sim import rules, texts
from hip3.sim.accounts import Account
from hip3.sim.book import Order
from hip3.sim.events import Notification, PendingEvents
from hip3.sim.ledger import OrderLedger
from hip3.sim.market import Markets
from hip3.sim.matching import Matcher
from hip3.sim.universe import Asset, Universe
from hip3.sim.wire import ActionError, OrderWire

GROUPINGS = ("na", "normalTpsl", "positionTpsl")
MAX_TPSL = 2
# Statuses after which a parent will never fill: its waiting children are dropped.
_PARENT_DONE = frozenset({"filled"})
_PARENT_LIVE = frozenset({"open", "triggered"})


@dataclass(slots=True)
class _Children:
    """TP/SL children of a parent order that has not filled yet."""

    account: Account
    asset: Asset
    orders: list[Order] = field(default_factory=list)


def fires_above(order: Order) -> bool:
    """True if the order fires when the mark is at or above its trigger price."""
    assert order.trigger is not None
    return (order.trigger.tpsl == "tp") != order.is_buy


def order_type_name(order: Order) -> str:
    assert order.trigger is not None
    kind = "Take Profit" if order.trigger.tpsl == "tp" else "Stop"
    return f"{kind} {'Market' if order.trigger.is_market else 'Limit'}"


def trigger_condition(order: Order) -> str:
    assert order.trigger is not None
    side = "above" if fires_above(order) else "below"
    return f"Price {side} {rules.wire(order.trigger.trigger_px)}"


class Triggers:
    def __init__(
        self,
        universe: Universe,
        markets: Markets,
        ledger: OrderLedger,
        matcher: Matcher,
        *,
        emit: Callable[[object], None],
        clock_ms: Callable[[], int],
    ) -> None:
        self._universe = universe
        self._markets = markets
        self._ledger = ledger
        self._matcher = matcher
        self._emit = emit
        self._clock = clock_ms
        # coin -> oid -> (account, order) of waiting triggers
        self._waiting: dict[str, dict[int, tuple[Account, Order]]] = {}
        # parent oid -> its children, per coin of the parent
        self._parents: dict[str, dict[int, _Children]] = {}
        self._siblings: dict[int, list[Order]] = {}  # oid -> the TP/SL placed with it
        self._checking = False
        self._again: set[str] = set()

    def watches(self, coin: str) -> bool:
        return coin in self._waiting or coin in self._parents

    # ------------------------------------------------------------------ placing

    def place_orders(
        self,
        account: Account,
        orders: list[OrderWire],
        grouping: str,
        now: int,
        pending: PendingEvents,
        tx_hash: str,
    ) -> list[Any]:
        """The statuses of an order action whose grouping is na, normalTpsl or positionTpsl."""
        if grouping == "na":
            return [self.place_one(account, wire, now, pending, tx_hash) for wire in orders]
        if grouping == "positionTpsl":
            return self._place_position_tpsl(account, orders, now, pending)
        return self._place_normal_tpsl(account, orders, now, pending, tx_hash)

    def place_one(
        self, account: Account, wire: OrderWire, now: int, pending: PendingEvents, tx_hash: str
    ) -> Any:
        """A standalone order: a plain one goes to the matcher, a trigger waits here."""
        if wire.trigger is None:
            return self._matcher.place(account, wire, now, pending, tx_hash)
        asset, order, error = self._new_trigger(account, wire, now, pending, tpsl_group=False)
        if error is not None:
            return error
        assert asset is not None and order is not None
        self._wait(account, asset, order, pending)
        self._fire_reached(asset.coin, pending)
        return {"resting": _with_cloid({"oid": order.oid}, order.cloid)}

    def _place_position_tpsl(
        self, account: Account, orders: list[OrderWire], now: int, pending: PendingEvents
    ) -> list[Any]:
        _check_tpsl_group(orders, parent=None)
        statuses: list[Any] = []
        placed: list[Order] = []
        for wire in orders:
            asset, order, error = self._new_trigger(account, wire, now, pending, tpsl_group=True)
            if error is not None:
                statuses.append(error)
                continue
            assert asset is not None and order is not None
            position = account.position(asset.coin)
            if not position or (position > 0) == order.is_buy:
                statuses.append({"error": texts.with_asset(texts.REDUCE_ONLY, asset.asset_id)})
                self._ledger.record(account, order, "reduceOnlyRejected", now, pending)
                continue
            order.position_tpsl = True
            order.sz = order.orig_sz = abs(account.position(asset.coin))
            self._wait(account, asset, order, pending)
            placed.append(order)
            statuses.append("waitingForTrigger")
        self._link(placed)
        return statuses

    def _place_normal_tpsl(
        self,
        account: Account,
        orders: list[OrderWire],
        now: int,
        pending: PendingEvents,
        tx_hash: str,
    ) -> list[Any]:
        parent_wire, child_wires = orders[0], orders[1:]
        _check_tpsl_group(child_wires, parent=parent_wire)
        children: list[Order] = []
        statuses: list[Any] = []
        for wire in child_wires:  # checked before the parent trades: an error places nothing
            asset, order, error = self._new_trigger(account, wire, now, pending, tpsl_group=True)
            if error is not None:
                return [error] * len(orders)
            assert order is not None
            children.append(order)
        parent_status = self._matcher.place(account, parent_wire, now, pending, tx_hash)
        statuses.append(parent_status)
        asset = self._universe.by_asset_id[parent_wire.asset]
        self._link(children)
        if "filled" in parent_status:
            for child in children:
                self._wait(account, asset, child, pending)
            statuses.extend("waitingForTrigger" for _ in children)
            self._fire_reached(asset.coin, pending)
        elif "resting" in parent_status:
            parent_oid = parent_status["resting"]["oid"]
            self._parents.setdefault(asset.coin, {})[parent_oid] = _Children(
                account, asset, children
            )
            statuses.extend("waitingForFill" for _ in children)
        else:  # the parent was refused: so are its children
            statuses.extend(parent_status for _ in children)
        return statuses

    def _new_trigger(
        self,
        account: Account,
        wire: OrderWire,
        now: int,
        pending: PendingEvents,
        *,
        tpsl_group: bool,
    ) -> tuple[Asset | None, Order | None, dict[str, str] | None]:
        trigger = wire.trigger
        assert trigger is not None
        asset = self._universe.listed_asset(wire.asset)
        if asset is None:
            return None, None, {"error": texts.UNKNOWN_ASSET.format(asset=wire.asset)}
        if asset.coin in self._markets.halted:
            return None, None, {"error": texts.MARKET_HALTED.format(coin=asset.coin)}
        tif = "Ioc" if trigger.is_market else "Gtc"
        order = self._ledger.new_order(
            account, asset, wire.is_buy, wire.px, wire.sz, tif, wire.reduce_only, wire.cloid, now
        )
        order.trigger = trigger
        rejection = self._placement_problem(account, asset, order, tpsl_group=tpsl_group)
        if rejection is not None:
            text, status = rejection
            self._ledger.record(account, order, status, now, pending, index_cloid=False)
            return asset, None, {"error": text}
        return asset, order, None

    def _placement_problem(
        self, account: Account, asset: Asset, order: Order, *, tpsl_group: bool
    ) -> tuple[str, str] | None:
        assert order.trigger is not None
        asset_id = asset.asset_id
        trigger_px = order.trigger.trigger_px
        for px in (order.limit_px, trigger_px):
            if px <= 0 or not rules.price_is_valid(asset, px):
                return texts.with_asset(texts.TICK, asset_id), "tickRejected"
        if not order.sz and not (tpsl_group and order.reduce_only):
            return texts.ZERO_SIZE, "rejected"
        if order.sz and not rules.size_is_valid(asset, order.sz):
            return texts.INVALID_SIZE, "rejected"
        if not order.reduce_only and order.limit_px * order.sz < rules.MIN_NOTIONAL:
            return texts.with_asset(texts.MIN_NOTIONAL, asset_id), "minTradeNtlRejected"
        if order.cloid is not None and order.cloid in account.open_cloids:
            return texts.DUPLICATE_CLOID.format(cloid=order.cloid), "rejected"
        if tpsl_group and self._reached(order):
            return texts.with_asset(texts.INVALID_TPSL, asset_id), "badTriggerPxRejected"
        if not tpsl_group and order.reduce_only:
            position = account.position(asset.coin)
            if not position or (position > 0) == order.is_buy:
                return texts.with_asset(texts.REDUCE_ONLY, asset_id), "reduceOnlyRejected"
        return None

    def _wait(self, account: Account, asset: Asset, order: Order, pending: PendingEvents) -> None:
        account.open_orders[order.oid] = order
        if order.cloid is not None:
            account.open_cloids[order.cloid] = order.oid
        self._waiting.setdefault(asset.coin, {})[order.oid] = (account, order)
        self._ledger.record(account, order, "open", order.timestamp, pending)

    def _link(self, orders: list[Order]) -> None:
        if len(orders) > 1:
            for order in orders:
                self._siblings[order.oid] = [o for o in orders if o is not order]

    # ------------------------------------------------------------------ firing

    def check(self, coin: str) -> None:
        """Fire what the mark of `coin` has reached; settle parents and dead position TP/SLs.

        Called after every book or context change of a watched coin. Trades a fired order
        makes change the book again; those checks run after this one, never inside it."""
        if self._checking:
            self._again.add(coin)
            return
        self._checking = True
        try:
            self._again.add(coin)
            while self._again:
                pending = PendingEvents()
                try:
                    for next_coin in sorted(self._again):
                        self._again.discard(next_coin)
                        self._settle_parents(next_coin, pending)
                        self._fire_reached(next_coin, pending)
                finally:
                    pending.flush(self._emit)
        finally:
            self._checking = False

    def _fire_reached(self, coin: str, pending: PendingEvents) -> None:
        waiting = self._waiting.get(coin)
        if not waiting:
            return
        halted = coin in self._markets.halted
        now = self._clock()
        for oid, (account, order) in list(waiting.items()):
            if account.open_orders.get(oid) is not order:  # canceled since, or a sibling
                waiting.pop(oid, None)
                continue
            if halted:
                self._drop(account, order, "canceled", now, pending)
            elif order.position_tpsl and not account.position(coin):
                self._drop(account, order, "reduceOnlyCanceled", now, pending)
            elif self._reached(order):
                self._fire(account, order, now, pending)
        if not waiting:
            self._waiting.pop(coin, None)

    def _reached(self, order: Order) -> bool:
        assert order.trigger is not None
        mark = self._markets.mark_px(order.coin)
        if fires_above(order):
            return mark >= order.trigger.trigger_px
        return mark <= order.trigger.trigger_px

    def _fire(self, account: Account, order: Order, now: int, pending: PendingEvents) -> None:
        self._forget(account, order)
        order.triggered = True
        asset = self._universe.by_coin[order.coin]
        if order.position_tpsl:
            order.sz = order.orig_sz = abs(account.position(order.coin))
        self._ledger.record(account, order, "triggered", now, pending)
        for sibling in self._siblings.pop(order.oid, ()):
            self._siblings.pop(sibling.oid, None)
            if account.open_orders.get(sibling.oid) is sibling:
                self._drop(account, sibling, "siblingFilledCanceled", now, pending)
        mark = self._markets.mark_px(order.coin)
        text = texts.TRIGGERED.format(
            order_type=order_type_name(order), coin=order.coin, mark=rules.wire(mark)
        )
        self._emit(Notification(account.address, text))
        self._matcher.execute(account, asset, order, now, pending, self._matcher.internal_hash())

    def _drop(
        self, account: Account, order: Order, status: str, now: int, pending: PendingEvents
    ) -> None:
        self._forget(account, order)
        self._siblings.pop(order.oid, None)
        self._ledger.record(account, order, status, now, pending)

    def _forget(self, account: Account, order: Order) -> None:
        account.open_orders.pop(order.oid, None)
        if order.cloid is not None and account.open_cloids.get(order.cloid) == order.oid:
            del account.open_cloids[order.cloid]
        waiting = self._waiting.get(order.coin)
        if waiting is not None:
            waiting.pop(order.oid, None)

    def _settle_parents(self, coin: str, pending: PendingEvents) -> None:
        parents = self._parents.get(coin)
        if not parents:
            return
        now = self._clock()
        for parent_oid, children in list(parents.items()):
            entry = self._ledger.status(children.account.address, parent_oid)
            status = entry[1] if entry is not None else "canceled"
            if status in _PARENT_LIVE:
                continue
            del parents[parent_oid]
            for child in children.orders:
                if status in _PARENT_DONE:
                    self._wait(children.account, children.asset, child, pending)
                else:
                    self._ledger.record(children.account, child, "canceled", now, pending)
            if status in _PARENT_DONE:
                self._again.add(coin)  # the children may already be reached
        if not parents:
            self._parents.pop(coin, None)


def is_trigger(order: Any) -> bool:
    """A trigger order still waiting for its price (not on the book)."""
    return getattr(order, "trigger", None) is not None and not order.triggered


def _check_tpsl_group(tpsls: list[OrderWire], parent: OrderWire | None) -> None:
    """Whole-action checks of a normalTpsl / positionTpsl batch."""
    if parent is not None and parent.trigger is not None:
        raise ActionError(texts.TPSL_GROUPING)
    if not tpsls or len(tpsls) > MAX_TPSL:
        raise ActionError(texts.TPSL_GROUPING)
    coins = {wire.asset for wire in tpsls}
    sides = {wire.is_buy for wire in tpsls}
    if len(coins) != 1 or len(sides) != 1:
        raise ActionError(texts.TPSL_GROUPING)
    if parent is not None and (parent.asset not in coins or parent.is_buy in sides):
        raise ActionError(texts.TPSL_GROUPING)
    for wire in tpsls:
        if wire.trigger is None:
            raise ActionError(texts.TPSL_GROUPING)
        if not wire.reduce_only:
            raise ActionError(texts.TPSL_NOT_REDUCE_ONLY)


def _with_cloid(body: dict[str, Any], cloid: str | None) -> dict[str, Any]:
    if cloid is not None:
        body["cloid"] = cloid
    return body


__all__ = ["GROUPINGS", "Triggers", "fires_above", "is_trigger", "order_type_name"]
