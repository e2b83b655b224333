"""Exit decisions: should the position in coin X be flattened now, and why?

`ExitPolicy` is the one facade the runtime asks; it combines, in this order:

- time stop: the position has been held `time_stop_s` or longer. Fires on stale data too; a
  position must never outlive its time stop because the feed went quiet.
- the mark-regression family (`hip3.strategy.mark_exit`): quick profit, edge evaporation, and
  the book back within a band of the oracle (band scaled by the entry edge, decayed with age,
  small losses left alone), after `min_hold_s`.
- the oracle exit (`hip3.strategy.oracle_exit`): oracle moves against the position (reversal)
  or with it (catch-up) since the entry, and an optional trailing stop on the oracle's P&L.

Stale data (the market state's one definition) triggers none but the time stop. The runtime
routes a reason through the market's FlattenMachine, which owns "one flatten in flight per
market"; asking again while it is busy is harmless, so no request is remembered here (the seed
bot's local "already flattening" sets were the source of its duplicate and of its stuck flatten
orders). What is remembered is each held position's oracle run, keyed by its side and opening
time, so a new position in the same market starts from zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from hip3.market.state import MarketState
from hip3.strategy.mark_exit import MARK_REGRESSION, MarkExit, MarkExitParams
from hip3.strategy.oracle_exit import OracleExit, OracleExitParams

if TYPE_CHECKING:
    from hip3.config import ExitsConfig, OracleExitConfig

__all__ = ["MARK_REGRESSION", "TIME_STOP", "ExitParams", "ExitPolicy", "exit_limit_px"]

TIME_STOP = "time_stop"

_BPS = Decimal(10_000)
_ONE = Decimal(1)


@dataclass(slots=True, frozen=True)
class ExitParams:
    time_stop_s: float = 30.0
    mark_regression_enabled: bool = True
    mark_regression_bps: Decimal = Decimal(5)
    min_hold_s: float = 1.0
    # the mark-regression extras; their enabled/threshold/hold/time-stop come from the above
    mark: MarkExitParams = field(default_factory=MarkExitParams)
    oracle: OracleExitParams = field(default_factory=OracleExitParams)

    def __post_init__(self) -> None:
        if not 0 < self.time_stop_s < float("inf"):
            raise ValueError(f"ExitParams.time_stop_s = {self.time_stop_s!r}: expected > 0")
        if not 0 <= self.min_hold_s < float("inf"):
            raise ValueError(f"ExitParams.min_hold_s = {self.min_hold_s!r}: expected >= 0")
        bps = self.mark_regression_bps
        if not isinstance(bps, Decimal) or not bps.is_finite() or bps < 0:
            raise ValueError(f"ExitParams.mark_regression_bps = {bps!r}: expected Decimal >= 0")

    def mark_params(self) -> MarkExitParams:
        """The mark family's parameters with this policy's switch, band, hold and time stop."""
        return replace(
            self.mark,
            enabled=self.mark_regression_enabled,
            threshold_bps=self.mark_regression_bps,
            min_hold_ms=round(self.min_hold_s * 1000),
            time_stop_ms=round(self.time_stop_s * 1000),
        )

    @classmethod
    def from_config(cls, cfg: ExitsConfig, oracle: OracleExitConfig | None = None) -> ExitParams:
        from hip3.config import as_decimal

        def ms(s: float) -> int:
            return round(s * 1000)

        mark = MarkExitParams(
            time_stop_ms=ms(cfg.time_stop_s),
            time_decay=cfg.time_decay_enabled,
            decay_start_ms=ms(cfg.decay_start_s),
            min_decay_factor=as_decimal(cfg.min_decay_factor),
            min_loss_exit_bps=as_decimal(cfg.min_loss_exit_bps),
            entry_edge_scaling=cfg.entry_edge_scaling,
            entry_edge_scale_factor=as_decimal(cfg.entry_edge_scale_factor),
            quick_profit_bps=as_decimal(cfg.quick_profit_bps),
            quick_profit_min_hold_ms=ms(cfg.quick_profit_min_hold_s),
            edge_evaporation=cfg.edge_evaporation_enabled,
            edge_evaporation_min_hold_ms=ms(cfg.edge_evaporation_min_hold_s),
            edge_evaporation_bps=as_decimal(cfg.edge_evaporation_bps),
        )
        return cls(
            time_stop_s=cfg.time_stop_s,
            mark_regression_enabled=cfg.mark_regression_enabled,
            mark_regression_bps=as_decimal(cfg.mark_regression_bps),
            min_hold_s=cfg.min_hold_s,
            mark=mark,
            oracle=OracleExitParams() if oracle is None else OracleExitParams.from_config(oracle),
        )


def _no_edge(coin: str) -> float | None:
    return None


class ExitPolicy:
    """`entry_edge(coin)` says the edge (bps) of the last entry sent in that market, for the
    exits that depend on it (entry-edge scaling, dynamic oracle thresholds); None: unknown."""

    def __init__(
        self, params: ExitParams, *, entry_edge: Callable[[str], float | None] = _no_edge
    ) -> None:
        self.p = params
        # whole milliseconds: 2.031 s * 1000 is 2031.0000000000002 in floats, which let a
        # position held exactly 2031 ms outlive its time stop
        self._time_stop_ms = round(params.time_stop_s * 1000)
        self.mark = MarkExit(params.mark_params())
        self.oracle = OracleExit(params.oracle)
        self._entry_edge = entry_edge
        self._ctx_seen: dict[str, int] = {}

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
        data-driven exits trust the data as fresh (the caller's own staleness rules apply).
        Call it on every update of the held market (book and context) so that every oracle
        move is counted.
        """
        if m.coin != coin:
            raise ValueError(f"exit check for {coin!r} given the market state of {m.coin!r}")
        if not size:
            self.oracle.close(coin)
            return None
        is_long = size > 0
        oracle = m.oracle_px
        self._follow_oracle(coin, is_long, opened_ms, m)
        held_ms = now_wall_ms - opened_ms
        if held_ms >= self._time_stop_ms:
            return TIME_STOP
        if now_ns is not None and m.stale_reason(now_ns) is not None:
            return None  # stale data (the market state's one definition) cannot trigger it
        edge = self._entry_edge(coin)
        reason = self.mark.check(
            is_long=is_long,
            entry_px=entry_px,
            held_ms=held_ms,
            bid=m.bid_px,
            ask=m.ask_px,
            oracle=oracle,
            entry_edge_bps=None if edge is None else Decimal(repr(edge)),
        )
        if reason is not None:
            return reason
        return self.oracle.check(coin, held_ms=held_ms, oracle_px=oracle)

    def _follow_oracle(self, coin: str, is_long: bool, opened_ms: int, m: MarketState) -> None:
        """Start the position's oracle run at its first check; count each new context after."""
        oracle = m.oracle_px
        if oracle is None or oracle <= 0:
            return
        seen = self._ctx_seen.get(coin)
        self._ctx_seen[coin] = m.ctx_updates
        if not self.oracle.is_tracking(coin, is_long=is_long, opened_ms=opened_ms):
            self.oracle.open(
                coin,
                is_long=is_long,
                opened_ms=opened_ms,
                oracle_px=oracle,
                entry_edge_bps=self._entry_edge(coin),
            )
        elif seen != m.ctx_updates:
            self.oracle.on_oracle(coin, oracle)


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
