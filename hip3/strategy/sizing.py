"""Sizing rules that depend on the time of day or the account, kept pure (times and amounts in).

- `SessionSchedule`: around the US cash-equity session the HIP-3 equity markets' oracles move
  fastest and makers reprice hardest, so entries there need more edge and get less size:
  14:30-16:00 UTC (the open) multiplies the edge threshold by `open_threshold_mult` (2.0) and
  the size by `open_size_mult` (0.5); 16:00-21:00 UTC (the rest of the session) by
  `day_threshold_mult` (1.5) and `day_size_mult` (0.75); otherwise by 1. Windows are
  half-open, [start, end). The time is the exchange's own timestamp of the book being judged.
- `market_notional_cap`: with dynamic sizing the per-market notional cap is the smaller of the
  static cap and `risk_per_market` times the account value of the market's dex; an unknown or
  empty account value leaves the static cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hip3.protocol.numbers import finite_decimal

if TYPE_CHECKING:
    from hip3.config import DetectorConfig

__all__ = ["SessionSchedule", "account_value_of", "market_notional_cap"]

_ONE = Decimal(1)
_DAY_MS = 86_400_000
_OPEN = (14 * 60 + 30, 16 * 60)  # minutes of the UTC day
_DAY = (16 * 60, 21 * 60)


@dataclass(slots=True, frozen=True)
class SessionSchedule:
    enabled: bool = False
    open_threshold_mult: Decimal = Decimal(2)
    open_size_mult: Decimal = Decimal("0.5")
    day_threshold_mult: Decimal = Decimal("1.5")
    day_size_mult: Decimal = Decimal("0.75")

    def __post_init__(self) -> None:
        for name in ("open_threshold_mult", "day_threshold_mult"):
            v = getattr(self, name)
            if not isinstance(v, Decimal) or not v >= 1:
                raise ValueError(f"SessionSchedule.{name} = {v!r}: expected a Decimal >= 1")
        for name in ("open_size_mult", "day_size_mult"):
            v = getattr(self, name)
            if not isinstance(v, Decimal) or not 0 < v <= 1:
                raise ValueError(f"SessionSchedule.{name} = {v!r}: expected 0 < x <= 1")

    @classmethod
    def from_config(cls, d: DetectorConfig) -> SessionSchedule:
        from hip3.config import as_decimal

        return cls(
            enabled=d.session_aware,
            open_threshold_mult=as_decimal(d.session_open_threshold_mult),
            open_size_mult=as_decimal(d.session_open_size_mult),
            day_threshold_mult=as_decimal(d.session_day_threshold_mult),
            day_size_mult=as_decimal(d.session_day_size_mult),
        )

    def multipliers(self, wall_ms: int) -> tuple[Decimal, Decimal]:
        """(threshold multiplier, size multiplier) at the UTC time `wall_ms`."""
        if not self.enabled:
            return _ONE, _ONE
        minute = wall_ms % _DAY_MS // 60_000
        if _OPEN[0] <= minute < _OPEN[1]:
            return self.open_threshold_mult, self.open_size_mult
        if _DAY[0] <= minute < _DAY[1]:
            return self.day_threshold_mult, self.day_size_mult
        return _ONE, _ONE


def market_notional_cap(
    static_cap: Decimal, account_value: Decimal | None, risk_per_market: Decimal | None
) -> Decimal:
    """The per-market notional cap: `static_cap`, lowered to `account_value x risk_per_market`
    when dynamic sizing is on (`risk_per_market` given) and the account value is known."""
    if risk_per_market is None or account_value is None or account_value <= 0:
        return static_cap
    dynamic = account_value * risk_per_market
    return dynamic if dynamic < static_cap else static_cap


def account_value_of(state: Any) -> Decimal | None:
    """`marginSummary.accountValue` of a clearinghouseState answer, or None when it has none
    that is a finite number."""
    summary = state.get("marginSummary") if isinstance(state, dict) else None
    value = summary.get("accountValue") if isinstance(summary, dict) else None
    return finite_decimal(value)
