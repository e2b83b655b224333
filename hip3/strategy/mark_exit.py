"""The mark-regression exit family: leave when the book has caught up with the oracle.

Checked in this order (the first that holds is the reason):

1. quick profit (`quick_profit_bps` > 0, held >= its hold): the exit side's quote is that far
   in profit against the entry price (long: (bid - entry) / entry; short: (entry - ask) / entry).
2. edge evaporation (on, held >= its hold): the dislocation the entry took is gone from the
   entry side: long (oracle - ask) / oracle, short (bid - oracle) / oracle, at or below
   `edge_evaporation_bps`.
3. nothing else before `min_hold_ms`.
4. mark regression: long exits when bid >= oracle * (1 - t), short when ask <= oracle * (1 + t),
   where t (bps) is
   - `threshold_bps`, or max(threshold, entry edge * `entry_edge_scale_factor`) with entry-edge
     scaling (a wide entry may give back more before it is "caught up"),
   - times a decay factor when time decay is on: 1 until `decay_start_ms`, then falling linearly
     to `min_decay_factor` at the time stop (the seed bot ended its decay at a fixed 30 s
     whatever its time stop was; here it ends where the time stop does), so the bar tightens
     as the position ages;
   - unless `min_loss_exit_bps` > 0 and that exit would lose less than it (0 < loss < min):
     such a small loss is left to the oracle exit and the time stop. A profit always exits.

Pure: every price and time comes in as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "EDGE_EVAPORATION",
    "MARK_REGRESSION",
    "QUICK_PROFIT",
    "MarkExit",
    "MarkExitParams",
]

MARK_REGRESSION = "mark_regression"
QUICK_PROFIT = "quick_profit"
EDGE_EVAPORATION = "edge_evaporation"

_BPS = Decimal(10_000)
_ONE = Decimal(1)
_ZERO = Decimal(0)


def _bps_param(name: str, v: object, *, positive: bool = False) -> None:
    if not isinstance(v, Decimal) or not v.is_finite() or v < 0 or (positive and v == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"MarkExitParams.{name} = {v!r}: expected a finite Decimal {bound}")


@dataclass(slots=True, frozen=True)
class MarkExitParams:
    enabled: bool = True
    threshold_bps: Decimal = Decimal(5)
    min_hold_ms: int = 1_000
    time_stop_ms: int = 30_000  # where the time decay ends
    time_decay: bool = False
    decay_start_ms: int = 5_000
    min_decay_factor: Decimal = Decimal("0.2")
    min_loss_exit_bps: Decimal = _ZERO
    entry_edge_scaling: bool = False
    entry_edge_scale_factor: Decimal = Decimal("0.5")
    quick_profit_bps: Decimal = _ZERO
    quick_profit_min_hold_ms: int = 500
    edge_evaporation: bool = False
    edge_evaporation_min_hold_ms: int = 500
    edge_evaporation_bps: Decimal = Decimal(2)

    def __post_init__(self) -> None:
        for name in (
            "threshold_bps",
            "min_loss_exit_bps",
            "entry_edge_scale_factor",
            "quick_profit_bps",
            "edge_evaporation_bps",
        ):
            _bps_param(name, getattr(self, name))
        f = self.min_decay_factor
        if not isinstance(f, Decimal) or not 0 <= f <= 1:
            raise ValueError(f"MarkExitParams.min_decay_factor = {f!r}: expected 0 <= x <= 1")
        for name in (
            "min_hold_ms",
            "decay_start_ms",
            "quick_profit_min_hold_ms",
            "edge_evaporation_min_hold_ms",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"MarkExitParams.{name} = {getattr(self, name)}: expected >= 0")
        if self.time_decay and self.decay_start_ms >= self.time_stop_ms:
            raise ValueError(
                f"MarkExitParams.decay_start_ms = {self.decay_start_ms}: expected < the time "
                f"stop ({self.time_stop_ms} ms), where the decay ends"
            )

    def decay_factor(self, held_ms: int) -> Decimal:
        """1 until the decay starts, then linear down to `min_decay_factor` at the time stop."""
        if not self.time_decay or held_ms <= self.decay_start_ms:
            return _ONE
        if held_ms >= self.time_stop_ms:
            return self.min_decay_factor
        span = Decimal(self.time_stop_ms - self.decay_start_ms)
        done = Decimal(held_ms - self.decay_start_ms) / span
        return _ONE - (_ONE - self.min_decay_factor) * done

    def threshold(self, held_ms: int, entry_edge_bps: Decimal | None) -> Decimal:
        """The mark-regression band in bps for a position of this age and entry edge."""
        t = self.threshold_bps
        if self.entry_edge_scaling and entry_edge_bps is not None:
            scaled = entry_edge_bps * self.entry_edge_scale_factor
            if scaled > t:
                t = scaled
        return t * self.decay_factor(held_ms)


class MarkExit:
    def __init__(self, params: MarkExitParams) -> None:
        self.p = params

    def check(
        self,
        *,
        is_long: bool,
        entry_px: Decimal,
        held_ms: int,
        bid: Decimal | None,
        ask: Decimal | None,
        oracle: Decimal | None,
        entry_edge_bps: Decimal | None = None,
    ) -> str | None:
        p = self.p
        if not p.enabled:
            return None
        exit_px = bid if is_long else ask  # the side the position is closed into
        if exit_px is not None and exit_px <= 0:
            exit_px = None
        if (
            p.quick_profit_bps
            and held_ms >= p.quick_profit_min_hold_ms
            and exit_px is not None
            and entry_px > 0
            and self._pnl_bps(is_long, entry_px, exit_px) >= p.quick_profit_bps
        ):
            return QUICK_PROFIT
        if oracle is None or oracle <= 0:
            return None
        if p.edge_evaporation and held_ms >= p.edge_evaporation_min_hold_ms:
            entry_side = ask if is_long else bid
            if entry_side is not None and entry_side > 0:
                left = (oracle - entry_side if is_long else entry_side - oracle) / oracle * _BPS
                if left <= p.edge_evaporation_bps:
                    return EDGE_EVAPORATION
        if held_ms < p.min_hold_ms or exit_px is None:
            return None
        band = p.threshold(held_ms, entry_edge_bps) / _BPS
        caught_up = (
            exit_px >= oracle * (_ONE - band) if is_long else exit_px <= oracle * (_ONE + band)
        )
        if not caught_up:
            return None
        if p.min_loss_exit_bps and entry_px > 0:
            pnl = self._pnl_bps(is_long, entry_px, exit_px)
            if pnl < 0 and -pnl < p.min_loss_exit_bps:
                return None  # a small loss: left to the oracle exit and the time stop
        return MARK_REGRESSION

    @staticmethod
    def _pnl_bps(is_long: bool, entry_px: Decimal, exit_px: Decimal) -> Decimal:
        move = (exit_px - entry_px) / entry_px * _BPS
        return move if is_long else -move
