"""The strategy API: what a strategy sees, what it may do, and nothing else.

A strategy is a class deriving from `Strategy`. The runtime builds it once with a `Context`
and the strategy's validated parameters, then calls its `on_*` methods from the dispatcher's
one consumer, after each event's state changes are complete (so a callback always sees the
order machines, positions and markets already updated, and an action it takes starts from a
settled state). Callbacks must return quickly and must not block, sleep, read the wall clock
or do I/O: the same strategy runs under a backtest's virtual clock, where only
`Context.now_ms()` and the timers tell the time. An exception escaping a callback trips the
HardStop, like any internal error.

Every action goes through the same gates as the built-in entries: the HardStop, READY-TRADING
and the market's READY, the risk limits, the action budget and the outbound limits. An action
a gate refuses returns an `Action` whose `refused` names the gate; it never raises and never
reaches the exchange. Orders the strategy places are tracked by their own order machines
(hip3/machines/order.py) like every order of the bot, so a cancel-everything (HardStop, a
clean stop) covers them.

Parameters: a strategy declares `Params`, a dataclass or msgspec Struct; the `[strategy.params]`
table of the configuration is converted to it and checked when the configuration is loaded,
with the same one-line errors as every other key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Literal, Protocol

import msgspec

from hip3.events import Signal

__all__ = [
    "TIFS",
    "Action",
    "AssetCtx",
    "Bbo",
    "Book",
    "Context",
    "Fill",
    "MarketView",
    "OrderUpdate",
    "OrderView",
    "PositionView",
    "ReadyChange",
    "Signal",
    "Strategy",
    "Tif",
    "Timer",
]

Tif = Literal["Ioc", "Gtc", "Alo"]
TIFS: tuple[Tif, ...] = ("Ioc", "Gtc", "Alo")


# --- what the callbacks receive ------------------------------------------------------------


# Bbo and AssetCtx are made for every market-data frame: msgspec Structs, immutable like the
# dataclasses around them but built about ten times faster than a frozen dataclass.


class Bbo(msgspec.Struct, frozen=True, gc=False):
    """A new best bid and offer (either side may be empty)."""

    coin: str
    bid_px: Decimal | None
    bid_sz: Decimal | None
    ask_px: Decimal | None
    ask_sz: Decimal | None
    time_ms: int  # the exchange's timestamp of the book


@dataclass(frozen=True, slots=True)
class Book:
    """A market's order book (with `[strategy] book = true`): levels as (price, size), bids
    best first (descending), asks best first (ascending)."""

    coin: str
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]
    time_ms: int


class AssetCtx(msgspec.Struct, frozen=True, gc=False):
    """A new asset context: oracle, mark and mid prices, funding, open interest."""

    coin: str
    oracle_px: Decimal
    mark_px: Decimal
    mid_px: Decimal | None
    funding: Decimal
    open_interest: Decimal


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order of this strategy changed state (its order machine's new state).

    `state` is one of sent, resting, partially_filled, unknown (the outcome is being read back
    from the exchange), filled, cancelled, rejected; the last three are final. Each transition
    is told once and in order; when one event moved the order twice, the first update names a
    state the order has already left."""

    cloid: str
    coin: str
    is_buy: bool
    size: Decimal
    px: Decimal
    tif: str
    reduce_only: bool
    state: str
    filled_sz: Decimal
    reason: str | None  # why it was rejected or cancelled, when known

    @property
    def is_final(self) -> bool:
        return self.state in ("filled", "cancelled", "rejected")


@dataclass(frozen=True, slots=True)
class Fill:
    """A fill of this account in a market the bot trades; `cloid` is None for an order the
    strategy did not place (a flatten, another client of the account)."""

    coin: str
    is_buy: bool
    px: Decimal
    sz: Decimal
    fee: Decimal
    cloid: str | None
    time_ms: int
    position: Decimal  # the bot's tracked position in the coin after this fill


