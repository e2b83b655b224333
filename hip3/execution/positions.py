"""Positions from fills, reconciled against the exchange every epoch.

A fill counts once, by `tid`, whether it arrives in the userFills snapshot, the stream, or a
userEvents message. Snapshot fills older than the session are history: their tids are
remembered so they can never be counted later, but they do not move positions (the epoch's
clearinghouseState does that). A fill of an order the bot does not know is still applied —
the exchange says the position moved — and logged.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

log = logging.getLogger(__name__)

ZERO = Decimal(0)


@dataclass(slots=True)
class Position:
    coin: str
    size: Decimal = ZERO  # signed: + long, - short
    entry_px: Decimal = ZERO  # VWAP of the open size
    realized_pnl: Decimal = ZERO  # from the exchange's closedPnl, before fees
    fees: Decimal = ZERO
    fills: int = 0
    opened_ms: int = 0  # exchange time the current position was opened (for time stops)

    def notional(self, px: Decimal) -> Decimal:
        return abs(self.size) * px

    def unrealized(self, px: Decimal) -> Decimal:
        return (px - self.entry_px) * self.size if self.size else ZERO


@dataclass(slots=True)
class FillRecord:
    tid: int
    coin: str
    is_buy: bool
    px: Decimal
    sz: Decimal
    fee: Decimal
    closed_pnl: Decimal
    oid: int | None
    cloid: str | None
    time_ms: int


@dataclass
class PositionTracker:
    session_start_ms: int
    max_remembered_tids: int = 200_000
    positions: dict[str, Position] = field(default_factory=dict)
    _seen: set[int] = field(default_factory=set)
    _seen_order: deque = field(default_factory=deque)
    duplicates: int = 0
    unknown_order_fills: int = 0
    fills_applied: int = 0
    discrepancies: list[str] = field(default_factory=list)

    def position(self, coin: str) -> Position:
        p = self.positions.get(coin)
        if p is None:
            p = self.positions[coin] = Position(coin)
        return p

    def size(self, coin: str) -> Decimal:
        p = self.positions.get(coin)
        return p.size if p is not None else ZERO

    def open_coins(self) -> list[str]:
        return [c for c, p in self.positions.items() if p.size != 0]

    def _remember(self, tid: int) -> bool:
        """True the first time a tid is seen."""
        if tid in self._seen:
            self.duplicates += 1
            return False
        self._seen.add(tid)
        self._seen_order.append(tid)
        if len(self._seen_order) > self.max_remembered_tids:
            self._seen.discard(self._seen_order.popleft())
        return True

    def apply(self, fill: FillRecord, *, snapshot: bool, known_order: bool) -> bool:
        """Apply one fill; returns True if it was new and moved the books."""
        if not self._remember(fill.tid):
            return False
        if snapshot and fill.time_ms < self.session_start_ms:
            return False  # history from before this session: the epoch's reconciliation owns sizes
        if not known_order:
            self.unknown_order_fills += 1
            log.info(
                "fill of an order this session did not place: coin=%s tid=%s oid=%s",
                fill.coin,
                fill.tid,
                fill.oid,
            )
        p = self.position(fill.coin)
        signed = fill.sz if fill.is_buy else -fill.sz
        old = p.size
        new = old + signed
        if old == 0 or (old > 0) == (signed > 0):
            # opening or adding: VWAP of the open size
            total = abs(old) + fill.sz
            p.entry_px = (p.entry_px * abs(old) + fill.px * fill.sz) / total
            if old == 0:
                p.opened_ms = fill.time_ms
        elif new == 0:
            p.entry_px = ZERO
            p.opened_ms = 0
        elif (new > 0) != (old > 0):
            # flipped through zero: the remainder opens at this fill's price
            p.entry_px = fill.px
            p.opened_ms = fill.time_ms
        p.size = new
        p.realized_pnl += fill.closed_pnl
        p.fees += fill.fee
        p.fills += 1
        self.fills_applied += 1
        return True

    def reconcile(
        self,
        exchange_sizes: dict[str, tuple[Decimal, Decimal]],
        coins_in_scope: set[str] | None = None,
    ) -> list[str]:
        """Adopt the exchange's sizes (coin -> (szi, entryPx)) for the coins of the queried dex.

        Returns a description of every difference found; differences are facts to log, the
        exchange is right.
        """
        diffs: list[str] = []
        scope = set(exchange_sizes) | {c for c, p in self.positions.items() if p.size != 0}
        if coins_in_scope is not None:
            scope &= coins_in_scope
        for coin in sorted(scope):
            szi, entry = exchange_sizes.get(coin, (ZERO, ZERO))
            p = self.position(coin)
            if p.size != szi:
                diffs.append(f"{coin}: tracked {p.size} exchange {szi}")
                if p.size == 0 and szi != 0 and p.opened_ms == 0:
                    p.opened_ms = self.session_start_ms
                p.size = szi
            if szi != 0:
                p.entry_px = entry
            else:
                p.entry_px = ZERO
                p.opened_ms = 0
        self.discrepancies.extend(diffs)
        return diffs

    def realized(self) -> Decimal:
        return sum((p.realized_pnl for p in self.positions.values()), ZERO)

    def total_fees(self) -> Decimal:
        return sum((p.fees for p in self.positions.values()), ZERO)

    def signed_sizes(self) -> dict[str, str]:
        return {c: str(p.size) for c, p in sorted(self.positions.items()) if p.size != 0}
