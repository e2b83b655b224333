"""What the bot knows about one market right now, and whether that is fresh enough to trade on.

Updated for every bbo/ctx frame, so it is plain attribute writes: no machine, no allocation
beyond the Decimals the strategy needs. Receive times are monotonic nanoseconds from the
reader; the book's exchange time is kept beside them to catch a clock running backwards or
running ahead.

Freshness has one definition, `MarketState.stale_reason`, under one configuration section
(`[freshness]`): READY-MD, the market gates, the exits and the status view all ask it.

What "stale" means follows how each feed is pushed (docs/exchange/freshness.md): the asset
context comes with every oracle update (about every 3 s on HIP-3), so its silence is the signal
that the market's data stopped; the bbo comes only when the book changes, so an old book is a
quiet book as long as the context keeps confirming it (its `midPx`, the exchange's own book mid,
lies within our bid..ask). A book the context contradicts for longer than `max_bbo_age_s` is one
whose changes we are not being sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from hip3.market.spread import SpreadEwma

if TYPE_CHECKING:
    from hip3.config import FreshnessConfig

__all__ = [
    "BBO_STALE",
    "CTX_STALE",
    "TIME_REGRESSION",
    "Freshness",
    "MarketSpec",
    "MarketState",
]

log = logging.getLogger(__name__)

BBO_STALE = "bbo_stale"
CTX_STALE = "ctx_stale"
TIME_REGRESSION = "time_regression"


@dataclass(slots=True)
class MarketSpec:
    """Static facts from discovery (perpDexs + meta)."""

    coin: str
    dex: str
    asset: int
    sz_decimals: int
    max_leverage: int = 1
    margin_mode: str = ""
    growth_mode: bool = False
    deployer_fee_scale: Decimal = Decimal(1)
    # The meta lists the market `isDelisted` (a delisting, or its dex disabled): it keeps its
    # slot and asset id, and never trades again.
    delisted: bool = False


@dataclass(slots=True, frozen=True)
class Freshness:
    """When a market's data is too old, or its clock too odd, to trade on."""

    # The asset context has contradicted the book (its midPx outside our bid..ask) this long.
    max_bbo_age_s: float = 2.0
    # The asset context (oracle, mark; pushed with every oracle update) is older than this.
    max_ctx_age_s: float = 8.0
    # After the book's exchange time ran backwards, distrust the feed this long.
    time_regression_block_s: float = 10.0
    # A book stamped further than this ahead of our wall clock is refused, not adopted.
    max_future_skew_s: float = 5.0
    # the same limits in the units the hot path compares with (set from the above)
    bbo_age_ns: int = field(init=False, repr=False, compare=False)
    ctx_age_ns: int = field(init=False, repr=False, compare=False)
    regression_ns: int = field(init=False, repr=False, compare=False)
    future_skew_ms: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("max_bbo_age_s", "max_ctx_age_s", "max_future_skew_s"):
            value = getattr(self, name)
            if not 0 < value < float("inf"):
                raise ValueError(f"Freshness.{name} = {value!r}: expected a finite number > 0")
        if not 0 <= self.time_regression_block_s < float("inf"):
            raise ValueError(
                f"Freshness.time_regression_block_s = {self.time_regression_block_s!r}: "
                "expected a finite number >= 0"
            )
        object.__setattr__(self, "bbo_age_ns", int(self.max_bbo_age_s * 1e9))
        object.__setattr__(self, "ctx_age_ns", int(self.max_ctx_age_s * 1e9))
        object.__setattr__(self, "regression_ns", int(self.time_regression_block_s * 1e9))
        object.__setattr__(self, "future_skew_ms", int(self.max_future_skew_s * 1000))

    @classmethod
    def from_config(cls, cfg: FreshnessConfig) -> Freshness:
        return cls(
            max_bbo_age_s=cfg.max_bbo_age_s,
            max_ctx_age_s=cfg.max_ctx_age_s,
            time_regression_block_s=cfg.time_regression_block_s,
            max_future_skew_s=cfg.max_future_skew_s,
        )


_DEFAULT_FRESHNESS = Freshness()


