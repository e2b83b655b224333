"""The oracle exit: leave a position by what the oracle does after the entry.

The trade buys a quote the makers left behind when the oracle moved. Two oracle runs end it:

- reversal (loss cut): `against_moves` oracle moves in a row against the position since the
  entry. The move the trade bet on is being taken back.
- catch-up (profit take): `with_moves` oracle moves in a row with the position since the entry.
  The makers are repricing; what is left of the edge is leaving.

A move is an oracle change of at least `min_move_bps` from the last counted price (smaller
changes are wiggles; the reference stays put across them, as in the detector, so slow drift
still adds up to a move). Runs are counted per position from its entry on: the market's runs
before the entry never count, so a position bought after two down-moves is not cut at its first
tick (the seed bot's global counts did that until it subtracted an entry baseline). A move one
way ends the run the other way.

Optionally:
- trailing stop: the oracle's P&L since the entry (long: (oracle - entry oracle) / entry oracle;
  short: the negative) arms the stop once its best reaches `trail_activation_bps`, and exits
  once it falls `trail_bps` below that best.
- dynamic thresholds: an entry with an edge of `high_edge_bps` or more gets one more against
  move of room (a big dislocation is given longer to pay).

Nothing fires before `min_hold_ms`; moves during the hold still count. The object is pure:
prices and times come in as arguments; it remembers one `_Run` per held market.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hip3.config import OracleExitConfig

__all__ = [
    "ORACLE_CATCHUP",
    "ORACLE_REVERSAL",
    "TRAILING_STOP",
    "OracleExit",
    "OracleExitParams",
]

ORACLE_REVERSAL = "oracle_reversal"
ORACLE_CATCHUP = "oracle_catchup"
TRAILING_STOP = "trailing_stop"


@dataclass(slots=True, frozen=True)
class OracleExitParams:
    enabled: bool = True
    against_moves: int = 2
    with_moves: int = 3
    min_hold_ms: int = 1_000
    min_move_bps: float = 2.0
    trailing_stop: bool = False
    trail_activation_bps: float = 5.0
    trail_bps: float = 3.0
    dynamic_thresholds: bool = False
    high_edge_bps: float = 40.0

    def __post_init__(self) -> None:
        if self.against_moves < 1 or self.with_moves < 1:
            raise ValueError(
                f"OracleExitParams against_moves = {self.against_moves}, with_moves = "
                f"{self.with_moves}: expected >= 1"
            )
        if self.min_hold_ms < 0:
            raise ValueError(f"OracleExitParams.min_hold_ms = {self.min_hold_ms}: expected >= 0")
        for name in ("min_move_bps", "trail_activation_bps", "high_edge_bps"):
            v = getattr(self, name)
            if not 0 <= v < float("inf"):
                raise ValueError(f"OracleExitParams.{name} = {v!r}: expected a number >= 0")
        if not 0 < self.trail_bps < float("inf"):
            raise ValueError(f"OracleExitParams.trail_bps = {self.trail_bps!r}: expected > 0")

    @classmethod
    def from_config(cls, cfg: OracleExitConfig) -> OracleExitParams:
        return cls(
            enabled=cfg.enabled,
            against_moves=cfg.against_moves,
            with_moves=cfg.with_moves,
            min_hold_ms=round(cfg.min_hold_s * 1000),
            min_move_bps=cfg.min_move_bps,
            trailing_stop=cfg.trailing_stop,
            trail_activation_bps=cfg.trail_activation_bps,
            trail_bps=cfg.trail_bps,
            dynamic_thresholds=cfg.dynamic_thresholds,
            high_edge_bps=cfg.high_edge_bps,
        )


@dataclass(slots=True)
class _Run:
    """One held position's view of the oracle since its entry."""

    is_long: bool
    opened_ms: int
    entry_oracle: Decimal
    ref_oracle: Decimal  # the last counted price: moves are measured from it
    entry_edge_bps: float | None
    against: int = 0
    with_: int = 0
    best_pnl_bps: float | None = None


class OracleExit:
    def __init__(self, params: OracleExitParams) -> None:
        self.p = params
        self._runs: dict[str, _Run] = {}

    def run(self, coin: str) -> _Run | None:
        """A held market's oracle run, for tests and diagnostics."""
        return self._runs.get(coin)

    def open(
        self,
        coin: str,
        *,
        is_long: bool,
        opened_ms: int,
        oracle_px: Decimal,
        entry_edge_bps: float | None = None,
    ) -> None:
        """A new position: its runs start at zero from this oracle price."""
        self._runs[coin] = _Run(
            is_long=is_long,
            opened_ms=opened_ms,
            entry_oracle=oracle_px,
            ref_oracle=oracle_px,
            entry_edge_bps=entry_edge_bps,
        )

    def close(self, coin: str) -> None:
        self._runs.pop(coin, None)

    def is_tracking(self, coin: str, *, is_long: bool, opened_ms: int) -> bool:
        r = self._runs.get(coin)
        return r is not None and r.is_long == is_long and r.opened_ms == opened_ms

    def on_oracle(self, coin: str, oracle_px: Decimal) -> None:
        """A new oracle price of a held market: counts a move and updates the trail."""
        r = self._runs.get(coin)
        if r is None or oracle_px <= 0:
            return
        change = float((oracle_px - r.ref_oracle) / r.ref_oracle) * 10_000
        if change and abs(change) >= self.p.min_move_bps:
            r.ref_oracle = oracle_px
            if (change > 0) == r.is_long:
                r.with_ += 1
                r.against = 0
            else:
                r.against += 1
                r.with_ = 0
        pnl = self._pnl_bps(r, oracle_px)
        if r.best_pnl_bps is None or pnl > r.best_pnl_bps:
            r.best_pnl_bps = pnl

    @staticmethod
    def _pnl_bps(r: _Run, oracle_px: Decimal) -> float:
        pnl = float((oracle_px - r.entry_oracle) / r.entry_oracle) * 10_000
        return pnl if r.is_long else -pnl

    def against_needed(self, coin: str) -> int | None:
        r = self._runs.get(coin)
        if r is None:
            return None
        p = self.p
        extra = (
            1
            if p.dynamic_thresholds
            and r.entry_edge_bps is not None
            and r.entry_edge_bps >= p.high_edge_bps
            else 0
        )
        return p.against_moves + extra

    def check(self, coin: str, *, held_ms: int, oracle_px: Decimal | None) -> str | None:
        """The oracle exit's reason for the position in `coin` now, or None."""
        p = self.p
        r = self._runs.get(coin)
        if not p.enabled or r is None or held_ms < p.min_hold_ms:
            return None
        best = r.best_pnl_bps
        if (
            p.trailing_stop
            and oracle_px is not None
            and oracle_px > 0
            and best is not None
            and best >= p.trail_activation_bps
            # a float hair under the trail (3 bps computed as 2.9999...) still counts
            and best - self._pnl_bps(r, oracle_px) >= p.trail_bps - 1e-9
        ):
            return TRAILING_STOP
        if r.against >= self.against_needed(coin):  # type: ignore[operator]
            return ORACLE_REVERSAL
        if r.with_ >= p.with_moves:
            return ORACLE_CATCHUP
        return None