@dataclass(frozen=True, slots=True)
class Timer:
    """A timer set with `Context.set_timer` came due (on the runtime's clock)."""

    name: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class ReadyChange:
    """READY-TRADING changed: False while the connection, reconciliation or market data is not
    fit to trade (every action is refused then, except cancels and flattens)."""

    trading: bool


@dataclass(frozen=True, slots=True)
class Action:
    """What became of an action: `cloid` of the order it sent, or `refused` naming the gate
    (hardstop, not_ready, market_notional, action_budget, outbound_limit, ...). `detail` says
    more where the name alone does not (the numbers of a priority rate above its cap)."""

    cloid: str | None = None
    refused: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.refused is None


# --- read-only views -----------------------------------------------------------------------


class MarketView(Protocol):
    """A market's current state as the bot sees it (read-only)."""

    @property
    def coin(self) -> str: ...
    @property
    def bid_px(self) -> Decimal | None: ...
    @property
    def bid_sz(self) -> Decimal | None: ...
    @property
    def ask_px(self) -> Decimal | None: ...
    @property
    def ask_sz(self) -> Decimal | None: ...
    @property
    def oracle_px(self) -> Decimal | None: ...
    @property
    def mark_px(self) -> Decimal | None: ...
    def stale_reason(self, now_ns: int) -> str | None:
        """Why the market's data is too old to trade on, or None when it is fresh."""
        ...


@dataclass(frozen=True, slots=True)
class OrderView:
    """One live order of this account as its order machine knows it."""

    cloid: str
    coin: str
    is_buy: bool
    size: Decimal
    px: Decimal
    tif: str
    reduce_only: bool
    state: str
    filled_sz: Decimal
    purpose: str  # "strategy", "entry" (the built-in taker's IOC), "flatten"


@dataclass(frozen=True, slots=True)
class PositionView:
    """A position the bot tracks: signed size (positive long), entry price, and when it opened
    (the runtime's Unix-time clock, ms: see `Context.wall_ms`)."""

    coin: str
    size: Decimal
    entry_px: Decimal
    opened_ms: int


