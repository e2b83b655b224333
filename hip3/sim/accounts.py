"""Accounts: per-dex USDC balances, positions per coin, leverage settings, fill accounting.

Margin is deliberately simple but real: each dex is margined on its own (standard account
abstraction). Equity of a dex = balance + unrealized PnL of that dex's positions at mark;
a position uses |szi| * mark / leverage, a resting order reserves notional / leverage. An
order is accepted only if its own requirement fits in what is left.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hip3.sim.book import Order
from hip3.sim.nonces import NonceSet

ZERO = Decimal(0)
# userAbstraction modes: "disabled" is standard (a balance per perp dex and one on spot); the
# unified and portfolio-margin modes keep one balance per token, on spot.
STANDARD = "disabled"
ABSTRACTIONS = (STANDARD, "unifiedAccount", "portfolioMargin")
MAX_FILLS_KEPT = 10_000  # the exchange serves at most the 10,000 most recent fills
MAX_LEDGER_KEPT = 10_000  # funding payments and other ledger updates kept per account


@dataclass(slots=True)
class Position:
    coin: str
    dex: str
    szi: Decimal = ZERO
    entry_px: Decimal = ZERO
    cum_funding_all_time: Decimal = ZERO
    cum_funding_since_open: Decimal = ZERO
    # Margin added to an isolated position beyond what its leverage requires
    # (updateIsolatedMargin); it is part of the position's margin until the position closes.
    isolated_extra: Decimal = ZERO


@dataclass(slots=True)
class Leverage:
    is_cross: bool
    value: int


@dataclass(slots=True)
class Account:
    address: str
    internal: bool = False  # simulated makers: no margin checks, no user streams
    balances: dict[str, Decimal] = field(default_factory=dict)  # perp dex -> its collateral
    spot: dict[str, Decimal] = field(default_factory=dict)  # token name -> spot balance
    abstraction: str = STANDARD  # userAbstraction of this account
    positions: dict[str, Position] = field(default_factory=dict)
    leverage: dict[str, Leverage] = field(default_factory=dict)
    open_orders: dict[int, Order] = field(default_factory=dict)
    open_cloids: dict[str, int] = field(default_factory=dict)
    order_margin: dict[str, Decimal] = field(default_factory=dict)  # per dex
    fills: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_FILLS_KEPT))
    # userFundings items {time, coin, usdc, szi, fundingRate, nSamples}, oldest first
    fundings: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_LEDGER_KEPT))
    # userNonFundingLedgerUpdates items {time, hash, delta}, oldest first
    ledger_updates: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=MAX_LEDGER_KEPT)
    )
    nonces: NonceSet = field(default_factory=NonceSet)
    scheduled_cancel_ms: int | None = None
    scheduled_cancel_triggers: dict[int, int] = field(default_factory=dict)  # utc day -> count
    volume: Decimal = ZERO
    fees_paid: Decimal = ZERO
    # The address-based request budget (hip3.sim.address_budget).
    budget_volume: Decimal = ZERO  # traded volume as it counts for the budget
    requests_used: int = 0
    last_admitted_ms: int | None = None  # when the budget last let an action through

    def balance(self, dex: str) -> Decimal:
        return self.balances.get(dex, ZERO)

    def position(self, coin: str) -> Decimal:
        held = self.positions.get(coin)
        return held.szi if held is not None else ZERO


def fill_direction(start: Decimal, is_buy: bool, sz: Decimal) -> str:
    end = start + sz if is_buy else start - sz
    if start > 0 and end < 0:
        return "Long > Short"
    if start < 0 and end > 0:
        return "Short > Long"
    if is_buy:
        return "Close Short" if start < 0 else "Open Long"
    return "Close Long" if start > 0 else "Open Short"


def apply_fill(
    account: Account, coin: str, dex: str, is_buy: bool, px: Decimal, sz: Decimal, fee: Decimal
) -> tuple[Decimal, str, Decimal]:
    """Move the position and the dex balance; returns (startPosition, dir, closedPnl)."""
    position = account.positions.get(coin)
    if position is None:
        position = account.positions[coin] = Position(coin=coin, dex=dex)
    start = position.szi
    direction = fill_direction(start, is_buy, sz)
    signed = sz if is_buy else -sz
    closed_pnl = ZERO
    if start and (start > 0) != is_buy:
        closing = min(sz, abs(start))
        per_unit = px - position.entry_px if start > 0 else position.entry_px - px
        closed_pnl = per_unit * closing
        opening = sz - closing
        position.szi = start + signed
        if not position.szi:
            position.entry_px = ZERO
            position.cum_funding_since_open = ZERO
        elif opening:
            position.entry_px = px  # flipped: the remainder opened at this price
            position.cum_funding_since_open = ZERO
    else:
        new_szi = start + signed
        position.entry_px = (abs(start) * position.entry_px + sz * px) / abs(new_szi)
        position.szi = new_szi
    account.balances[dex] = account.balance(dex) + closed_pnl - fee
    account.volume += px * sz
    account.fees_paid += fee
    if not position.szi:
        del account.positions[coin]
    return start, direction, closed_pnl