@dataclass(slots=True)
class MarketState:
    coin: str
    freshness: Freshness = _DEFAULT_FRESHNESS
    spread: SpreadEwma = field(default_factory=SpreadEwma)
    bid_px: Decimal | None = None
    bid_sz: Decimal | None = None
    ask_px: Decimal | None = None
    ask_sz: Decimal | None = None
    # The same prices as floats (0.0 when absent), for statistics and gates: converted once per
    # frame, from the wire's text (the very double `float(Decimal(text))` gives, without the
    # Decimal's round trip through a string, which costs twice the conversion itself).
    bid_f: float = 0.0
    ask_f: float = 0.0
    bbo_time_ms: int = 0  # exchange time of the book adopted last
    bbo_recv_ns: int = 0  # monotonic receive time
    oracle_px: Decimal | None = None
    mark_px: Decimal | None = None
    oracle_f: float = 0.0  # as bid_f: the oracle and mark as floats, 0.0 before a context
    mark_f: float = 0.0
    mid_px: Decimal | None = None
    funding: Decimal | None = None
    open_interest: Decimal | None = None
    ctx_recv_ns: int = 0
    # The next context is a subscription's snapshot (the stream was just subscribed again): it
    # restates what the exchange holds, so it proves the oracle moved only if it differs.
    ctx_snapshot_due: bool = False
    bbo_updates: int = 0
    ctx_updates: int = 0
    time_regressions: int = 0
    regression_recv_ns: int = 0  # when the last backwards book arrived
    # when a context first contradicted the book we hold (0: none since our last book)
    book_contradicted_ns: int = 0
    future_books: int = 0  # books refused for a time too far ahead of our clock
    halted: bool = False  # the exchange shows an empty book: a halt cancels every order

    def on_bbo(
        self,
        time_ms: int,
        bid: tuple[str, str] | None,
        ask: tuple[str, str] | None,
        recv_ns: int,
        *,
        wall_ms: int,
    ) -> bool:
        """Adopt a book; False when it is refused (stamped in the future, or older than ours).

        A refused book changes nothing but its counter: a time far ahead would otherwise
        become the market's latest and turn every later, correct book into a "regression".
        """
        if time_ms - wall_ms > self.freshness.future_skew_ms:
            self.future_books += 1
            if self.future_books == 1:
                log.warning(
                    "%s: refused a book stamped %.1f s ahead of our clock (limit %s s); such "
                    "books are dropped and counted, this is logged once",
                    self.coin,
                    (time_ms - wall_ms) / 1000,
                    self.freshness.max_future_skew_s,
                )
            return False
        if time_ms < self.bbo_time_ms:
            self.time_regressions += 1
            self.regression_recv_ns = recv_ns
            return False  # an older book must never overwrite a newer one
        self.bbo_time_ms = time_ms
        self.bbo_recv_ns = recv_ns
        self.book_contradicted_ns = 0
        if bid is None:
            self.bid_px = self.bid_sz = None
            self.bid_f = 0.0
        else:
            px, sz = bid
            self.bid_px, self.bid_sz = Decimal(px), Decimal(sz)
            self.bid_f = float(px)
        if ask is None:
            self.ask_px = self.ask_sz = None
            self.ask_f = 0.0
        else:
            px, sz = ask
            self.ask_px, self.ask_sz = Decimal(px), Decimal(sz)
            self.ask_f = float(px)
        self.bbo_updates += 1
        if bid is not None and ask is not None:
            self.spread.observe(self.bid_f, self.ask_f)
        if (bid is None and ask is None) != self.halted:
            self._set_halted(not self.halted)
        return True

    def _set_halted(self, empty: bool) -> None:
        # A deployer halt cancels every resting order, so the exchange's book goes empty on
        # both sides; any resting order again means trading has resumed.
        self.halted = empty
        if empty:
            log.warning("%s: the exchange shows an empty book: halted, entries blocked", self.coin)
        else:
            log.info("%s: the book is back: trading resumed", self.coin)

    def on_ctx(
        self,
        oracle: str,
        mark: str,
        mid: str | None,
        funding: str,
        open_interest: str,
        recv_ns: int,
    ) -> None:
        oracle_px, mark_px = Decimal(oracle), Decimal(mark)
        restated = self.ctx_snapshot_due and (oracle_px, mark_px) == (self.oracle_px, self.mark_px)
        self.ctx_snapshot_due = False
        self.oracle_px = oracle_px
        self.mark_px = mark_px
        self.oracle_f = float(oracle)
        self.mark_f = float(mark)
        self.mid_px = Decimal(mid) if mid is not None else None
        self.funding = Decimal(funding)
        self.open_interest = Decimal(open_interest)
        if not restated:  # a snapshot of the same prices leaves the market as stale as it was
            self.ctx_recv_ns = recv_ns
        self.ctx_updates += 1
        self._check_book(recv_ns)

    def _check_book(self, recv_ns: int) -> None:
        """Does the context's mid (the exchange's book mid) agree with the book we hold? A
        mid outside our bid..ask means the book moved and its bbo did not reach us (yet); a
        mid within it, or no mid to compare, clears the doubt. Prices are on the exchange's
        5-significant-figure grid, so the mid of an unchanged book rounds to a price within
        bid..ask."""
        mid, bid, ask = self.mid_px, self.bid_px, self.ask_px
        if mid is None or bid is None or ask is None or bid <= mid <= ask:
            self.book_contradicted_ns = 0
        elif self.book_contradicted_ns == 0:
            self.book_contradicted_ns = recv_ns

    def stale_reason(self, now_ns: int) -> str | None:
        """Why this market's data cannot be traded on at `now_ns`, or None when it is fresh.

        The one freshness definition: no book or context yet; the context older than its
        limit (its stream went silent); the book contradicted by the context for longer than
        its limit (its stream stopped telling us the changes); or the book's exchange time ran
        backwards within the regression window. A book that is merely old is a quiet book.
        """
        f = self.freshness
        if self.bbo_recv_ns == 0:
            return BBO_STALE
        recv = self.ctx_recv_ns
        if recv == 0 or now_ns - recv > f.ctx_age_ns:
            return CTX_STALE
        since = self.book_contradicted_ns
        if since and now_ns - since > f.bbo_age_ns:
            return BBO_STALE
        if self.time_regressions and now_ns - self.regression_recv_ns < f.regression_ns:
            return TIME_REGRESSION
        return None

    def is_fresh(self, now_ns: int) -> bool:
        return self.stale_reason(now_ns) is None

    def bbo_age_s(self, now_ns: int) -> float:
        return float("inf") if self.bbo_recv_ns == 0 else (now_ns - self.bbo_recv_ns) / 1e9

    def ctx_age_s(self, now_ns: int) -> float:
        return float("inf") if self.ctx_recv_ns == 0 else (now_ns - self.ctx_recv_ns) / 1e9

    def reference_px(self) -> Decimal | None:
        """Mark, else mid of the book: what flatten prices are computed from."""
        if self.mark_px is not None:
            return self.mark_px
        if self.bid_px is not None and self.ask_px is not None:
            return (self.bid_px + self.ask_px) / 2
        return None
