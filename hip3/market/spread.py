"""One market's spread statistics: an exponentially weighted average of its books' spreads.

Both the detector's adaptive threshold and the spread-shock gate read this one average, so
they can never disagree about what "the usual spread" of a market is. It learns every new
two-sided book once (in `MarketState.on_bbo`) and keeps the average as it was *before* the
latest book beside the current one: a book is judged against its predecessors, so a shock
cannot dilute its own threshold, and it is learned afterwards whatever the verdict, so a lasting
change of regime becomes the new normal instead of blocking forever.
"""

from __future__ import annotations

__all__ = ["SpreadEwma"]


class SpreadEwma:
    """Spread in bps, averaged with weight `alpha` per new two-sided book."""

    __slots__ = ("alpha", "before", "samples", "value")

    def __init__(self, alpha: float = 0.05) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"spread EWMA alpha = {alpha!r}: expected 0 < x <= 1")
        self.alpha = alpha
        self.value: float | None = None  # including the latest book
        self.before: float | None = None  # as it was before the latest book
        self.samples = 0  # books learned, the latest included

    def observe(self, bid: float, ask: float) -> None:
        """Learn one book; a one-sided, crossed or non-positive book teaches nothing."""
        if bid <= 0 or ask <= bid:
            return
        spread_bps = (ask - bid) / ((bid + ask) / 2) * 10_000
        ewma = self.value
        self.before = ewma
        self.value = spread_bps if ewma is None else ewma + self.alpha * (spread_bps - ewma)
        self.samples += 1