class Context(Protocol):
    """The strategy's window on the bot: views, the clock, timers and actions."""

    # --- views
    @property
    def coins(self) -> tuple[str, ...]:
        """The run's markets in configuration order. A whole dex's market listed during the run
        is appended when rediscovery finds it (its bbo and context callbacks start with its
        data); a delisted market stays in the tuple but is never READY again."""
        ...

    def market(self, coin: str) -> MarketView: ...
    def is_stale(self, coin: str) -> bool:
        """The market's data is too old to trade on (the bot's one freshness rule)."""
        ...

    def position(self, coin: str) -> Decimal:
        """Signed size held (positive long)."""
        ...

    def positions(self) -> Mapping[str, PositionView]:
        """The open positions by coin."""
        ...

    def open_orders(self, coin: str | None = None) -> list[OrderView]: ...
    def taker_fee_bps(self, coin: str) -> Decimal:
        """What a fill taking liquidity in `coin` pays, in bps of its notional: the account's
        rate scaled by the dex's fee scale and growth mode (hip3/strategy/fees.py), the rate
        the built-in detector's edge must beat; the configured `detector.taker_fee_bps` until
        the account's rates and the market's spec are read."""
        ...

    def maker_fee_bps(self, coin: str) -> Decimal:
        """What a fill of a resting order (an ALO, or a GTC that rested) in `coin` pays, in
        bps of its notional, by the same formula with the account's maker rate; negative is a
        rebate. Until the rates are read it is the taker view's configured fallback (the
        account's maker rate is below its taker rate, so this errs on the wide side)."""
        ...

    def fees_paid(self, coin: str | None = None) -> Decimal:
        """Trading fees paid this session, from the fills (in the dex's collateral): in `coin`,
        or in every market when None. Every fill of the account counts, flattens too;
        priority fees are not in it (the exchange takes them in HYPE, fills do not carry
        them)."""
        ...

    def sz_decimals(self, coin: str) -> int | None:
        """The market's size decimals once discovery has read them (None before)."""
        ...

    def is_trading(self, coin: str | None = None) -> bool:
        """READY-TRADING, and the market's own READY when a coin is named."""
        ...

    def now_ms(self) -> int:
        """The runtime's monotonic clock (a backtest's virtual one under replay)."""
        ...

    def now_ns(self) -> int:
        """The same clock in ns: what `MarketView.stale_reason` takes."""
        ...

    def wall_ms(self) -> int:
        """The runtime's Unix-time clock (virtual under replay): what fills and positions are
        stamped with."""
        ...

    # --- timers
    def set_timer(self, name: str, *, after_ms: int, every_ms: int | None = None) -> None:
        """Call `on_timer` after `after_ms`, then every `every_ms` if given (replaces a timer
        of the same name). Timers are checked on the dispatcher's tick (100 ms by default)."""
        ...

    def cancel_timer(self, name: str) -> None: ...

    # --- actions
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
        """Place a limit order; price and size are rounded to what the market accepts
        (the price passively: never beyond the limit given).

        `priority_bps` is the exchange's priority fee an IOC pays for earlier execution, in
        bps of its filled notional (docs/exchange/changes-2026.md#priority-fees), sent and
        journaled as the built-in taker's entries send theirs. It may not exceed the market's
        cap (`priority.cap_bps`, or the market's `priority_cap_bps`): refused
        `priority_above_cap`. Only an IOC takes one (refused `priority_needs_ioc`): the
        exchange refuses a rate on a GTC, and on an ALO it charges the resting notional at
        placement whether the order fills or not, which hip3 does not send. None (the
        default) is the bot's own choice: `priority.exit_bps` for a reduce-only IOC, none
        for anything else; 0 is none."""
        ...

    def cancel(self, cloid: str) -> Action: ...
    def modify(self, cloid: str, *, px: Decimal, size: Decimal | None = None) -> Action:
        """Replace a resting order's price (and size) in one exchange action; the new order
        gets a new cloid (returned), the old one ends cancelled."""
        ...

    def can_flatten(self, coin: str) -> bool:
        """A flatten of `coin` would be asked now: a position, an armed HardStop, and no
        flatten of the coin busy."""
        ...

    def flatten(self, coin: str, reason: str) -> bool:
        """Close the position in `coin` with a reduce-only IOC through its flatten machine;
        False (nothing asked) when there is no position, the HardStop owns the book, or a
        flatten of the coin is already busy."""
        ...

    def enter(self, signal: Signal) -> Action:
        """A taker's entry: an IOC taking the quote `signal.ref_px` with the configured
        slippage allowance (`detector.slippage_bps`), refused while the market holds a
        position or an entry is pending. The signal is journaled with its outcome."""
        ...


class Strategy:
    """Base class of a strategy: override the callbacks you need; each default does nothing.

    `Params` is the type of the `[strategy.params]` table (a dataclass or msgspec Struct);
    None means the strategy takes no parameters."""

    Params: ClassVar[type | None] = None

    def __init__(self, ctx: Context, params: Any = None) -> None:
        self.ctx = ctx
        self.params = params

    def on_start(self) -> None:
        """Once, before the first event (set timers here)."""

    def on_bbo(self, bbo: Bbo) -> None: ...
    def on_asset_ctx(self, ctx: AssetCtx) -> None: ...
    def on_book(self, book: Book) -> None:
        """Only with `[strategy] book = true` (the bot then subscribes to l2Book)."""

    def on_order(self, update: OrderUpdate) -> None: ...
    def on_fill(self, fill: Fill) -> None: ...
    def on_timer(self, timer: Timer) -> None: ...
    def on_ready(self, change: ReadyChange) -> None: ...
