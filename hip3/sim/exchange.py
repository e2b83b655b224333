"""The simulated exchange core: accounts, books, matching, fees, signed actions, info.

It knows nothing of sockets. The server hands it /info and /exchange bodies (already parsed
JSON, dict order preserved: the action hash depends on it) and forwards the events it emits.
Every public entry point turns bad input into an error value; nothing raises into a loop.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from eth_account import Account as EthAccount

from hip3.sim import info as info_requests
from hip3.sim import rules
from hip3.sim.accounts import ZERO, Account, Leverage, apply_fill
from hip3.sim.book import Book, Order
from hip3.sim.events import (
    BookChanged,
    CtxChanged,
    OrderUpdates,
    Trades,
    UserEvent,
    UserFills,
)
from hip3.sim.nonces import NonceSet
from hip3.sim.signatures import L1Verifier, SignatureError, action_hash, recover_approve_agent
from hip3.sim.universe import Asset, Universe
from hip3.sim.wire import (
    ActionError,
    OrderWire,
    address,
    batch,
    malformed,
    optional_address,
    order_wire,
    require,
    require_int,
)
from hip3.sim.wire import cloid as parse_cloid

log = logging.getLogger(__name__)

InfoError = info_requests.InfoError

SCHEDULE_CANCEL_MIN_LEAD_MS = 5000
SCHEDULE_CANCEL_TRIGGERS_PER_DAY = 10
DAY_MS = 24 * 3600 * 1000
HOUR_MS = 3600 * 1000
MAX_STATUS_HISTORY = 200_000
MAX_NAMED_AGENTS = 3
DEFAULT_LEVERAGE = 20
FUNDING_INTEREST = Decimal("0.0000125")
FUNDING_CAP = Decimal("0.04")
DEFAULT_REJECT_MESSAGE = "Order rejected: injected fault."


class _Pending:
    """Events of one entry-point call, grouped per user/coin and emitted together at the end."""

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


class Exchange:
    def __init__(
        self,
        universe: Universe,
        *,
        clock_ms: Callable[[], int],
        emit: Callable[[object], None],
        seed: int = 7,
        source: str = "b",
        funding: bool = True,
    ) -> None:
        if source not in ("a", "b"):
            raise ValueError('source must be "a" (mainnet-like) or "b" (testnet-like)')
        self.universe = universe
        self.seed = seed
        self.network = "Mainnet" if source == "a" else "Testnet"
        self.funding_enabled = funding
        self._clock = clock_ms
        self._emit = emit
        self._verifier = L1Verifier(source)
        self.accounts: dict[str, Account] = {}
        self.agents: dict[str, tuple[str, str, int | None]] = {}  # agent -> (user, name, until)
        self._agent_nonces: dict[str, NonceSet] = {}
        self.books: dict[str, Book] = {a.coin: Book(a.coin) for a in universe.assets}
        self.oracle: dict[str, Decimal] = {a.coin: a.start_px for a in universe.assets}
        self.prev_day_px: dict[str, Decimal] = dict(self.oracle)
        self.last_trade_px: dict[str, Decimal] = {}
        self.open_interest: dict[str, Decimal] = {a.coin: ZERO for a in universe.assets}
        self.day_ntl_vlm: dict[str, Decimal] = {a.coin: ZERO for a in universe.assets}
        self.day_base_vlm: dict[str, Decimal] = {a.coin: ZERO for a in universe.assets}
        self.halted: set[str] = set()
        self._status: OrderedDict[int, tuple[Order, str, int]] = OrderedDict()
        self._cloid_oids: dict[tuple[str, str], int] = {}
        self._scheduled: dict[str, int] = {}
        self._next_oid = 1_000_000
        self._next_tid = 1
        self._reject_next = 0
        self._reject_message = DEFAULT_REJECT_MESSAGE
        self._accounts_made = 0
        self._internal_hashes = 0
        self._maker_quotes: dict[tuple[str, str], list[Order]] = {}  # (maker, coin) -> resting
        self._lots = {a.coin: Decimal(1).scaleb(-a.sz_decimals) for a in universe.assets}
        self._fee_multipliers = {
            a.coin: rules.hip3_fee_multiplier(a, universe.dexes[a.dex_index].fee_scale)
            for a in universe.assets
        }
        self._last_funding_hour: int | None = None

    # ----------------------------------------------------------------- accounts and control

    def fund(self, user: str, usdc: Decimal, dex: str = "") -> None:
        user = address(user, "user")
        self.universe.dex(dex)
        amount = Decimal(usdc)
        if not amount.is_finite() or amount < 0:
            raise ValueError("funding amount must be a non-negative finite decimal")
        if user in self.agents:
            raise ValueError(f"{user} is an API wallet and cannot hold funds")
        account = self._account(user)
        account.balances[dex] = account.balance(dex) + amount

    def new_account(self, usdc: Decimal) -> tuple[str, str]:
        """A funded account whose key derives from the seed: same seed, same accounts."""
        self._accounts_made += 1
        material = f"hip3-sim-account:{self.seed}:{self._accounts_made}".encode()
        private_key = "0x" + hashlib.sha256(material).hexdigest()
        user = EthAccount.from_key(private_key).address.lower()
        for dex in self.universe.dexes:
            self.fund(user, usdc, dex.name)
        return user, private_key

    def reject_next_orders(self, n: int, message: str = DEFAULT_REJECT_MESSAGE) -> None:
        self._reject_next = max(0, int(n))
        self._reject_message = message

    def positions(self, user: str) -> dict[str, Decimal]:
        account = self.accounts.get(user.lower())
        if account is None:
            return {}
        return {coin: p.szi for coin, p in account.positions.items()}

    def open_orders(self, user: str) -> list[dict[str, Any]]:
        account = self.accounts.get(user.lower())
        if account is None:
            return []
        return [info_requests.open_order_wire(o) for o in account.open_orders.values()]

    def user_fills(self, user: str, limit: int = 2000) -> list[dict[str, Any]]:
        """Most recent fills, newest first (as info userFills)."""
        account = self.accounts.get(user.lower())
        if account is None:
            return []
        fills = list(account.fills)
        fills.reverse()
        return fills[: max(0, limit)]

    # ------------------------------------------------------------------ market data

    def set_oracle(self, coin: str, px: Decimal) -> None:
        asset = self.universe.asset(coin)
        value = Decimal(px)
        if not value.is_finite() or value <= 0:
            raise ValueError(f"oracle price for {coin} must be positive, got {px}")
        self.oracle[coin] = rules.round_price(asset, value)
        self._emit(CtxChanged(coin))

    def replace_maker_quotes(
        self,
        coin: str,
        maker: str,
        bids: list[tuple[Decimal, Decimal]],
        asks: list[tuple[Decimal, Decimal]],
    ) -> None:
        """Swap all of `maker`'s quotes on `coin` for new ones; crossing quotes trade."""
        asset = self.universe.asset(coin)
        if coin in self.halted:
            return
        account = self.accounts.get(maker)
        if account is None:
            account = self.accounts[maker] = Account(address=maker, internal=True)
        elif not account.internal:
            raise ValueError(f"{maker} is a user account, not a simulated maker")
        pending = _Pending()
        book = self.books[coin]
        open_orders = account.open_orders
        # Only this method places a maker's orders, so the ones it placed last time on this
        # coin are all it has there (minus any that filled since), without a scan of them all.
        for order in self._maker_quotes.pop((maker, coin), ()):
            if open_orders.get(order.oid) is order:
                book.remove(order)
                del open_orders[order.oid]
        now = self._clock()
        lot = self._lots[coin]
        placed: list[Order] = []
        quotes = [(True, px, sz) for px, sz in bids] + [(False, px, sz) for px, sz in asks]
        for is_buy, px, sz in quotes:
            px = rules.round_price(asset, Decimal(px))
            sz = Decimal(sz).quantize(lot)
            if sz <= 0:
                continue
            order = self._new_order(account, asset, is_buy, px, sz, "Gtc", False, None, now)
            if book.crosses(is_buy, px):  # the hash is only worth making for a trade
                self._match(account, asset, order, now, pending, self._internal_hash())
            if order.sz:
                self._rest(account, order, pending, notify=False)
                placed.append(order)
        self._maker_quotes[(maker, coin)] = placed
        pending.books[coin] = None
        pending.ctxs[coin] = None
        pending.flush(self._emit)

    def mark_px(self, coin: str) -> Decimal:
        """Median of oracle, best bid and best ask: the oracle clamped into the spread."""
        oracle = self.oracle[coin]
        book = self.books[coin]
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return oracle
        return sorted((oracle, bid, ask))[1]

    def mid_px(self, coin: str) -> Decimal | None:
        book = self.books[coin]
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return None
        return rules.round_price(self.universe.by_coin[coin], (bid + ask) / 2)

    def funding_rate(self, coin: str) -> tuple[Decimal, Decimal]:
        """(hourly funding rate, premium) from the book's mid against the oracle."""
        mid = self.mid_px(coin)
        oracle = self.oracle[coin]
        premium = ZERO if mid is None else (mid - oracle) / oracle
        rate = premium / 8 + FUNDING_INTEREST
        rate = max(-FUNDING_CAP, min(FUNDING_CAP, rate))
        return rate.quantize(Decimal("0.00000001")), premium.quantize(Decimal("0.000001"))

    def bbo(self, coin: str) -> dict[str, Any]:
        self.universe.asset(coin)
        book = self.books[coin]
        bids, asks = book.depth(True, 1), book.depth(False, 1)
        return {
            "coin": coin,
            "time": self._clock(),
            "bbo": [
                info_requests.level_wire(bids[0]) if bids else None,
                info_requests.level_wire(asks[0]) if asks else None,
            ],
        }

    def l2_book(self, coin: str, depth: int = 20) -> dict[str, Any]:
        self.universe.asset(coin)
        book = self.books[coin]
        depth = max(0, min(depth, 20))
        return {
            "coin": coin,
            "time": self._clock(),
            "levels": [
                [info_requests.level_wire(level) for level in book.depth(True, depth)],
                [info_requests.level_wire(level) for level in book.depth(False, depth)],
            ],
        }

    def asset_ctx(self, coin: str) -> dict[str, Any]:
        self.universe.asset(coin)
        return {"coin": coin, "ctx": info_requests.perp_ctx(self, coin)}

    # ------------------------------------------------------------------ time and faults

    def tick(self, now_ms: int) -> None:
        """Fire due scheduleCancel deadlines and pay funding on the hour."""
        due = [user for user, deadline in self._scheduled.items() if deadline <= now_ms]
        for user in due:
            self._fire_scheduled_cancel(user, now_ms)
        if self.funding_enabled:
            hour = now_ms // HOUR_MS
            if self._last_funding_hour is None:
                self._last_funding_hour = hour
            elif hour > self._last_funding_hour:
                self._last_funding_hour = hour
                self._pay_funding(hour * HOUR_MS)

    def halt_market(self, coin: str) -> None:
        """Deployer halt: cancel every order on `coin`, settle positions at mark, refuse orders."""
        self.universe.asset(coin)
        pending = _Pending()
        now = self._clock()
        book = self.books[coin]
        for order in book.all_orders():
            account = self.accounts[order.user]
            self._remove_open(account, order)
            self._record(account, order, "canceled", now, pending)
            if not account.internal:
                pending.non_user_cancels.setdefault(account.address, []).append(
                    {"coin": coin, "oid": order.oid}
                )
        mark = self.mark_px(coin)
        for account in self.accounts.values():
            position = account.positions.pop(coin, None)
            if position is None:
                continue
            pnl = position.szi * (mark - position.entry_px)
            account.balances[position.dex] = account.balance(position.dex) + pnl
        self.open_interest[coin] = ZERO
        self.halted.add(coin)
        pending.books[coin] = None
        pending.ctxs[coin] = None
        pending.flush(self._emit)

    def resume_market(self, coin: str) -> None:
        self.universe.asset(coin)
        self.halted.discard(coin)
        self._emit(CtxChanged(coin))

    # ------------------------------------------------------------------ /info

    def info(self, payload: dict[str, Any]) -> object:
        return info_requests.handle(self, payload)

    # ------------------------------------------------------------------ /exchange

    def action(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._action(payload)
        except ActionError as error:
            return {"status": "err", "response": str(error)}
        except Exception:  # a bug here must not take the server loop down
            log.exception("simulator failed on an action")
            return {"status": "err", "response": "Internal simulator error; action not applied."}

    def _action(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise malformed("body", "must be an object {action, nonce, signature}")
        action = require(payload, "action", dict, "body")
        kind = require(action, "type", str, "action")
        nonce = require_int(payload, "nonce", "body")
        signature = require(payload, "signature", dict, "body")
        vault = optional_address(payload.get("vaultAddress"), "body.vaultAddress")
        expires_after = payload.get("expiresAfter")
        if expires_after is not None:
            expires_after = require_int(payload, "expiresAfter", "body")
        now = self._clock()
        if kind == "approveAgent":
            return self._approve_agent(action, nonce, signature, expires_after, vault, now)
        handler = self._L1_HANDLERS.get(kind)
        if handler is None:
            raise malformed("action.type", f"{kind!r} is not an action this exchange supports")
        parsed = handler[0](self, action)
        connection_id = action_hash(action, nonce, vault, expires_after)
        try:
            signer = self._verifier.recover(connection_id, signature)
        except SignatureError as error:
            raise ActionError(str(error)) from None
        user, nonces = self._resolve_signer(signer, now)
        if vault is not None:
            raise ActionError(f"Vault or sub-account {vault} does not exist.")
        if expires_after is not None and expires_after < now:
            raise ActionError(f"Action already expired: expiresAfter {expires_after} < {now}")
        problem = nonces.check(nonce, now)
        if problem:
            raise ActionError(problem)
        nonces.use(nonce)
        pending = _Pending()
        try:
            return handler[1](self, user, parsed, now, pending, "0x" + connection_id.hex())
        finally:
            pending.flush(self._emit)

    def _resolve_signer(self, signer: str, now: int) -> tuple[Account, NonceSet]:
        account = self.accounts.get(signer)
        if account is not None and not account.internal:
            return account, account.nonces
        agent = self.agents.get(signer)
        if agent is not None and (agent[2] is None or agent[2] > now):
            return self.accounts[agent[0]], self._agent_nonces[signer]
        raise ActionError(f"L1 error: User or API Wallet {signer} does not exist.")

    # --- approveAgent (user-signed)

    def _approve_agent(
        self,
        action: dict[str, Any],
        nonce: int,
        signature: dict[str, Any],
        expires_after: int | None,
        vault: str | None,
        now: int,
    ) -> dict[str, Any]:
        chain_id = require(action, "signatureChainId", str, "action")
        try:
            int(chain_id, 16)
        except ValueError:
            raise malformed("action.signatureChainId", "must be a hex chain id") from None
        chain = require(action, "hyperliquidChain", str, "action")
        agent = address(require(action, "agentAddress", str, "action"), "action.agentAddress")
        name = action.get("agentName", "")
        if not isinstance(name, str):
            raise malformed("action.agentName", "must be a string")
        action_nonce = require_int(action, "nonce", "action")
        if expires_after is not None:
            raise ActionError("expiresAfter is not supported for user-signed actions.")
        if vault is not None:
            raise ActionError("vaultAddress is not supported for approveAgent.")
        try:
            signer = recover_approve_agent(action, signature)
        except SignatureError as error:
            raise ActionError(str(error)) from None
        account = self.accounts.get(signer)
        if account is None or account.internal:
            raise ActionError(f"L1 error: User or API Wallet {signer} does not exist.")
        if chain != self.network:
            raise ActionError(
                f"Invalid hyperliquidChain {chain!r}: this network is {self.network!r}."
            )
        if action_nonce != nonce:
            raise ActionError(f"Action nonce {action_nonce} does not match request nonce {nonce}.")
        problem = account.nonces.check(nonce, now)
        if problem:
            raise ActionError(problem)
        if agent in self.accounts:
            raise ActionError(f"Agent address {agent} is already used by a user.")
        existing = self.agents.get(agent)
        if existing is not None and existing[0] != signer:
            raise ActionError(f"Agent address {agent} is already approved by another user.")
        base_name, valid_until = _split_agent_name(name, now)
        same_slot = [a for a, (u, n, _) in self.agents.items() if u == signer and n == base_name]
        named = {n for a, (u, n, _) in self.agents.items() if u == signer and n}
        if base_name and base_name not in named and len(named) >= MAX_NAMED_AGENTS:
            raise ActionError(f"Too many named agents: at most {MAX_NAMED_AGENTS} per account.")
        account.nonces.use(nonce)
        for old in same_slot:  # re-registering a slot deregisters the previous agent
            del self.agents[old]
            self._agent_nonces.pop(old, None)
        self.agents[agent] = (signer, base_name, valid_until)
        self._agent_nonces[agent] = NonceSet()
        return {"status": "ok", "response": {"type": "default"}}

    # --- order

    def _parse_order(self, action: dict[str, Any]) -> list[OrderWire]:
        orders = [
            order_wire(raw, f"action.orders[{i}]") for i, raw in enumerate(batch(action, "orders"))
        ]
        grouping = action.get("grouping", "na")
        if grouping != "na":
            raise malformed("action.grouping", f'{grouping!r} is not supported (only "na")')
        if "builder" in action:
            builder = require(action, "builder", dict, "action")
            address(require(builder, "b", str, "action.builder"), "action.builder.b")
            require_int(builder, "f", "action.builder")
        return orders

    def _do_order(
        self,
        account: Account,
        orders: list[OrderWire],
        now: int,
        pending: _Pending,
        tx_hash: str,
    ) -> dict[str, Any]:
        statuses = [self._place(account, wire, now, pending, tx_hash) for wire in orders]
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}

    def _place(
        self, account: Account, wire: OrderWire, now: int, pending: _Pending, tx_hash: str
    ) -> dict[str, Any]:
        asset = self.universe.by_asset_id.get(wire.asset)
        if asset is None:
            return {"error": f"Asset {wire.asset} does not exist on this exchange."}
        if wire.tif is None:
            return {"error": "Trigger orders are not supported by the simulator."}
        if asset.coin in self.halted:
            return {"error": f"Trading is halted for {asset.coin}."}
        px = wire.px if wire.px is not None else Decimal(0)
        sz = wire.sz if wire.sz is not None else Decimal(0)
        order = self._new_order(
            account, asset, wire.is_buy, px, sz, wire.tif, wire.reduce_only, wire.cloid, now
        )
        rejection = self._pre_trade_check(account, asset, order)
        if rejection is not None:
            text, status = rejection
            self._record(account, order, status, now, pending, index_cloid=status != "rejected")
            return {"error": text}
        book = self.books[asset.coin]
        position = account.position(asset.coin)
        if order.reduce_only:
            order.sz = min(order.sz, abs(position))
        filled_sz, filled_ntl = self._match(account, asset, order, now, pending, tx_hash)
        if order.tif == "Ioc" and not filled_sz:
            self._record(account, order, "iocCancelRejected", now, pending)
            return {"error": rules.ERR_IOC}
        if order.sz and order.tif != "Ioc":
            self._rest(account, order, pending, notify=True)
            pending.books[asset.coin] = None
            return {"resting": _with_cloid({"oid": order.oid}, order.cloid)}
        status = "filled" if not order.sz else "canceled"
        self._record(account, order, status, now, pending)
        if book is not None:
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
        if order.limit_px <= 0 or not rules.price_is_valid(asset, order.limit_px):
            return rules.ERR_TICK, "tickRejected"
        if not rules.size_is_valid(asset, order.sz):
            return rules.ERR_SIZE, "rejected"
        # Reduce-only orders are exempt so that a dust position can always be closed.
        if not order.reduce_only and order.limit_px * order.sz < rules.MIN_NOTIONAL:
            return rules.ERR_MIN_NOTIONAL, "minTradeNtlRejected"
        if order.cloid is not None and order.cloid in account.open_cloids:
            return f"Duplicate cloid: an open order already uses {order.cloid}.", "rejected"
        position = account.position(asset.coin)
        if order.reduce_only and (not position or (position > 0) == order.is_buy):
            return rules.ERR_REDUCE_ONLY, "reduceOnlyRejected"
        book = self.books[asset.coin]
        if order.tif == "Alo":
            best_bid, best_ask = book.best_bid(), book.best_ask()
            crosses = (
                best_ask is not None and order.limit_px >= best_ask
                if order.is_buy
                else best_bid is not None and order.limit_px <= best_bid
            )
            if crosses:
                bbo = f"{_px_or_none(best_bid)}@{_px_or_none(best_ask)}"
                text = f"Post only order would have immediately matched, bbo was {bbo}."
                return text, "badAloPxRejected"
        if not order.reduce_only:
            required = self._order_margin(account, asset, order.is_buy, order.sz, order.limit_px)
            if required > self.available_margin(account, asset.dex):
                return rules.ERR_MARGIN, "perpMarginRejected"
            order.margin = required
        return None

    # --- matching

    def _match(
        self,
        taker: Account,
        asset: Asset,
        order: Order,
        now: int,
        pending: _Pending,
        tx_hash: str,
    ) -> tuple[Decimal, Decimal]:
        """Trade `order` against the book; returns (filled size, filled notional)."""
        book = self.books[asset.coin]
        filled_sz = ZERO
        filled_ntl = ZERO
        for px, level in book.crossing_levels(order.is_buy, order.limit_px):
            for maker_order in list(level.orders.values()):
                if not order.sz:
                    break
                maker = self.accounts[maker_order.user]
                if maker is taker:  # self-trade prevention: expire the resting order
                    self._remove_open(maker, maker_order)
                    self._record(maker, maker_order, "selfTradeCanceled", now, pending)
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
                    self._remove_open(maker, maker_order)
                    self._record(maker, maker_order, "reduceOnlyCanceled", now, pending)
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
        pending: _Pending,
        tx_hash: str,
    ) -> None:
        asset = self.universe.by_coin[taker_order.coin]
        multiplier = self._fee_multipliers[asset.coin]
        notional = px * sz
        tid = self._next_tid
        self._next_tid += 1
        long_before = _long(taker, asset.coin) + _long(maker, asset.coin)
        # The resting order's book entry shrinks first so the level stays consistent.
        before = maker_order.sz
        self.books[asset.coin].reduce(maker_order, sz)
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
                "feeToken": "USDC",
            }
            if order.cloid is not None:
                fill["cloid"] = order.cloid
            account.fills.append(fill)
            pending.fills.setdefault(account.address, []).append(fill)
        if not maker_order.sz:
            del maker.open_orders[maker_order.oid]
            if maker_order.cloid is not None:
                maker.open_cloids.pop(maker_order.cloid, None)
            self._record(maker, maker_order, "filled", now, pending)
        long_after = _long(taker, asset.coin) + _long(maker, asset.coin)
        self.open_interest[asset.coin] += long_after - long_before
        self.last_trade_px[asset.coin] = px
        self.day_ntl_vlm[asset.coin] += notional
        self.day_base_vlm[asset.coin] += sz
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

    # --- order bookkeeping

    def _new_order(
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
    ) -> Order:
        oid = self._next_oid
        self._next_oid += 1
        return Order(
            oid=oid,
            user=account.address,
            coin=asset.coin,
            is_buy=is_buy,
            limit_px=px,
            sz=sz,
            orig_sz=sz,
            timestamp=now,
            tif=tif,
            reduce_only=reduce_only,
            cloid=cloid,
        )

    def _rest(self, account: Account, order: Order, pending: _Pending, *, notify: bool) -> None:
        asset = self.universe.by_coin[order.coin]
        if order.margin and order.sz != order.orig_sz:
            order.margin = order.margin * order.sz / order.orig_sz
        self.books[order.coin].add(order)
        account.open_orders[order.oid] = order
        if order.cloid is not None:
            account.open_cloids[order.cloid] = order.oid
        if order.margin:
            account.order_margin[asset.dex] = (
                account.order_margin.get(asset.dex, ZERO) + order.margin
            )
        if notify:
            self._record(account, order, "open", order.timestamp, pending)

    def _remove_open(self, account: Account, order: Order) -> None:
        """Take a resting order off the book and release its margin (no event)."""
        self.books[order.coin].remove(order)
        account.open_orders.pop(order.oid, None)
        if order.cloid is not None and account.open_cloids.get(order.cloid) == order.oid:
            del account.open_cloids[order.cloid]
        if order.margin:
            dex = self.universe.by_coin[order.coin].dex
            account.order_margin[dex] -= order.margin
            order.margin = ZERO

    def _record(
        self,
        account: Account,
        order: Order,
        status: str,
        now: int,
        pending: _Pending,
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
        pending.order_updates.setdefault(account.address, []).append(
            {
                "order": info_requests.basic_order_wire(order),
                "status": status,
                "statusTimestamp": now,
            }
        )

    def order_status(self, user: str, oid: int | str) -> tuple[Order, str, int] | None:
        if isinstance(oid, str):
            found = self._cloid_oids.get((user, oid.lower()))
            if found is None:
                return None
            oid = found
        entry = self._status.get(oid)
        if entry is None or entry[0].user != user:
            return None
        return entry

    # --- margin

    def leverage_of(self, account: Account, asset: Asset) -> Leverage:
        setting = account.leverage.get(asset.coin)
        if setting is None:
            setting = Leverage(
                is_cross=not asset.isolated_only, value=min(DEFAULT_LEVERAGE, asset.max_leverage)
            )
        return setting

    def _order_margin(
        self, account: Account, asset: Asset, is_buy: bool, sz: Decimal, px: Decimal
    ) -> Decimal:
        position = account.position(asset.coin)
        increasing = sz
        if position and (position > 0) != is_buy:
            increasing = max(ZERO, sz - abs(position))
        return increasing * px / self.leverage_of(account, asset).value

    def equity(self, account: Account, dex: str) -> Decimal:
        value = account.balance(dex)
        for position in account.positions.values():
            if position.dex == dex:
                value += position.szi * (self.mark_px(position.coin) - position.entry_px)
        return value

    def position_margin(self, account: Account, dex: str) -> Decimal:
        used = ZERO
        for position in account.positions.values():
            if position.dex == dex:
                asset = self.universe.by_coin[position.coin]
                lev = self.leverage_of(account, asset).value
                used += abs(position.szi) * self.mark_px(position.coin) / lev
        return used

    def available_margin(self, account: Account, dex: str) -> Decimal:
        return (
            self.equity(account, dex)
            - self.position_margin(account, dex)
            - account.order_margin.get(dex, ZERO)
        )

    # --- cancel, cancelByCloid, batchModify, modify

    def _parse_cancel(self, action: dict[str, Any]) -> list[tuple[int, int]]:
        items = batch(action, "cancels")
        parsed = []
        for i, raw in enumerate(items):
            where = f"action.cancels[{i}]"
            if not isinstance(raw, dict):
                raise malformed(where, "must be an object {a, o}")
            parsed.append((require_int(raw, "a", where), require_int(raw, "o", where)))
        _check_fast_flag(action, "f")
        return parsed

    def _parse_cancel_by_cloid(self, action: dict[str, Any]) -> list[tuple[int, str]]:
        items = batch(action, "cancels")
        parsed = []
        for i, raw in enumerate(items):
            where = f"action.cancels[{i}]"
            if not isinstance(raw, dict):
                raise malformed(where, "must be an object {asset, cloid}")
            asset = require_int(raw, "asset", where)
            parsed.append((asset, parse_cloid(require(raw, "cloid", str, where), f"{where}.cloid")))
        _check_fast_flag(action, "f")
        return parsed

    def _do_cancel(
        self, account: Account, cancels: list[tuple[int, int]], now: int, pending: _Pending, _h: str
    ) -> dict[str, Any]:
        statuses = [
            self._cancel_one(account, a, account.open_orders.get(o), now, pending)
            for a, o in cancels
        ]
        return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": statuses}}}

    def _do_cancel_by_cloid(
        self, account: Account, cancels: list[tuple[int, str]], now: int, pending: _Pending, _h: str
    ) -> dict[str, Any]:
        statuses = []
        for asset_id, order_cloid in cancels:
            oid = account.open_cloids.get(order_cloid)
            order = account.open_orders.get(oid) if oid is not None else None
            statuses.append(self._cancel_one(account, asset_id, order, now, pending))
        return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": statuses}}}

    def _cancel_one(
        self, account: Account, asset_id: int, order: Order | None, now: int, pending: _Pending
    ) -> str | dict[str, str]:
        asset = self.universe.by_asset_id.get(asset_id)
        if asset is None:
            return {"error": f"Asset {asset_id} does not exist on this exchange."}
        if order is None or order.coin != asset.coin:
            return {"error": rules.ERR_CANCEL_MISSING}
        self._remove_open(account, order)
        self._record(account, order, "canceled", now, pending)
        pending.books[order.coin] = None
        return "success"

    def _parse_batch_modify(self, action: dict[str, Any]) -> list[tuple[int | str, OrderWire]]:
        items = batch(action, "modifies")
        parsed = []
        for i, raw in enumerate(items):
            where = f"action.modifies[{i}]"
            if not isinstance(raw, dict):
                raise malformed(where, "must be an object {oid, order}")
            parsed.append(_modify_entry(raw, where))
        _check_fast_flag(action, "a")
        return parsed

    def _parse_modify(self, action: dict[str, Any]) -> list[tuple[int | str, OrderWire]]:
        _check_fast_flag(action, "a")
        return [_modify_entry(action, "action")]

    def _do_batch_modify(
        self,
        account: Account,
        modifies: list[tuple[int | str, OrderWire]],
        now: int,
        pending: _Pending,
        tx_hash: str,
    ) -> dict[str, Any]:
        statuses = []
        for target, wire in modifies:
            oid = account.open_cloids.get(target) if isinstance(target, str) else target
            order = account.open_orders.get(oid) if oid is not None else None
            if order is None:
                statuses.append({"error": "Cannot modify canceled or filled order"})
                continue
            self._remove_open(account, order)
            self._record(account, order, "canceled", now, pending)
            pending.books[order.coin] = None
            statuses.append(self._place(account, wire, now, pending, tx_hash))
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}

    # --- scheduleCancel, updateLeverage, noop

    def _parse_schedule_cancel(self, action: dict[str, Any]) -> int | None:
        if "time" not in action or action["time"] is None:
            return None
        return require_int(action, "time", "action")

    def _do_schedule_cancel(
        self, account: Account, deadline: int | None, now: int, pending: _Pending, _h: str
    ) -> dict[str, Any]:
        if deadline is None:
            account.scheduled_cancel_ms = None
            self._scheduled.pop(account.address, None)
            return _default_ok()
        if deadline < now + SCHEDULE_CANCEL_MIN_LEAD_MS:
            raise ActionError(
                "Scheduled cancel time too early, must be at least 5 seconds from now."
            )
        if (
            account.scheduled_cancel_triggers.get(now // DAY_MS, 0)
            >= SCHEDULE_CANCEL_TRIGGERS_PER_DAY
        ):
            raise ActionError("Too many scheduled cancel triggers today: at most 10 per day.")
        account.scheduled_cancel_ms = deadline
        self._scheduled[account.address] = deadline
        return _default_ok()

    def _fire_scheduled_cancel(self, user: str, now: int) -> None:
        del self._scheduled[user]
        account = self.accounts[user]
        account.scheduled_cancel_ms = None
        day = now // DAY_MS
        account.scheduled_cancel_triggers[day] = account.scheduled_cancel_triggers.get(day, 0) + 1
        pending = _Pending()
        for order in list(account.open_orders.values()):
            self._remove_open(account, order)
            self._record(account, order, "scheduledCancel", now, pending)
            pending.books[order.coin] = None
        pending.flush(self._emit)

    def _parse_update_leverage(self, action: dict[str, Any]) -> tuple[Asset, bool, int]:
        asset_id = require_int(action, "asset", "action")
        is_cross = require(action, "isCross", bool, "action")
        leverage = require_int(action, "leverage", "action")
        asset = self.universe.by_asset_id.get(asset_id)
        if asset is None:
            raise ActionError(f"Asset {asset_id} does not exist on this exchange.")
        if not 1 <= leverage <= asset.max_leverage:
            raise ActionError(
                f"Invalid leverage {leverage} for {asset.coin}: must be 1..{asset.max_leverage}."
            )
        if is_cross and asset.isolated_only:
            raise ActionError(f"Cross margin is not allowed for {asset.coin} (isolated only).")
        return asset, is_cross, leverage

    def _do_update_leverage(
        self,
        account: Account,
        parsed: tuple[Asset, bool, int],
        now: int,
        pending: _Pending,
        _h: str,
    ) -> dict[str, Any]:
        asset, is_cross, value = parsed
        previous = account.leverage.get(asset.coin)
        account.leverage[asset.coin] = Leverage(is_cross=is_cross, value=value)
        if self.available_margin(account, asset.dex) < 0:
            if previous is None:
                del account.leverage[asset.coin]
            else:
                account.leverage[asset.coin] = previous
            raise ActionError("Insufficient margin to change leverage.")
        return _default_ok()

    def _parse_noop(self, action: dict[str, Any]) -> None:
        return None

    def _do_noop(
        self, account: Account, _p: None, now: int, pending: _Pending, _h: str
    ) -> dict[str, Any]:
        return _default_ok()

    _L1_HANDLERS: dict[str, tuple[Callable[..., Any], Callable[..., dict[str, Any]]]] = {
        "order": (_parse_order, _do_order),
        "cancel": (_parse_cancel, _do_cancel),
        "cancelByCloid": (_parse_cancel_by_cloid, _do_cancel_by_cloid),
        "batchModify": (_parse_batch_modify, _do_batch_modify),
        "modify": (_parse_modify, _do_batch_modify),
        "scheduleCancel": (_parse_schedule_cancel, _do_schedule_cancel),
        "updateLeverage": (_parse_update_leverage, _do_update_leverage),
        "noop": (_parse_noop, _do_noop),
    }

    # --- funding

    def _pay_funding(self, at_ms: int) -> None:
        rates = {coin: self.funding_rate(coin)[0] for coin in self.books if coin not in self.halted}
        for account in self.accounts.values():
            for position in list(account.positions.values()):
                rate = rates.get(position.coin)
                if rate is None:
                    continue
                payment = rules.usdc(position.szi * self.oracle[position.coin] * rate)
                account.balances[position.dex] = account.balance(position.dex) - payment
                position.cum_funding_all_time += payment
                position.cum_funding_since_open += payment
                if not account.internal and payment:
                    funding = {
                        "time": at_ms,
                        "coin": position.coin,
                        "usdc": rules.wire(-payment),
                        "szi": rules.wire(position.szi),
                        "fundingRate": rules.wire(rate),
                        "nSamples": None,
                    }
                    self._emit(UserEvent(account.address, {"funding": funding}))

    # --- helpers

    def _account(self, user: str) -> Account:
        account = self.accounts.get(user)
        if account is None:
            account = self.accounts[user] = Account(address=user)
        return account

    def _internal_hash(self) -> str:
        self._internal_hashes += 1
        return "0x" + hashlib.sha256(f"sim-maker:{self._internal_hashes}".encode()).hexdigest()


def _modify_entry(raw: dict[str, Any], where: str) -> tuple[int | str, OrderWire]:
    if "oid" not in raw:
        raise malformed(where, "is missing field 'oid'")
    target = raw["oid"]
    if isinstance(target, str):
        target = parse_cloid(target, f"{where}.oid")
    elif isinstance(target, bool) or not isinstance(target, int):
        raise malformed(f"{where}.oid", "must be an integer oid or a cloid string")
    return target, order_wire(require(raw, "order", dict, where), f"{where}.order")


def _check_fast_flag(action: dict[str, Any], key: str) -> None:
    # The exchange rejects a fast/always flag that is present but false (protocol.md §4.2).
    if key in action and action[key] is not True:
        raise malformed(f"action.{key}", "must be omitted or true")


def _split_agent_name(name: str, now: int) -> tuple[str, int | None]:
    base, marker, until = name.partition(" valid_until ")
    if not marker:
        return name, None
    try:
        valid_until = int(until)
    except ValueError:
        raise malformed("action.agentName", "has a valid_until that is not an integer") from None
    if valid_until <= now or valid_until > now + 180 * DAY_MS:
        raise ActionError("Agent valid_until must be in the future and at most 180 days ahead.")
    return base, valid_until


def _with_cloid(body: dict[str, Any], cloid: str | None) -> dict[str, Any]:
    if cloid is not None:
        body["cloid"] = cloid
    return body


def _px_or_none(px: Decimal | None) -> str:
    return rules.wire(px) if px is not None else "None"


def _long(account: Account, coin: str) -> Decimal:
    szi = account.position(coin)
    return szi if szi > 0 else ZERO


def _default_ok() -> dict[str, Any]:
    return {"status": "ok", "response": {"type": "default"}}
