"""Market gates: may this market's data be traded on right now?

One `MarketGates` per market, never shared: the seed bot ran one gate for all markets, so one
market's spreads moved another market's shock threshold and one market's clock glitch blocked
them all. Checks run in a fixed order and stop at the first block, so a stale book never feeds
the spread statistics and the reason counted is the most basic one:

    bbo age, ctx age, time regression, mark-mid divergence, spread shock, OI cap,
    parameter change, halt

The spread-shock gate has two tiers, and both take effect: above `ewma * multiplier` the
result asks for a smaller size (`size_factor`), above `ewma * multiplier * block_multiplier`
it blocks. Blocks are counted by reason on every check; a log line is written only when the
outcome changes, so a market stuck behind one gate does not flood the log.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from hip3.market.state import MarketSpec, MarketState

if TYPE_CHECKING:
    from hip3.config import GatesConfig

__all__ = [
    "BBO_STALE",
    "CTX_STALE",
    "HALTED",
    "MARK_MID_DIVERGENCE",
    "NO_BOOK",
    "OI_CAP",
    "PARAM_CHANGE",
    "SPREAD_SHOCK",
    "TIME_REGRESSION",
    "GateParams",
    "GateResult",
    "MarketGates",
]

log = logging.getLogger(__name__)

BBO_STALE = "bbo_stale"
CTX_STALE = "ctx_stale"
TIME_REGRESSION = "time_regression"
NO_BOOK = "no_book"
MARK_MID_DIVERGENCE = "mark_mid_divergence"
SPREAD_SHOCK = "spread_shock"
OI_CAP = "oi_cap"
PARAM_CHANGE = "param_change"
HALTED = "halted"

_ONE = Decimal(1)


@dataclass(slots=True, frozen=True)
class GateResult:
    ok: bool
    reason: str | None
    size_factor: Decimal


_PASS = GateResult(True, None, _ONE)


@dataclass(slots=True, frozen=True)
class GateParams:
    """Thresholds; a 0 for an age or the divergence disables that gate."""

    max_bbo_age_s: float = 2.0
    max_ctx_age_s: float = 8.0
    # After the book's exchange time runs backwards, distrust the feed this long.
    time_regression_block_s: float = 10.0
    max_mark_mid_divergence_bps: float = 50.0
    spread_ewma_alpha: float = 0.05
    # Samples before the spread EWMA is trusted; until then the shock gate passes.
    spread_min_samples: int = 20
    spread_shock_multiplier: float = 3.0
    spread_shock_block_multiplier: float = 2.0
    spread_shock_size_factor: Decimal = Decimal("0.2")

    def __post_init__(self) -> None:
        for name in (
            "max_bbo_age_s",
            "max_ctx_age_s",
            "time_regression_block_s",
            "max_mark_mid_divergence_bps",
        ):
            value = getattr(self, name)
            if not value >= 0 or value == float("inf"):
                raise ValueError(f"GateParams.{name} = {value!r}: expected a finite number >= 0")
        if not 0 < self.spread_ewma_alpha <= 1:
            raise ValueError(
                f"GateParams.spread_ewma_alpha = {self.spread_ewma_alpha!r}: expected 0 < x <= 1"
            )
        if self.spread_min_samples < 1:
            raise ValueError(
                f"GateParams.spread_min_samples = {self.spread_min_samples!r}: expected >= 1"
            )
        if not self.spread_shock_multiplier >= 1 or not self.spread_shock_block_multiplier >= 1:
            raise ValueError("GateParams spread shock multipliers must be >= 1")
        if not 0 < self.spread_shock_size_factor <= 1:
            raise ValueError(
                f"GateParams.spread_shock_size_factor = {self.spread_shock_size_factor}: "
                "expected 0 < x <= 1"
            )

    @classmethod
    def from_config(cls, cfg: GatesConfig) -> GateParams:
        from hip3.config import as_decimal

        return cls(
            max_bbo_age_s=cfg.max_bbo_age_s,
            max_ctx_age_s=cfg.max_ctx_age_s,
            time_regression_block_s=cfg.time_regression_block_s,
            max_mark_mid_divergence_bps=cfg.max_mark_mid_divergence_bps,
            spread_ewma_alpha=cfg.spread_ewma_alpha,
            spread_min_samples=cfg.spread_min_samples,
            spread_shock_multiplier=cfg.spread_shock_multiplier,
            spread_shock_block_multiplier=cfg.spread_shock_block_multiplier,
            spread_shock_size_factor=as_decimal(cfg.spread_shock_size_factor),
        )


def _spec_key(spec: MarketSpec) -> tuple[int, int, Decimal, bool]:
    # The facts that change lot rounding, asset routing or fees: trading on with a stale copy
    # sends wrong sizes to the wrong asset or under-prices the edge.
    return (spec.asset, spec.sz_decimals, spec.deployer_fee_scale, spec.growth_mode)


class MarketGates:
    """The gate chain of one market; its spread statistics see only this market's books."""

    __slots__ = (
        "_bbo_seen",
        "_blocked",
        "_last_reason",
        "_reduced",
        "_regression_until_ns",
        "_regressions_seen",
        "_shock_level",
        "_spec_key",
        "coin",
        "counts",
        "halted",
        "oi_capped",
        "p",
        "param_changed",
        "spread_ewma",
        "spread_samples",
    )

    def __init__(self, coin: str, params: GateParams) -> None:
        self.coin = coin
        self.p = params
        self.counts: Counter[str] = Counter()
        self.spread_ewma: float | None = None
        self.spread_samples = 0
        self.oi_capped = False
        self.halted = False
        self.param_changed = False
        self._spec_key: tuple[int, int, Decimal, bool] | None = None
        self._bbo_seen = 0
        self._regressions_seen = 0
        self._regression_until_ns: int | None = None
        self._shock_level = 0  # 0 calm, 1 reduce, 2 block: judged once per new book
        self._reduced = GateResult(True, SPREAD_SHOCK, params.spread_shock_size_factor)
        self._blocked = {
            r: GateResult(False, r, Decimal(0))
            for r in (
                BBO_STALE,
                CTX_STALE,
                TIME_REGRESSION,
                NO_BOOK,
                MARK_MID_DIVERGENCE,
                SPREAD_SHOCK,
                OI_CAP,
                PARAM_CHANGE,
                HALTED,
            )
        }
        self._last_reason: str | None = None

    # -- inputs besides market data ------------------------------------------------------------

    def on_params(self, spec: MarketSpec) -> None:
        """Record discovery's facts; a later change latches the ParamChange block."""
        if spec.coin != self.coin:
            raise ValueError(f"MarketGates({self.coin!r}) given the spec of {spec.coin!r}")
        key = _spec_key(spec)
        if self._spec_key is None:
            self._spec_key = key
        elif key != self._spec_key and not self.param_changed:
            self.param_changed = True
            log.warning(
                "%s: market parameters changed (asset, szDecimals, fee scale, growth mode) "
                "%s -> %s; entries blocked until accepted",
                self.coin,
                self._spec_key,
                key,
            )

    def accept_params(self, spec: MarketSpec) -> None:
        """An operator (or a restart) accepts the new parameters: rebase and unblock."""
        if spec.coin != self.coin:
            raise ValueError(f"MarketGates({self.coin!r}) given the spec of {spec.coin!r}")
        self._spec_key = _spec_key(spec)
        self.param_changed = False

    def set_oi_capped(self, capped: bool) -> None:
        self.oi_capped = bool(capped)

    def set_halted(self, halted: bool) -> None:
        self.halted = bool(halted)

    # -- the chain -----------------------------------------------------------------------------

    def check(self, m: MarketState, now_ns: int) -> GateResult:
        result = self._evaluate(m, now_ns)
        reason = result.reason
        if not result.ok:
            self.counts[reason] += 1  # type: ignore[index]
        if reason != self._last_reason:
            self._log_change(result)
            self._last_reason = reason
        return result

    def _evaluate(self, m: MarketState, now_ns: int) -> GateResult:
        p = self.p
        blocked = self._blocked
        # the ages as MarketState.bbo_age_s/ctx_age_s compute them, without the method calls
        limit = p.max_bbo_age_s
        if limit:
            recv = m.bbo_recv_ns
            if recv == 0 or (now_ns - recv) / 1e9 > limit:
                return blocked[BBO_STALE]
        limit = p.max_ctx_age_s
        if limit:
            recv = m.ctx_recv_ns
            if recv == 0 or (now_ns - recv) / 1e9 > limit:
                return blocked[CTX_STALE]
        if (
            m.time_regressions != self._regressions_seen or self._regression_until_ns is not None
        ) and self._time_regressed(m, now_ns):
            return blocked[TIME_REGRESSION]

        # gate statistics are floats: exact enough, and several times cheaper than Decimal
        bid = 0.0 if m.bid_px is None else float(m.bid_px)
        ask = 0.0 if m.ask_px is None else float(m.ask_px)
        two_sided = bid > 0 and ask > bid
        if p.max_mark_mid_divergence_bps:
            mark = m.mark_px
            if not two_sided or mark is None:
                return blocked[NO_BOOK]
            mid = (bid + ask) / 2
            if abs(float(mark) - mid) / mid * 10_000 > p.max_mark_mid_divergence_bps:
                return blocked[MARK_MID_DIVERGENCE]

        if m.bbo_updates != self._bbo_seen:
            self._bbo_seen = m.bbo_updates
            self._shock_level = self._observe_spread(bid, ask) if two_sided else 0
        shock = self._shock_level

        if shock == 2:
            return blocked[SPREAD_SHOCK]
        if self.oi_capped:
            return blocked[OI_CAP]
        if self.param_changed:
            return blocked[PARAM_CHANGE]
        if self.halted:
            return blocked[HALTED]
        return self._reduced if shock == 1 else _PASS

    def _time_regressed(self, m: MarketState, now_ns: int) -> bool:
        if m.time_regressions != self._regressions_seen:
            self._regressions_seen = m.time_regressions
            self._regression_until_ns = now_ns + int(self.p.time_regression_block_s * 1e9)
        until = self._regression_until_ns
        if until is None:
            return False
        if now_ns < until:
            return True
        self._regression_until_ns = None
        return False

    def _observe_spread(self, bid: float, ask: float) -> int:
        """Judge the new book's spread against the EWMA of earlier books, then learn it.

        The judgement uses the average *before* this sample, so a shock cannot dilute its own
        threshold; the sample is learned afterwards whatever the verdict, so a lasting change
        of regime becomes the new normal instead of blocking forever.
        """
        spread_bps = (ask - bid) / ((bid + ask) / 2) * 10_000
        ewma, p = self.spread_ewma, self.p
        level = 0
        if ewma is not None and self.spread_samples >= p.spread_min_samples:
            reduce_above = ewma * p.spread_shock_multiplier
            if spread_bps > reduce_above * p.spread_shock_block_multiplier:
                level = 2
            elif spread_bps > reduce_above:
                level = 1
        if ewma is None:
            self.spread_ewma = spread_bps
        else:
            self.spread_ewma = ewma + p.spread_ewma_alpha * (spread_bps - ewma)
        self.spread_samples += 1
        return level

    def _log_change(self, result: GateResult) -> None:
        if result.ok and result.reason is None:
            if self._last_reason is not None:
                log.info("%s: market gates pass again (was %s)", self.coin, self._last_reason)
        elif result.ok:
            log.info("%s: spread shock, size x%s", self.coin, result.size_factor)
        else:
            log.info("%s: entries blocked: %s", self.coin, result.reason)
