"""The strategy host: market data → market state → the strategy, and the strategy's actions →
the executor's gates. It is the strategy's `Context` (hip3/strategy/api.py).

Events it takes: bbo and activeAssetCtx frames (the plain market state they update, and the
first data of each subscription told to the epoch), external signals, the timer tick, the
order machines' transitions, applied fills and READY changes. Market data reaches the strategy
at once (the built-in taker's entry is the latency path); order, fill and READY callbacks are
queued and delivered when the event that caused them is fully handled (`deliver`), so a
strategy never runs inside a machine's transition and always sees settled state.

What it changes: nothing but through the components that own it: the executor sends orders
and cancels behind its gates, the flattening component closes positions. The strategy holds
this object as its Context; its collaborators are private names, so the documented methods
are the strategy's only way to the exchange.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from hip3.market.state import MarketState
from hip3.runtime.common import log
from hip3.runtime.recorder import Recorder
from hip3.strategy.api import (
    Action,
    AssetCtx,
    Bbo,
    Book,
    Fill,
    MarketView,
    OrderUpdate,
    OrderView,
    PositionView,
    ReadyChange,
    Strategy,
    Tif,
    Timer,
)
from hip3.strategy.fees import FeeTable
from hip3.strategy.priority import PriorityPolicy, rate_of_bps

_ZERO = Decimal(0)
_NEVER = float("inf")  # the due time of no timer at all


class _CancelAnswer:
    """The owner of a strategy's cancel post: a refusal is counted and logged; the order
    itself ends through its machine when the exchange reports it."""

    __slots__ = ("cloid", "counters")

    def __init__(self, counters: Any, cloid: str) -> None:
        self.counters = counters
        self.cloid = cloid

    def answered(self, frame: Any, now: int) -> None:
        from hip3.protocol import frames as F

        err = F.action_error(frame)
        if err is None:
            for st in F.order_statuses(frame):
                err = getattr(st, "error", None) or err
        if err is not None:
            self.counters["strategy_cancel_refused"] += 1
            log.info("cancel of %s refused: %s", self.cloid, err)

    def failed(self, reason: str, now: int, *, definite: bool) -> None:
        self.counters["strategy_cancel_lost"] += 1


class StrategyHost:
    def __init__(
        self,
        *,
        coins: list[str],
        markets: dict[str, MarketState],
        positions: Any,
        orders: Any,
        flatten: dict[str, Any],
        hardstop: Any,
        executor: Any,
        ready: Any,
        specs: dict[str, Any],
        fees: FeeTable,
        priority: PriorityPolicy,
        recorder: Recorder,
        first_data: Callable[[str], None],
        request_flatten: Callable[[str, str], None],
        clock: Any,
        counters: Any,
    ) -> None:
        self._coins = tuple(coins)
        self._markets = markets
        self._positions = positions
        self._orders = orders
        self._flatten_machines = flatten  # market -> FlattenMachine: one flatten at a time
        self._hardstop = hardstop
        self._executor = executor
        self._ready = ready
        self._specs = specs
        self._fees = fees  # the runtime's FeeTable: taker fee by calling it, maker by .maker
        self._priority = priority  # the [priority] caps a strategy's IOC rate must keep under
        self._recorder = recorder
        self._first_data = first_data  # the epoch's first-data-of-a-subscription fact
        self._request_flatten = request_flatten
        self._clock = clock
        self._counters = counters
        self.strategy: Strategy | None = None
        self.signals_seen = 0
        self._timers: dict[str, tuple[int, int | None]] = {}  # name -> (due ms, every ms)
        # No timer is due before this (the earliest due time, or earlier when that timer was
        # cancelled since): a tick before it is one comparison (`tick`).
        self._no_timer_before_ms: float = _NEVER
        self._queue: list[tuple[Callable[[Any], None], Any]] = []
        self._ready_trading = False  # a strategy starts not ready: only a change is told
        self._started = False

    def attach(self, strategy: Strategy) -> None:
        self.strategy = strategy

    def add_market(self, coin: str) -> None:
        """A market listed during the run joined it (hip3/runtime/market_join.py)."""
        if coin not in self._coins:
            self._coins = (*self._coins, coin)

    # ------------------------------------------------------------------------------------
    # events

    def start(self) -> None:
        """The strategy's on_start, once, before the first event is handled."""
        if not self._started and self.strategy is not None:
            self._started = True
            self.strategy.on_start()

    def bbo(self, b: Any, recv_ns: int) -> None:
        st = self._markets.get(b.coin)
        if st is None:
            return
        bid, ask = b.bbo
        if not st.on_bbo(
            b.time,
            None if bid is None else (bid.px, bid.sz),
            None if ask is None else (ask.px, ask.sz),
            recv_ns,
            wall_ms=self._clock.wall_ms(),
        ):
            return  # refused (stamped ahead of our clock, or older than the book we have)
        self._first_data("bbo:" + b.coin)
        if self.strategy is not None:
            self.strategy.on_bbo(
                Bbo(b.coin, st.bid_px, st.bid_sz, st.ask_px, st.ask_sz, st.bbo_time_ms)
            )

    def ctx(self, a: Any, recv_ns: int) -> None:
        st = self._markets.get(a.coin)
        if st is None:
            return
        c = a.ctx
        st.on_ctx(
            c.oracle_px, c.mark_px, c.mid_px, c.funding or "0", c.open_interest or "0", recv_ns
        )
        self._first_data("activeAssetCtx:" + a.coin)
        if self.strategy is not None:
            self.strategy.on_asset_ctx(
                AssetCtx(a.coin, st.oracle_px, st.mark_px, st.mid_px, st.funding, st.open_interest)
            )

    def book(self, b: Any) -> None:
        """An l2Book of a traded market (subscribed only when the strategy asked for books)."""
        if self.strategy is None or b.coin not in self._markets:
            return
        bids, asks = b.levels
        self.strategy.on_book(
            Book(
                coin=b.coin,
                bids=tuple((Decimal(lv.px), Decimal(lv.sz)) for lv in bids),
                asks=tuple((Decimal(lv.px), Decimal(lv.sz)) for lv in asks),
                time_ms=b.time,
            )
        )

    def signal(self, sig: Any) -> None:
        """A signal from outside the strategy (an operator, a test): straight to the executor."""
        self._executor.on_signal(sig, self._clock.now_ms(), self._clock.now_ns())

    def tick(self, now_ms: int) -> None:
        """Timers that came due, in the order they were due (a tie by name)."""
        if now_ms < self._no_timer_before_ms or self.strategy is None:
            return  # the usual tick: nothing due
        timers = self._timers
        due = [(t[0], name) for name, t in timers.items() if t[0] <= now_ms]
        if len(due) > 1:
            due.sort()
        for _at, name in due:
            timer = timers.get(name)
            if timer is None or timer[0] > now_ms:
                continue  # cancelled or moved by an earlier callback of this tick
            at, every = timer
            if every is None:
                del timers[name]
            else:
                # a steady cadence from when it was due; ticks missed are skipped, not caught up
                following = at + every
                timers[name] = (following if following > now_ms else now_ms + every, every)
            self.strategy.on_timer(Timer(name, now_ms))
        # the callbacks may have set or cancelled timers: the bound is taken afresh (a plain
        # loop: a generator costs more than the usual one or two timers it would walk)
        earliest: float = _NEVER
        for at, _every in timers.values():
            if at < earliest:
                earliest = at
        self._no_timer_before_ms = earliest

    def order_transition(self, cloid: str, source: str, target: str, event: str) -> None:
        """An order machine changed state: the strategy hears about its own orders."""
        if self.strategy is None:
            return
        info = self._orders.describe(cloid)
        if info is None or info.purpose != "strategy":
            return
        m = self._orders.machines.get(cloid)
        filled = m.filled_sz if m is not None else _ZERO
        reason = None if m is None else (m.reason or m.status)
        update = OrderUpdate(
            cloid=cloid,
            coin=info.coin,
            is_buy=info.is_buy,
            size=info.size,
            px=Decimal(info.px),
            tif=info.tif,
            reduce_only=info.reduce_only,
            state=target,
            filled_sz=filled,
            reason=reason,
        )
        self._queue.append((self.strategy.on_order, update))

    def fill(self, f: Any, cloid: str | None) -> None:
        """A fill the position tracker applied (each trade once)."""
        if self.strategy is None:
            return
        fill = Fill(
            coin=f.coin,
            is_buy=f.side == "B",
            px=Decimal(f.px),
            sz=Decimal(f.sz),
            fee=Decimal(f.fee or "0"),
            cloid=cloid,
            time_ms=f.time,
            position=self._positions.size(f.coin),
        )
        self._queue.append((self.strategy.on_fill, fill))

    def ready_changed(self, cmd: Any) -> None:
        if self.strategy is None or cmd.trading == self._ready_trading:
            return
        self._ready_trading = cmd.trading
        self._queue.append((self.strategy.on_ready, ReadyChange(cmd.trading)))

    @property
    def pending(self) -> bool:
        return bool(self._queue)

    def deliver(self) -> None:
        """The queued order, fill and READY callbacks, in the order they happened."""
        queue, self._queue = self._queue, []
        for callback, arg in queue:
            callback(arg)

    # ------------------------------------------------------------------------------------
    # Context: views

    @property
    def coins(self) -> tuple[str, ...]:
        return self._coins

    def market(self, coin: str) -> MarketView:
        return self._markets[coin]

    def is_stale(self, coin: str) -> bool:
        st = self._markets.get(coin)
        return st is None or st.stale_reason(self._clock.now_ns()) is not None

    def position(self, coin: str) -> Decimal:
        return self._positions.size(coin)

    def positions(self) -> Mapping[str, PositionView]:
        return MappingProxyType(
            {
                c: PositionView(c, p.size, p.entry_px, p.opened_ms)
                for c, p in self._positions.positions.items()
                if p.size
            }
        )

    def open_orders(self, coin: str | None = None) -> list[OrderView]:
        out = []
        for info, m in self._orders.live_orders():
            if coin is not None and info.coin != coin:
                continue
            out.append(
                OrderView(
                    cloid=info.cloid,
                    coin=info.coin,
                    is_buy=info.is_buy,
                    size=info.size,
                    px=Decimal(info.px),
                    tif=info.tif,
                    reduce_only=info.reduce_only,
                    state=m.state,
                    filled_sz=m.filled_sz,
                    purpose=info.purpose,
                )
            )
        return out

    def taker_fee_bps(self, coin: str) -> Decimal:
        return self._fees(coin)

    def maker_fee_bps(self, coin: str) -> Decimal:
        return self._fees.maker(coin)

    def fees_paid(self, coin: str | None = None) -> Decimal:
        if coin is None:
            return self._positions.total_fees()
        p = self._positions.positions.get(coin)
        return _ZERO if p is None else p.fees

    def sz_decimals(self, coin: str) -> int | None:
        spec = self._specs.get(coin)
        return None if spec is None else spec.sz_decimals

    def is_trading(self, coin: str | None = None) -> bool:
        now_ns = self._clock.now_ns()
        if not self._ready.trading(now_ns):
            return False
        return coin is None or self._ready.market(coin, now_ns)

    def now_ms(self) -> int:
        return self._clock.now_ms()

    def now_ns(self) -> int:
        return self._clock.now_ns()

    def wall_ms(self) -> int:
        """The runtime's Unix-time clock (virtual under replay): what fill and position
        times are stamped in."""
        return self._clock.wall_ms()

    # ------------------------------------------------------------------------------------
    # Context: timers

    def set_timer(self, name: str, *, after_ms: int, every_ms: int | None = None) -> None:
        if after_ms < 0 or (every_ms is not None and every_ms < 0):
            raise ValueError(f"timer {name!r}: after_ms and every_ms must be >= 0")
        due = self._clock.now_ms() + after_ms
        self._timers[name] = (due, every_ms)
        if due < self._no_timer_before_ms:
            self._no_timer_before_ms = due

    def cancel_timer(self, name: str) -> None:
        self._timers.pop(name, None)

    # ------------------------------------------------------------------------------------
    # Context: actions (every one through the executor's gates)

    def submit(
        self,
        coin: str,
        *,
        is_buy: bool,
        size: Decimal,
        px: Decimal,
        tif: Tif = "Gtc",
        reduce_only: bool = False,
        priority_bps: Decimal | None = None,
    ) -> Action:
        rate = None
        if priority_bps is not None:
            rate, refusal = self._priority_rate(coin, tif, priority_bps)
            if refusal is not None:
                return refusal
        cloid, refused = self._executor.place(
            coin=coin,
            is_buy=is_buy,
            size=size,
            px=px,
            tif=tif,
            reduce_only=reduce_only,
            now_ms=self._clock.now_ms(),
            now_ns=self._clock.now_ns(),
            priority=rate,
        )
        return Action(cloid, refused, self._executor.refusal_detail(refused))

    def _priority_rate(self, coin: str, tif: str, bps: Any) -> tuple[int, Action | None]:
        """A strategy's priority rate in wire units, or the Action refusing it."""
        if not isinstance(bps, Decimal) or not bps.is_finite() or bps < 0:
            reason = self._executor.strategy_refusal("bad_priority")
            return 0, Action(None, reason, f"priority_bps = {bps!r}: expected a Decimal >= 0")
        if not bps:
            return 0, None
        if tif != "Ioc":
            reason = self._executor.strategy_refusal("priority_needs_ioc")
            return 0, Action(
                None,
                reason,
                f"a priority fee on a {tif} order: only an IOC takes one (the exchange refuses"
                " it on a GTC and charges an ALO's resting notional whether it fills or not)",
            )
        cap = self._priority.cap_for(coin)
        if bps > cap:
            reason = self._executor.strategy_refusal("priority_above_cap")
            return 0, Action(
                None,
                reason,
                f"priority {bps} bps on {coin} is above the cap of {cap.normalize():f} bps"
                " (priority.cap_bps, or the market's priority_cap_bps)",
            )
        return rate_of_bps(bps), None

    def cancel(self, cloid: str) -> Action:
        refused = self._executor.cancel(cloid, _CancelAnswer(self._counters, cloid))
        return Action(cloid if refused is None else None, refused)

    def modify(self, cloid: str, *, px: Decimal, size: Decimal | None = None) -> Action:
        info = self._orders.describe(cloid)
        m = self._orders.machines.get(cloid)
        if info is None or m is None:
            return Action(None, self._executor.strategy_refusal("not_live"))
        if info.purpose != "strategy":
            return Action(None, self._executor.strategy_refusal("not_ours"))
        if m.state not in ("resting", "partially_filled"):
            # an order whose post is unanswered or whose outcome is unknown cannot be named
            # safely to the exchange yet
            return Action(None, self._executor.strategy_refusal("not_resting"))
        new_size = size if size is not None else info.size - m.filled_sz
        cloid_new, refused = self._executor.place(
            coin=info.coin,
            is_buy=info.is_buy,
            size=new_size,
            px=px,
            tif=info.tif,
            reduce_only=info.reduce_only,
            now_ms=self._clock.now_ms(),
            now_ns=self._clock.now_ns(),
            replaces=cloid,
        )
        return Action(cloid_new, refused, self._executor.refusal_detail(refused))

    def can_flatten(self, coin: str) -> bool:
        if not self._positions.size(coin) or not self._hardstop.is_armed:
            return False
        fm = self._flatten_machines.get(coin)
        return fm is None or fm.state == "idle"

    def flatten(self, coin: str, reason: str) -> bool:
        """Flatten `coin` through its flatten machine; False (nothing asked) when there is no
        position, the HardStop owns the book, or a flatten of the coin is already busy."""
        if not self.can_flatten(coin):
            return False
        self._counters[f"exit:{reason}"] += 1
        self._request_flatten(coin, reason)
        return True

    def enter(self, signal: Any) -> Action:
        """The taker's entry: an IOC taking the quote `signal.ref_px` with the configured slippage
        allowance, refused while the market holds a position or an entry is pending."""
        self.signals_seen += 1
        now_ms, now_ns = self._clock.now_ms(), self._clock.now_ns()
        executor = self._executor
        cloid = executor.on_signal(signal, now_ms, now_ns)
        # recorded after the order (if any) is on the wire
        if self._recorder.enabled:
            st = self._markets.get(signal.coin)
            if st is not None:
                self._recorder.signal(
                    signal, st, executor.last_outcome, now_ms=now_ms, wall_ms=self._clock.wall_ms()
                )
        outcome = executor.last_outcome
        return Action(cloid, None if cloid is not None else outcome)
