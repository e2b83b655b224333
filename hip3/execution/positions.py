"""Positions from fills, reconciled against the exchange every epoch.

A fill counts once, by `tid`, whether it arrives in the userFills snapshot, the stream, a
userEvents message or the `userFills` info answer: its realized PnL and fee are added once.
Snapshot fills older than the session are history: their tids are remembered so they can never
be counted later, but they move nothing (the epoch's clearinghouseState owns sizes).

How a fill and a `clearinghouseState` answer are told apart (the double count this prevents: a
fill made while the socket was cut reaches the bot after the state that already includes it,
and used to be added on top of it):

- The answer and the streams travel separately: a state answer can arrive before or after a
  fill it includes, and a fill the state does not include can arrive before the answer.
  Exchange timestamps do not settle it either: the answer is read from committed state, a block
  commits some time after its timestamp, and a fill and a state can share a millisecond.
- Every fill carries `startPosition`, the exchange's signed position just before it (see the
  userFills fields at https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/websocket/subscriptions).
  So a fill says absolutely where the position stood after it: `startPosition ± sz`. A fill
  never adds to the tracked size blindly; it moves the size only when it follows on from it:
  - it starts where the bot stands: the next fill, the size becomes its end;
  - it ends where the bot stands: a state already included it (an outage fill arriving after
    the reconnect's state), the size stays; so did every fill of the same millisecond (one
    block, which a state holds whole), in whatever order they arrive;
  - it is older than a fill already applied for that coin: the newer fill's end is the truth;
  - anything else (the bot's view and the exchange's differ by more than this fill): the size
    becomes the fill's end, the exchange's own word. The difference is a divergence unless
    older fills, still on their way on another stream, arrive and account for it.
- A state answer is compared the same way: it includes every fill the bot had received before
  it sent the request (the exchange had executed them before it could read the request). Only
  fills received while the request was out may be newer than the answer; when the answer equals
  where one of those fills started, the answer is behind the fills and the tracked size stays.
  Otherwise the exchange's size is adopted.

Divergences: a size the bot had to take from the exchange that no fill explains is a fact to
report (the summary does). Adopting a size at the session's first look at a coin is not one,
nor is a state that is ahead of fills still on their way, once those fills arrive.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

log = logging.getLogger(__name__)

ZERO = Decimal(0)


@dataclass(slots=True)
class Correction:
    """A size taken from a state answer that no fill the bot had explained (yet).

    `cursor` walks along the fills that later arrive starting from it: fills the state
    already held. When it reaches `adopted`, the state was merely ahead of them.

    A size adopted at the session's first look at a coin is not `reported`: left unexplained it
    is a position held before the session, but fills on their way may still walk up to it."""

    before: Decimal
    adopted: Decimal
    cursor: Decimal
    text: str
    reported: bool = True


@dataclass(slots=True)
class Position:
    coin: str
    size: Decimal = ZERO  # signed: + long, - short
    entry_px: Decimal = ZERO  # VWAP of the open size
    realized_pnl: Decimal = ZERO  # from the exchange's closedPnl, before fees
    fees: Decimal = ZERO
    fills: int = 0
    opened_ms: int = 0  # exchange time the current position was opened (for time stops)
    last_fill_ms: int = 0  # exchange time of the newest fill that set the size
    # exchange time of the newest fill a state the bot adopted already held: the fills of one
    # block share its time, and a state holds a block whole
    held_ms: int = 0
    correction: Correction | None = None

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
    start_position: Decimal | None = None  # the exchange's signed size just before the fill


@dataclass
class PositionTracker:
    session_start_ms: int
    max_remembered_tids: int = 200_000
    max_recent_fills: int = 2_000
    positions: dict[str, Position] = field(default_factory=dict)
    _seen: set[int] = field(default_factory=set)
    _seen_order: deque = field(default_factory=deque)
    duplicates: int = 0
    unknown_order_fills: int = 0
    fills_applied: int = 0
    discrepancies: list[str] = field(default_factory=list)
    # differences between the bot's view and the exchange's that no fill explained
    divergences: list[str] = field(default_factory=list)
    # coins whose size must be read from the exchange again before the bot acts on them
    needs_state: set[str] = field(default_factory=set)
    states_behind_fills: int = 0
    fills_already_in_state: int = 0
    _fill_seq: int = 0
    _recent: deque = field(default_factory=deque)  # (seq, coin, start, end) of recent fills
    _state_requests: dict[str, int] = field(default_factory=dict)  # request key -> fill seq
    _looked: set[str] = field(default_factory=set)  # coins a state answer has covered
    # `realized_net_of_fees` as of `_net_fills` applied fills (-1: not summed yet)
    _net: Decimal = field(default=ZERO, repr=False, compare=False)
    _net_fills: int = field(default=-1, repr=False, compare=False)

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

    def has_seen(self, tid: int) -> bool:
        return tid in self._seen

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

    # --- fills ------------------------------------------------------------------------------

    def apply(self, fill: FillRecord, *, snapshot: bool, known_order: bool) -> bool:
        """Count one fill; returns True if it was new (its PnL and fee are counted once).

        Whether it also moves the size is decided as the module docstring explains."""
        if not self._remember(fill.tid):
            return False
        if snapshot and fill.time_ms < self.session_start_ms:
            return False  # history from before this session: the epoch's reconciliation owns sizes
        if not known_order:
            self.unknown_order_fills += 1
            # the exchange moved this account by an order the bot did not send: read the
            # position again before acting on the coin
            self.needs_state.add(fill.coin)
            log.info(
                "fill of an order this session did not place: coin=%s tid=%s oid=%s",
                fill.coin,
                fill.tid,
                fill.oid,
            )
        p = self.position(fill.coin)
        signed = fill.sz if fill.is_buy else -fill.sz
        start = p.size if fill.start_position is None else fill.start_position
        end = start + signed
        self._fill_seq += 1
        self._recent.append((self._fill_seq, fill.coin, start, end))
        if len(self._recent) > self.max_recent_fills:
            self._recent.popleft()
        self._move(p, fill, start, end)
        p.realized_pnl += fill.closed_pnl
        p.fees += fill.fee
        p.fills += 1
        self.fills_applied += 1
        return True

    def _move(self, p: Position, fill: FillRecord, start: Decimal, end: Decimal) -> None:
        c = p.correction
        if c is not None and start == c.cursor and start != p.size:
            # a fill the adopted state already held: the state was ahead of it
            self.fills_already_in_state += 1
            c.cursor = end
            if end == c.adopted:
                p.correction = None
            return
        if fill.time_ms < p.last_fill_ms:
            return  # older than a fill already applied: that fill's end is the newer truth
        p.last_fill_ms = fill.time_ms
        if fill.time_ms == p.held_ms:
            # another fill of a block the adopted state held: that state held it too, whether
            # it came before or after the one seen (a round trip inside one block starts where
            # the bot stands and ends where the other fill started)
            self.fills_already_in_state += 1
            return
        if start == p.size:
            self._set(p, fill, start, end)
        elif end == p.size:
            self.fills_already_in_state += 1  # the state the bot adopted included it
            p.held_ms = fill.time_ms
            if c is not None and end == c.adopted:
                p.correction = None
        else:
            # The exchange held `start` before this fill and the bot tracked another size. Fills
            # between the two may still be on their way: another stream's snapshot can bring an
            # older fill after this live one. The size becomes the fill's end, and the gap is a
            # correction those older fills walk up; a divergence only if none does (and not at
            # all at the session's first look at the coin, where it is a position held before).
            text = (
                f"{p.coin}: tracked {p.size} but the exchange held {start} before fill "
                f"tid {fill.tid}"
            )
            reported = not (p.coin not in self._looked and p.fills == 0)
            if reported:
                log.warning("position gap: %s (a divergence unless older fills fill it)", text)
            self._correct(p, start, text, reported=reported)
            self.needs_state.add(p.coin)
            self._set(p, fill, start, end)

    @staticmethod
    def _set(p: Position, fill: FillRecord, start: Decimal, end: Decimal) -> None:
        """The size becomes `end`; entry price and opening time follow the fill."""
        # after a divergence the tracked entry belongs to another size: the fill's price is the
        # best estimate of what it adds to
        base_entry = p.entry_px if start == p.size else fill.px
        signed = end - start
        if start == 0 or (start > 0) == (signed > 0):
            # opening or adding: VWAP of the open size
            total = abs(start) + fill.sz
            p.entry_px = (base_entry * abs(start) + fill.px * fill.sz) / total
            if start == 0 or p.opened_ms == 0:
                p.opened_ms = fill.time_ms
        elif end == 0:
            p.entry_px = ZERO
            p.opened_ms = 0
        elif (end > 0) != (start > 0):
            # flipped through zero: the remainder opens at this fill's price
            p.entry_px = fill.px
            p.opened_ms = fill.time_ms
        p.size = end

    # --- exchange state ---------------------------------------------------------------------

    def state_requested(self, key: str) -> None:
        """A clearinghouseState request is going out: fills received until its answer may be
        newer than the answer."""
        self._state_requests[key] = self._fill_seq

    def _behind(self, coin: str, szi: Decimal, since: int) -> bool:
        """The answer equals where a fill received while it was out started: it predates it."""
        return any(
            seq > since and c == coin and start == szi for seq, c, start, _end in self._recent
        )

    def reconcile(
        self,
        exchange_sizes: dict[str, tuple[Decimal, Decimal]],
        coins_in_scope: set[str] | None = None,
        *,
        request_key: str | None = None,
    ) -> list[str]:
        """Adopt the exchange's sizes (coin -> (szi, entryPx)) for the coins of the queried dex,
        unless the answer is behind fills received while it was out (`request_key` names the
        request that `state_requested` saw go out).

        Returns a description of every size taken from the exchange."""
        since = self._state_requests.pop(request_key, None) if request_key is not None else None
        diffs: list[str] = []
        # the answer vouches for every coin of its dex, also those it does not list (flat)
        answered = set(self.needs_state) if coins_in_scope is None else set(coins_in_scope)
        scope = set(exchange_sizes) | {c for c, p in self.positions.items() if p.size != 0}
        if coins_in_scope is not None:
            scope &= coins_in_scope
        for coin in sorted(scope):
            szi, entry = exchange_sizes.get(coin, (ZERO, ZERO))
            p = self.position(coin)
            first_look = coin not in self._looked
            if p.size != szi and since is not None and self._behind(coin, szi, since):
                self.states_behind_fills += 1
                answered.discard(coin)  # still unsettled: asked again
                continue  # the fills are newer than this answer: the tracked size stays
            if p.size != szi:
                text = f"{coin}: tracked {p.size} exchange {szi}"
                diffs.append(text)
                self._correct(p, szi, text, reported=not (first_look and p.fills == 0))
                if p.size == 0 and szi != 0 and p.opened_ms == 0:
                    p.opened_ms = self.session_start_ms
                p.size = szi
            if szi != 0:
                p.entry_px = entry
            else:
                p.entry_px = ZERO
                p.opened_ms = 0
        # An answer looks at every coin it vouches for, listed or not: a coin it left out was
        # flat, and a later different size is a change to explain, not a first look.
        self._looked |= scope if coins_in_scope is None else scope | coins_in_scope
        self.needs_state -= answered
        self.discrepancies.extend(diffs)
        return diffs

    def _correct(self, p: Position, szi: Decimal, text: str, *, reported: bool) -> None:
        c = p.correction
        if c is not None and c.reported:
            # the previous correction was never explained by a fill: it was a divergence
            self.divergences.append(c.text)
        p.correction = Correction(p.size, szi, p.size, text, reported)

    def divergence_report(self) -> list[str]:
        """Every difference no fill explained, including corrections still unexplained now."""
        pending = [
            c.text
            for p in self.positions.values()
            if (c := p.correction) is not None and c.reported
        ]
        return [*self.divergences, *pending]

    def realized(self) -> Decimal:
        return sum((p.realized_pnl for p in self.positions.values()), ZERO)

    def total_fees(self) -> Decimal:
        return sum((p.fees for p in self.positions.values()), ZERO)

    def realized_net_of_fees(self) -> Decimal:
        """`realized() - total_fees()`. The risk check asks on every timer tick; both sums
        change only when `apply` counts a fill (which counts it in `fills_applied`), so they
        are summed again only then."""
        if self._net_fills != self.fills_applied:
            self._net = self.realized() - self.total_fees()
            self._net_fills = self.fills_applied
        return self._net

    def signed_sizes(self) -> dict[str, str]:
        return {c: str(p.size) for c, p in sorted(self.positions.items()) if p.size != 0}
