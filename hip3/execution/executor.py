"""Signal → gates → order → sign → send, straight-line on the hot path.

The gates run in a fixed order and each refusal is counted by its reason. An accepted signal
becomes one IOC order: priced from the quote it takes plus a slippage allowance (rounded
passively, so the allowance is a hard cap), sized to the lot, checked against the minimum
notional, signed with the fast signer and handed to the writer at once — there is no batching
tick. An entry pays the priority fee rate its signal carries (`grouping: {"p": n}`, decided by
the detector, hip3.strategy.priority); a reduce-only exit pays `exit_priority`; without a
rate the grouping is "na", the wire exactly as before priority fees existed. The order's machine is created after the frame is queued. The action budget is checked
last and paid only when the order is actually handed to the wire, so a refusal never costs a
token.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hip3.events import Signal
from hip3.execution.orders import OrderInfo, OrderRegistry
from hip3.execution.positions import PositionTracker
from hip3.market.state import MarketSpec, MarketState
from hip3.protocol.actions import (
    batch_modify_action,
    cancel_by_cloid_action,
    limit_order_wire,
    order_action,
)
from hip3.protocol.numbers import (
    NotionalError,
    PriceError,
    Rounding,
    SizeError,
    check_min_notional,
    quantize_price,
    quantize_size,
    wire_decimal,
)
from hip3.strategy.priority import grouping
from hip3.strategy.sizing import market_notional_cap
from hip3.transport.limits import TokenBucket

log = logging.getLogger(__name__)

_BPS = Decimal(10_000)
_ZERO = Decimal(0)
_ONE = Decimal(1)
_PASSIVE = Rounding.PASSIVE


@dataclass(slots=True, frozen=True)
class RiskLimits:
    max_notional_per_market: Decimal
    max_total_notional: Decimal
    max_concurrent_positions: int
    min_order_notional: Decimal
    slippage_bps: Decimal
    max_slippage_bps: Decimal
    # dynamic sizing: the per-market cap is also at most this x the dex's account value
    risk_per_market: Decimal | None = None
    # an entry's limit price is the quote times one of these (1 ± the capped allowance)
    buy_factor: Decimal = field(init=False, repr=False, compare=False)
    sell_factor: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        allowance = min(self.slippage_bps, self.max_slippage_bps) / _BPS
        object.__setattr__(self, "buy_factor", _ONE + allowance)
        object.__setattr__(self, "sell_factor", _ONE - allowance)


def _dex_of(coin: str) -> str:
    dex, sep, _ = coin.partition(":")
    return dex if sep else ""


class Executor:
    GATES = (
        "hardstop",
        "not_ready",
        "positions_unsettled",
        # the entry guards (hip3/execution/entry_guards.py), those the configuration turns on
        "blackout",
        "hourly_drawdown",
        "correlation_cooldown",
        "burst_limit",
        "tilt_guard",
        "re_entry_delay",
        "market_health",
        "oi_fraction",
        "correlation_limit",
        "market_notional",
        "total_notional",
        "concurrent_positions",
        "flatten_in_progress",
        "existing_position",
        "pending_order",
        "unknown_market",
        "liq_buffer",  # hip3/execution/liquidation.py, where a market has a buffer set
        "action_budget",  # checked after the order is built, just before it is sent
    )

    def __init__(
        self,
        *,
        limits: RiskLimits,
        action_budget: TokenBucket,
        ready: Any,
        hardstop: Any,
        flatten: dict[str, Any],
        positions: PositionTracker,
        orders: OrderRegistry,
        markets: dict[str, MarketState],
        specs: dict[str, MarketSpec],
        wire: Any,
        cloids: Any,
        trading: bool,
        order_post: Callable[[list[str]], Any],
        guards: Any | None = None,
        wall_ms: Callable[[], int] | None = None,
        exit_priority: int = 0,
        liq_buffer: Any | None = None,
    ) -> None:
        self.limits = limits
        # priority fee rate of reduce-only exits, in 10^-8 of notional (0: none)
        self.exit_priority = exit_priority
        self.budget = action_budget
        self.ready = ready
        self.hardstop = hardstop
        self.flatten = flatten
        self.positions = positions
        self.orders = orders
        self.markets = markets
        self.specs = specs
        self.wire = wire
        self.cloids = cloids
        # The next order's cloid, drawn after the previous order went out: measured in
        # bench.hot_path, a draw on the order's own path costs about 5 us (cold code after
        # the idle time between triggers), a tenth of everything before signing.
        self._next_cloid: str = cloids.next()
        self.trading = trading
        # optional EntryGuards (hip3/execution/entry_guards.py): refusals from recent trading
        # and the time of day, asked on the wall clock `wall_ms`
        self.guards = guards
        self.wall_ms = wall_ms
        if guards is not None and wall_ms is None:
            raise ValueError("Executor: entry guards need a wall clock (wall_ms)")
        # optional LiquidationBuffer (hip3/execution/liquidation.py): refuses an entry after
        # which its market's position would sit too close to its liquidation price
        self.liq_buffer = liq_buffer if liq_buffer is not None and liq_buffer.active else None
        # makes the owner of an order post: what handles its answer and its failure
        self.order_post = order_post
        # account value per dex (from the epoch's clearinghouseState), for dynamic sizing
        self.account_values: dict[str, Decimal] = {}
        self.blocked: Counter[str] = Counter()
        self.build_errors: Counter[str] = Counter()
        self.submitted = 0
        self.signals = 0
        self.last_outcome = ""
        self.entries_sent = 0
        self.strategy_sent = 0  # a strategy's own orders (place), modifies included
        self.strategy_modifies = 0
        self.journal: Any = None  # optional hip3.journal.Journal: every order is recorded

    def _gate(self, sig: Signal, now_ns: int) -> str | None:
        coin = sig.coin
        if not self.hardstop.is_armed:
            return "hardstop"
        if not self.ready.trading(now_ns) or not self.ready.market(coin, now_ns):
            return "not_ready"
        if self.positions.needs_state:
            return "positions_unsettled"  # the exchange moved the account: read it first
        px = sig.ref_px
        order_notional = sig.size * px
        pos = self.positions.positions.get(coin)
        market_notional = pos.notional(px) if pos is not None else _ZERO
        if self.guards is not None and self.guards.active:
            m = self.markets.get(coin)
            oi = m.open_interest if m is not None else None
            refusal = self.guards.refusal(
                coin,
                is_buy=sig.is_buy,
                edge_bps=sig.edge_bps,
                now_ms=self.wall_ms(),
                position_notional=market_notional + order_notional,
                open_interest_notional=None if oi is None else oi * px,
            )
            if refusal is not None:
                return refusal
        limits = self.limits
        cap = market_notional_cap(
            limits.max_notional_per_market,
            self.account_values.get(_dex_of(coin)),
            limits.risk_per_market,
        )
        if market_notional + order_notional > cap:
            return "market_notional"
        total = _ZERO
        for c, p in self.positions.positions.items():
            if p.size:
                m = self.markets.get(c)
                ref = m.reference_px() if m is not None else None
                total += p.notional(ref if ref is not None else p.entry_px)
        if total + order_notional > limits.max_total_notional:
            return "total_notional"
        if len(self.positions.open_coins()) >= limits.max_concurrent_positions:
            return "concurrent_positions"
        fl = self.flatten.get(coin)
        if fl is not None and fl.state != "idle":
            return "flatten_in_progress"
        if pos is not None and pos.size != 0:
            return "existing_position"
        if self.orders.pending_entry(coin):
            return "pending_order"
        if coin not in self.specs:
            return "unknown_market"
        if self.liq_buffer is not None:
            # last: the costliest question, asked only of an entry every other gate allows;
            # judged at the order's limit price (the worst fill it accepts)
            is_buy = sig.is_buy
            limit = px * (limits.buy_factor if is_buy else limits.sell_factor)
            return self.liq_buffer.refusal(coin, is_buy=is_buy, size=sig.size, px=limit)
        return None

    def set_account_value(self, dex: str, value: Decimal | None) -> None:
        """The account value of `dex` ("" the first dex) as the exchange last reported it."""
        if value is None:
            self.account_values.pop(dex, None)
        else:
            self.account_values[dex] = value

    def on_signal(self, sig: Signal, now_ms: int, now_ns: int) -> str | None:
        """Returns the cloid of the order sent, or None (the reason is counted)."""
        self.signals += 1
        if not self.trading:
            self.blocked["observation"] += 1
            self.last_outcome = "observation"
            return None
        reason = self._gate(sig, now_ns)
        if reason is not None:
            return self._refuse(reason)
        spec = self.specs[sig.coin]
        lim = self.limits
        is_buy = sig.is_buy
        limit = sig.ref_px * (lim.buy_factor if is_buy else lim.sell_factor)
        try:
            # passive rounding of (quote ± allowance): never beyond the cap, never worse than the quote
            pxd = quantize_price(
                limit, sz_decimals=spec.sz_decimals, is_buy=is_buy, rounding=_PASSIVE
            )
            szd = quantize_size(sig.size, sz_decimals=spec.sz_decimals)
            check_min_notional(pxd, szd, lim.min_order_notional)
        except (PriceError, SizeError, NotionalError) as exc:
            self.build_errors[type(exc).__name__] += 1
            self.last_outcome = "unbuildable:" + type(exc).__name__
            log.debug("signal on %s not tradable: %s", sig.coin, exc)
            return None
        # last, so a refusal above never costs a token: the budget counts entries sent
        if self.budget.available(now_ms) < 1:
            self.budget.refused += 1
            return self._refuse("action_budget")
        px, sz = wire_decimal(pxd), wire_decimal(szd)
        cloid = self.send_order(
            spec,
            is_buy=sig.is_buy,
            px=px,
            sz=sz,
            reduce_only=False,
            purpose="entry",
            now_ms=now_ms,
            priority=sig.priority,
        )
        if cloid is None:
            self.last_outcome = "blocked:outbound_limit"
            return None
        self.budget.try_take(now_ms)
        self.last_outcome = "sent"
        self.entries_sent += 1
        if self.guards is not None:
            self.guards.on_sent(sig.coin, edge_bps=sig.edge_bps, now_ms=self.wall_ms())
        return cloid

    def _refuse(self, reason: str) -> None:
        self.blocked[reason] += 1
        self.last_outcome = "blocked:" + reason

    # ------------------------------------------------------------------------------------
    # a strategy's own orders (hip3/strategy/api.py): limit orders of any time in force,
    # cancels and modifies, behind the same gates as the entries above

    def place(
        self,
        *,
        coin: str,
        is_buy: bool,
        size: Decimal,
        px: Decimal,
        tif: str,
        reduce_only: bool,
        now_ms: int,
        now_ns: int,
        replaces: str | None = None,
        priority: int | None = None,
    ) -> tuple[str | None, str | None]:
        """Gate, build and send one limit order; (cloid, None) when sent, else (None, why).

        With `replaces` (the cloid of a live order of ours) it goes out as a modify of that
        order: one batchModify, the old order cancelled and this one placed by the exchange.
        `priority` is an IOC's fee rate in 10^-8 of notional, sent as `send_order` sends an
        entry's (None: the exit rate for a reduce-only IOC, none otherwise)."""
        if not self.trading:
            return None, self.strategy_refusal("observation")
        if tif not in ("Ioc", "Gtc", "Alo"):
            return None, self.strategy_refusal("bad_tif")
        if not (isinstance(size, Decimal) and isinstance(px, Decimal)) or size <= 0 or px <= 0:
            return None, self.strategy_refusal("bad_size_or_price")
        reason = self._place_gate(coin, is_buy, size, px, reduce_only, now_ns, replaces)
        if reason is not None:
            return None, self.strategy_refusal(reason)
        spec = self.specs[coin]
        try:
            pxd = quantize_price(px, sz_decimals=spec.sz_decimals, is_buy=is_buy, rounding=_PASSIVE)
            szd = quantize_size(size, sz_decimals=spec.sz_decimals)
            if not reduce_only:
                check_min_notional(pxd, szd, self.limits.min_order_notional)
        except (PriceError, SizeError, NotionalError) as exc:
            self.build_errors[type(exc).__name__] += 1
            return None, self.strategy_refusal("unbuildable:" + type(exc).__name__)
        if self.budget.available(now_ms) < 1:
            self.budget.refused += 1
            return None, self.strategy_refusal("action_budget")
        cloid = self.send_order(
            spec,
            is_buy=is_buy,
            px=wire_decimal(pxd),
            sz=wire_decimal(szd),
            reduce_only=reduce_only,
            purpose="strategy",
            now_ms=now_ms,
            tif=tif,
            replaces=replaces,
            priority=priority,
        )
        if cloid is None:
            return None, self.strategy_refusal("outbound_limit")
        self.budget.try_take(now_ms)
        self.strategy_sent += 1
        if replaces is not None:
            self.strategy_modifies += 1
        return cloid, None

    def refusal_detail(self, reason: str | None) -> str | None:
        """The numbers behind a refusal whose name alone does not say enough, or None."""
        if reason == "liq_buffer" and self.liq_buffer is not None:
            return self.liq_buffer.last_refusal
        return None

    def strategy_refusal(self, reason: str) -> str:
        """Count a strategy action's refusal by its reason; returns the reason."""
        self.blocked["strategy:" + reason] += 1
        return reason

    def _place_gate(
        self,
        coin: str,
        is_buy: bool,
        size: Decimal,
        px: Decimal,
        reduce_only: bool,
        now_ns: int,
        replaces: str | None,
    ) -> str | None:
        if not self.hardstop.is_armed:
            return "hardstop"
        if not self.ready.trading(now_ns) or not self.ready.market(coin, now_ns):
            return "not_ready"
        if self.positions.needs_state:
            return "positions_unsettled"
        if coin not in self.specs:
            return "unknown_market"
        fl = self.flatten.get(coin)
        if fl is not None and fl.state != "idle":
            return "flatten_in_progress"
        if reduce_only:
            return None  # it can only shrink a position: the limits below are about growing one
        # What this market could hold if every order of ours in it filled: the position plus
        # the open orders that add to it (a replaced order no longer counts), plus this one.
        order_notional = size * px
        pos = self.positions.positions.get(coin)
        market = pos.notional(px) if pos is not None else _ZERO
        for info, _m in self.orders.open_orders():
            if info.coin == coin and not info.reduce_only and info.cloid != replaces:
                market += info.size * Decimal(info.px)
        limits = self.limits
        cap = market_notional_cap(
            limits.max_notional_per_market,
            self.account_values.get(_dex_of(coin)),
            limits.risk_per_market,
        )
        if market + order_notional > cap:
            return "market_notional"
        total = _ZERO
        for c, p in self.positions.positions.items():
            if p.size and c != coin:
                m = self.markets.get(c)
                ref = m.reference_px() if m is not None else None
                total += p.notional(ref if ref is not None else p.entry_px)
        if total + market + order_notional > limits.max_total_notional:
            return "total_notional"
        open_coins = self.positions.open_coins()
        if coin not in open_coins and len(open_coins) >= limits.max_concurrent_positions:
            return "concurrent_positions"
        if self.liq_buffer is not None:
            return self.liq_buffer.refusal(coin, is_buy=is_buy, size=size, px=px)
        return None

    def cancel(self, cloid: str, owner: Any) -> str | None:
        """Cancel one live order of ours by cloid; None when the cancel is on the wire, else
        why not. Cancels only take risk away, so no READY or risk gate stands before them:
        only the outbound limits. The order machine ends when the exchange reports it."""
        info = self.orders.describe(cloid)
        if info is None or not self.orders.is_live(cloid):
            return self.strategy_refusal("not_live")
        if info.purpose != "strategy":
            return self.strategy_refusal("not_ours")
        spec = self.specs.get(info.coin)
        if spec is None:
            return self.strategy_refusal("unknown_market")
        action = cancel_by_cloid_action([(spec.asset, cloid)])
        if self.wire.post_action(action, kind="cancel", owner=owner) is None:
            return self.strategy_refusal("outbound_limit")
        return None

    def send_order(
        self,
        spec: MarketSpec,
        *,
        is_buy: bool,
        px: str,
        sz: str,
        reduce_only: bool,
        purpose: str,
        now_ms: int,
        priority: int | None = None,
        tif: str = "Ioc",
        replaces: str | None = None,
    ) -> str | None:
        """One order (an IOC unless `tif` says otherwise; a modify of `replaces` when given).
        `priority` is its fee rate (None: `exit_priority` for a reduce-only IOC, none for an
        entry); only an IOC carries one here, since the exchange takes a rate only on a batch
        of IOCs or of non-reduce-only ALOs, and a modify carries none."""
        if priority is None:
            priority = self.exit_priority if reduce_only else 0
        if tif != "Ioc" or replaces is not None:
            priority = 0
        cloid = self._next_cloid
        wire = limit_order_wire(
            asset=spec.asset,
            is_buy=is_buy,
            px=px,
            sz=sz,
            reduce_only=reduce_only,
            tif=tif,
            cloid=cloid,
        )
        action = (
            order_action([wire], grouping=grouping(priority))
            if replaces is None
            else batch_modify_action([(replaces, wire)])
        )
        pending = self.wire.post_action(action, kind="order", owner=self.order_post([cloid]))
        self._next_cloid = self.cloids.next()  # whether sent or refused: a cloid is used once
        if pending is None:
            self.blocked["outbound_limit"] += 1
            return None
        info = OrderInfo(
            cloid=cloid,
            coin=spec.coin,
            asset=spec.asset,
            is_buy=is_buy,
            size=Decimal(sz),
            px=px,
            reduce_only=reduce_only,
            purpose=purpose,
            created_ms=now_ms,
            post_id=pending.post_id,
            epoch=pending.epoch,
            priority=priority,
            tif=tif,
        )
        self.orders.add(info)
        if self.journal is not None:
            # stamped with the journal's Unix clock: now_ms here is the monotonic clock
            self.journal.order(
                cloid=cloid,
                coin=spec.coin,
                is_buy=is_buy,
                px=px,
                sz=sz,
                reduce_only=reduce_only,
                purpose=purpose,
                priority_rate=priority or None,
            )
        self.orders.send(cloid, "sent", post_id=pending.post_id, epoch=pending.epoch)
        self.submitted += 1
        return cloid
