"""Orders against the book: pre-trade rules, matching in price-time priority, trades, fees.

Placing a user's order (`place`), replacing a simulated maker's quotes (`replace_quotes`) and
a deployer halt (`halt`) all change books and positions, so they live together here. Status
bookkeeping goes through the ledger, margin questions through `Margin`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hip3.sim import rules, texts
from hip3.sim.accounts import ZERO, Account, apply_fill
from hip3.sim.address_budget import AddressBudget
from hip3.sim.book import Order
from hip3.sim.events import BookChanged, CtxChanged, PendingEvents
from hip3.sim.ledger import OrderLedger
from hip3.sim.margin import Margin
from hip3.sim.market import Markets
from hip3.sim.universe import Asset, Universe
from hip3.sim.wire import OrderWire

DEFAULT_REJECT_MESSAGE = texts.INJECTED_REJECT
# The reference-price band as a ratio of the oracle (see reference_price_problem).
BAND_LOW = Decimal("0.2")
BAND_HIGH = Decimal(5)


class Matcher:
    def __init__(
        self,
        universe: Universe,
        markets: Markets,
        accounts: dict[str, Account],
        ledger: OrderLedger,
        margin: Margin,
        *,
        emit: Callable[[object], None],
        clock_ms: Callable[[], int],
    ) -> None:
        self._universe = universe
        self._markets = markets
        self._books = markets.books
        self._accounts = accounts
        self._ledger = ledger
        self._margin = margin
        self._emit = emit
        self._clock = clock_ms
        self._next_tid = 1
        self._reject_next = 0
        self._reject_message = DEFAULT_REJECT_MESSAGE
        self._internal_hashes = 0
        self._maker_quotes: dict[tuple[str, str], list[Order]] = {}  # (maker, coin) -> resting

    # ------------------------------------------------------------------ faults

    def reject_next_orders(self, n: int, message: str = DEFAULT_REJECT_MESSAGE) -> None:
        self._reject_next = max(0, int(n))
        self._reject_message = message

    # ------------------------------------------------------------------ user orders

    def reference_price_problem(self, wires: list[OrderWire]) -> str | None:
        """The whole-batch refusal of an order priced too far from its market's reference.

        The exchange refuses such a batch before executing any of it, with one answer and no
        asset suffix. The band is not published for perps; the simulator takes the one measured
        on testnet (0.2x < price <= 5x the reference) and the oracle as the reference."""
        for wire in wires:
            asset = self._universe.listed_asset(wire.asset)
            if asset is None or wire.px <= 0:
                continue  # answered per order: unknown asset, tick
            reference = self._markets.oracle[asset.coin]
            if not (reference * BAND_LOW < wire.px <= reference * BAND_HIGH):
                return texts.REFERENCE_PRICE
        return None

    def place(
        self,
        account: Account,
        wire: OrderWire,
        now: int,
        pending: PendingEvents,
        tx_hash: str,
        priority: int = 0,
    ) -> dict[str, Any]:
        """One order of an order action; returns its entry of `statuses`. `priority` is the
        rate a resting order paid to go ahead of its level's recent orders."""
        asset = self._universe.listed_asset(wire.asset)
        if asset is None:
            return {"error": texts.UNKNOWN_ASSET.format(asset=wire.asset)}
        if wire.tif is None:
            return {"error": texts.TRIGGER_UNSUPPORTED}
        if asset.coin in self._markets.halted:
            return {"error": texts.MARKET_HALTED.format(coin=asset.coin)}
        px, sz = wire.px, wire.sz
        order = self._ledger.new_order(
            account,
            asset,
            wire.is_buy,
            px,
            sz,
            wire.tif,
            wire.reduce_only,
            wire.cloid,
            now,
            priority,
        )
        return self.execute(account, asset, order, now, pending, tx_hash)

    def execute(
        self,
        account: Account,
        asset: Asset,
        order: Order,
        now: int,
        pending: PendingEvents,
        tx_hash: str,
    ) -> dict[str, Any]:
        """Check, match and rest or finish a new order (placed, or a trigger that fired)."""
        px = order.limit_px
        rejection = self._pre_trade_check(account, asset, order)
        if rejection is not None:
            text, status = rejection
            self._ledger.record(
                account, order, status, now, pending, index_cloid=status != "rejected"
            )
            return {"error": text}
        position = account.position(asset.coin)
        if order.reduce_only:
            order.sz = min(order.sz, abs(position))
        filled_sz, filled_ntl = self._match(account, asset, order, now, pending, tx_hash)
        if order.tif == "Ioc" and not filled_sz:
            self._ledger.record(account, order, "iocCancelRejected", now, pending)
            return {"error": texts.with_asset(texts.IOC_NO_MATCH, asset.asset_id)}
        if order.sz and order.tif != "Ioc":
            self._ledger.rest(account, order, pending, notify=True)
            pending.books[asset.coin] = None
            return {"resting": _with_cloid({"oid": order.oid}, order.cloid)}
        status = "filled" if not order.sz else "canceled"
        self._ledger.record(account, order, status, now, pending)
        pending.books[asset.coin] = None
        avg_px = rules.round_price(asset, filled_ntl / filled_sz) if filled_sz else px
        body = {"totalSz": rules.wire(filled_sz), "avgPx": rules.wire(avg_px), "oid": order.oid}
        return {"filled": _with_cloid(body, order.cloid)}

    def _pre_trade_check(
        self, account: Account, asset: Asset, order: Order
    ) -> tuple[str, str] | None:
        """(error text, order status) for the first rule the order breaks, else None."""
        if self._reject_next > 0:
            self._reject_next -= 1
            return self._reject_message, "rejected"
        asset_id = asset.asset_id
        if order.limit_px <= 0 or not rules.price_is_valid(asset, order.limit_px):
            return texts.with_asset(texts.TICK, asset_id), "tickRejected"
        if not order.sz:
            return texts.ZERO_SIZE, "rejected"
        if not rules.size_is_valid(asset, order.sz):
            return texts.INVALID_SIZE, "rejected"
        # Reduce-only orders are exempt so that a dust position can always be closed.
        if not order.reduce_only and order.limit_px * order.sz < rules.MIN_NOTIONAL:
            return texts.with_asset(texts.MIN_NOTIONAL, asset_id), "minTradeNtlRejected"
        if order.cloid is not None and order.cloid in account.open_cloids:
            return texts.DUPLICATE_CLOID.format(cloid=order.cloid), "rejected"
        position = account.position(asset.coin)
        if order.reduce_only and (not position or (position > 0) == order.is_buy):
            return texts.with_asset(texts.REDUCE_ONLY, asset_id), "reduceOnlyRejected"
        book = self._books[asset.coin]
        if order.tif == "Alo":
            best_bid, best_ask = book.best_bid(), book.best_ask()
            crosses = (
                best_ask is not None and order.limit_px >= best_ask
                if order.is_buy
                else best_bid is not None and order.limit_px <= best_bid
            )
            if crosses:
                bbo = f"{_px_or_none(best_bid)}@{_px_or_none(best_ask)}"
                text = texts.with_asset(texts.ALO_WOULD_CROSS.format(bbo=bbo), asset_id)
                return text, "badAloPxRejected"
        if not order.reduce_only:
            required = self._margin.order_margin(
                account, asset, order.is_buy, order.sz, order.limit_px
            )
            if required > self._margin.available(account, asset.dex):
                return texts.with_asset(texts.MARGIN, asset_id), "perpMarginRejected"
            order.margin = required
        return None

    # ------------------------------------------------------------------ simulated makers

    def replace_quotes(
        self,
        coin: str,
        maker: str,
        bids: list[tuple[Decimal, Decimal]],
        asks: list[tuple[Decimal, Decimal]],
        now: int | None = None,
    ) -> None:
        """Swap all of `maker`'s quotes on `coin` for new ones; crossing quotes trade. `now`
        is the quotes' time (the exchange clock's when None).

        This runs for every maker re-quote of `hip3 sim` and for every recorded book update a
        backtest replays, so its common case is kept short: a quote that crosses nothing goes
        straight onto the book, and the call's event batch is only made once a quote trades
        (without a trade, the book and the context of `coin` are all that changed)."""
        asset = self._universe.asset(coin)
        if coin in self._markets.halted:
            return
        account = self._accounts.get(maker)
        if account is None:
            account = self._accounts[maker] = Account(address=maker, internal=True)
        elif not account.internal:
            raise ValueError(f"{maker} is a user account, not a simulated maker")
        book = self._books[coin]
        ledger = self._ledger
        # Only this method places a maker's orders, so the ones it placed last time on this
        # coin are all it has there (minus any that filled since), without a scan of them all.
        ledger.withdraw_quotes(account, self._maker_quotes.pop((maker, coin), ()))
        if now is None:
            now = self._clock()
        lot = self._markets.lots[coin]
        pending: PendingEvents | None = None
        placed: list[Order] = []
        for is_buy, quotes in ((True, bids), (False, asks)):
            for px, sz in quotes:
                px = rules.round_price(asset, Decimal(px))
                sz = Decimal(sz).quantize(lot)
                if sz <= ZERO:  # a Decimal, not 0: no int to convert on every quote
                    continue
                order = ledger.new_order(account, asset, is_buy, px, sz, "Gtc", False, None, now)
                if book.crosses(is_buy, px):  # the hash is only worth making for a trade
                    if pending is None:
                        pending = PendingEvents()
                    self._match(account, asset, order, now, pending, self._internal_hash())
                    if not order.sz:
                        continue
                ledger.rest_quote(account, order)
                placed.append(order)
        self._maker_quotes[(maker, coin)] = placed
        if pending is None:
            # What flushing an otherwise empty batch would emit, in the same order.
            self._emit(BookChanged(coin))
            self._emit(CtxChanged(coin))
            return
        pending.books[coin] = None
        pending.ctxs[coin] = None
        pending.flush(self._emit)

    # ------------------------------------------------------------------ deployer halt

    def halt(self, coin: str) -> None:
        """Cancel every order on `coin`, settle positions at mark, refuse orders from now on."""
        self._universe.asset(coin)
        markets = self._markets
        pending = PendingEvents()
        now = self._clock()
        for order in self._books[coin].all_orders():
            account = self._accounts[order.user]
            self._ledger.cancel(account, order, "canceled", now, pending)
            if not account.internal:
                pending.non_user_cancels.setdefault(account.address, []).append(
                    {"coin": coin, "oid": order.oid}
                )
        mark = markets.mark_px(coin)
        for account in self._accounts.values():
            position = account.positions.pop(coin, None)
            if position is None:
                continue
            pnl = position.szi * (mark - position.entry_px)
            account.balances[position.dex] = account.balance(position.dex) + pnl
        markets.open_interest[coin] = ZERO
        markets.halted.add(coin)
        pending.books[coin] = None
        pending.ctxs[coin] = None
        pending.flush(self._emit)

    # ------------------------------------------------------------------ matching

    def _match(
        self,
        taker: Account,
        asset: Asset,
        order: Order,
        now: int,
        pending: PendingEvents,
        tx_hash: str,
    ) -> tuple[Decimal, Decimal]:
        """Trade `order` against the book; returns (filled size, filled notional)."""
        book = self._books[asset.coin]
        ledger = self._ledger
        filled_sz = ZERO
        filled_ntl = ZERO
        for px, level in book.crossing_levels(order.is_buy, order.limit_px):
            for maker_order in list(level.orders.values()):
                if not order.sz:
                    break
                maker = self._accounts[maker_order.user]
                if maker is taker:  # self-trade prevention: expire the resting order
                    ledger.remove_open(maker, maker_order)
                    ledger.record(maker, maker_order, "selfTradeCanceled", now, pending)
                    continue
                take = min(order.sz, maker_order.sz)
                if maker_order.reduce_only:
                    take = min(take, abs(maker.position(asset.coin)))
                if take:
                    self._trade(taker, order, maker, maker_order, px, take, now, pending, tx_hash)
                    filled_sz += take
                    filled_ntl += take * px
                if maker_order.sz and (
                    not take or (maker_order.reduce_only and not maker.position(asset.coin))
                ):
                    ledger.remove_open(maker, maker_order)
                    ledger.record(maker, maker_order, "reduceOnlyCanceled", now, pending)
            if not order.sz:
                break
        if filled_sz:
            pending.books[asset.coin] = None
            pending.ctxs[asset.coin] = None
        return filled_sz, filled_ntl

    def _trade(
        self,
        taker: Account,
        taker_order: Order,
        maker: Account,
        maker_order: Order,
        px: Decimal,
        sz: Decimal,
        now: int,
        pending: PendingEvents,
        tx_hash: str,
    ) -> None:
        asset = self._universe.by_coin[taker_order.coin]
        multiplier = self._markets.fee_multipliers[asset.coin]
        fee_token = self._universe.by_dex_name[asset.dex].collateral.name
        notional = px * sz
        tid = self._next_tid
        self._next_tid += 1
        long_before = _long(taker, asset.coin) + _long(maker, asset.coin)
        # The resting order's book entry shrinks first so the level stays consistent.
        before = maker_order.sz
        self._books[asset.coin].reduce(maker_order, sz)
        if maker_order.margin:
            maker.order_margin[asset.dex] -= maker_order.margin * sz / before
            maker_order.margin -= maker_order.margin * sz / before
        taker_order.sz -= sz
        for account, order, crossed, rate in (
            (taker, taker_order, True, rules.BASE_TAKER_RATE),
            (maker, maker_order, False, rules.BASE_MAKER_RATE),
        ):
            fee = rules.usdc(notional * rate * multiplier)
            start, direction, closed = apply_fill(
                account, asset.coin, asset.dex, order.is_buy, px, sz, fee
            )
            AddressBudget.add_volume(account, notional, asset.growth_mode)
            if account.internal:  # simulated makers have no user streams and keep no fills
                continue
            fill = {
                "coin": asset.coin,
                "px": rules.wire(px),
                "sz": rules.wire(sz),
                "side": order.side,
                "time": now,
                "startPosition": rules.wire(start),
                "dir": direction,
                "closedPnl": rules.wire(rules.usdc(closed)),
                "hash": tx_hash,
                "oid": order.oid,
                "crossed": crossed,
                "fee": rules.wire(fee),
                "tid": tid,
                "feeToken": fee_token,
            }
            if order.cloid is not None:
                fill["cloid"] = order.cloid
            account.fills.append(fill)
            pending.fills.setdefault(account.address, []).append(fill)
        if not maker_order.sz:
            del maker.open_orders[maker_order.oid]
            if maker_order.cloid is not None:
                maker.open_cloids.pop(maker_order.cloid, None)
            self._ledger.record(maker, maker_order, "filled", now, pending)
        long_after = _long(taker, asset.coin) + _long(maker, asset.coin)
        self._markets.record_trade(asset.coin, px, sz, long_after - long_before, now)
        buyer, seller = (taker, maker) if taker_order.is_buy else (maker, taker)
        pending.trades.setdefault(asset.coin, []).append(
            {
                "coin": asset.coin,
                "side": taker_order.side,
                "px": rules.wire(px),
                "sz": rules.wire(sz),
                "hash": tx_hash,
                "time": now,
                "tid": tid,
                "users": [buyer.address, seller.address],
            }
        )

    def internal_hash(self) -> str:
        """A made-up transaction hash for trades no signed action caused (makers, triggers)."""
        return self._internal_hash()

    def _internal_hash(self) -> str:
        self._internal_hashes += 1
        return "0x" + hashlib.sha256(f"sim-maker:{self._internal_hashes}".encode()).hexdigest()


def _with_cloid(body: dict[str, Any], cloid: str | None) -> dict[str, Any]:
    if cloid is not None:
        body["cloid"] = cloid
    return body


def _px_or_none(px: Decimal | None) -> str:
    return rules.wire(px) if px is not None else "None"


def _long(account: Account, coin: str) -> Decimal:
    szi = account.position(coin)
    return szi if szi > 0 else ZERO
