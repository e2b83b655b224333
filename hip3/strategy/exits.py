"""Exit decisions: should the position in coin X be flattened now, and why?

Pure functions of (position, clock, market state): no orders, no memory of requests. The
runtime routes a reason through the market's FlattenMachine, which owns "one flatten in flight
per market"; asking again while it is busy is harmless, so this module never has to remember
what it asked (the seed bot's local "already flattening" sets were the source of its duplicate
and of its stuck flatten orders).

- time stop: the position has been held `time_stop_s` or longer. Fires on stale data too; a
  position must never outlive its time stop because the feed went quiet.
- mark regression: after `min_hold_s`, the side we would exit into is back within
  `mark_regression_bps` of the oracle (long: bid >= oracle * (1 - N bps); short:
  ask <= oracle * (1 + N bps)): the dislocation we bought has closed. Needs fresh data.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from hip3.market.state import MarketState

if TYPE_CHECKING:
    from hip3.config import ExitsConfig

__all__ = ["MARK_REGRESSION", "TIME_STOP", "ExitParams", "ExitPolicy", "exit_limit_px"]

TIME_STOP = "time_stop"
MARK_REGRESSION = "mark_regression"

_BPS = Decimal(10_000)
_ONE = Decimal(1)


@dataclass(slots=True, frozen=True)
class ExitParams:
    time_stop_s: float = 30.0
    mark_regression_enabled: bool = True
    mark_regression_bps: Decimal = Decimal(5)
    min_hold_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.time_stop_s < float("inf"):
            raise ValueError(f"ExitParams.time_stop_s = {self.time_stop_s!r}: expected > 0")
        if not 0 <= self.min_hold_s < float("inf"):
            raise ValueError(f"ExitParams.min_hold_s = {self.min_hold_s!r}: expected >= 0")
        bps = self.mark_regression_bps
        if not isinstance(bps, Decimal) or not bps.is_finite() or bps < 0:
            raise ValueError(f"ExitParams.mark_regression_bps = {bps!r}: expected Decimal >= 0")

    @classmethod
    def from_config(cls, cfg: ExitsConfig) -> ExitParams:
        from hip3.config import as_decimal

        return cls(
            time_stop_s=cfg.time_stop_s,
            mark_regression_enabled=cfg.mark_regression_enabled,
            mark_regression_bps=as_decimal(cfg.mark_regression_bps),
            min_hold_s=cfg.min_hold_s,
        )


class ExitPolicy:
    def __init__(self, params: ExitParams) -> None:
        self.p = params
        self._time_stop_ms = params.time_stop_s * 1000
        self._min_hold_ms = params.min_hold_s * 1000
        self._band = params.mark_regression_bps / _BPS

    def check(
        self,
        *,
        coin: str,
        size: Decimal,
        entry_px: Decimal,
        opened_ms: int,
        now_wall_ms: int,
        m: MarketState,
        now_ns: int | None = None,
    ) -> str | None:
        """The exit reason for this position now, or None to keep holding.

        `now_ns` is the monotonic clock of the market state's receive times; without it the
        mark-regression exit trusts the data as fresh (the caller's own staleness rules apply).
        """
        if m.coin != coin:
            raise ValueError(f"exit check for {coin!r} given the market state of {m.coin!r}")
        if not size:
            return None
        held_ms = now_wall_ms - opened_ms
        if held_ms >= self._time_stop_ms:
            return TIME_STOP
        if not self.p.mark_regression_enabled or held_ms < self._min_hold_ms:
            return None
        if now_ns is not None and m.stale_reason(now_ns) is not None:
            return None  # stale data (the market state's one definition) cannot trigger it
        oracle = m.oracle_px
        if oracle is None or oracle <= 0:
            return None
        if size > 0:
            bid = m.bid_px
            if bid is not None and bid >= oracle * (_ONE - self._band):
                return MARK_REGRESSION
        else:
            ask = m.ask_px
            if ask is not None and ask > 0 and ask <= oracle * (_ONE + self._band):
                return MARK_REGRESSION
        return None


def exit_limit_px(size: Decimal, m: MarketState, slippage_bps: Decimal) -> Decimal | None:
    """Worst acceptable price of the IOC that closes `size`: the exit side's quote (else the
    mark) moved `slippage_bps` against us. None when there is nothing to price from."""
    if not size:
        return None
    closing_buy = size < 0
    quote = m.ask_px if closing_buy else m.bid_px
    ref = quote if quote is not None and quote > 0 else m.mark_px
    if ref is None or ref <= 0:
        return None
    slip = slippage_bps / _BPS
    return ref * (_ONE + slip) if closing_buy else ref * (_ONE - slip)
