"""Market gates: may this market's data be traded on right now?

One `MarketGates` per market, never shared: the seed bot ran one gate for all markets, so one
market's spreads moved another market's shock threshold and one market's clock glitch blocked
them all. Checks run in a fixed order and stop at the first block, so a stale book never feeds
a verdict and the reason counted is the most basic one:

    fresh data (MarketState.stale_reason: bbo age, ctx age, time regression), halted,
    mark-mid divergence, spread shock, OI cap, parameter change

Every input is what the exchange says: freshness and halts come from the market state, the OI
cap from the exchange's list of capped markets, the parameter change from discovery. The
spread-shock gate has two tiers, and both take effect: above `ewma * multiplier` the result
asks for a smaller size (`size_factor`), above `ewma * multiplier * block_multiplier` it
blocks; the EWMA is the market's one `SpreadEwma`, which the detector's adaptive threshold
reads too. Blocks are counted by reason on every check; a log line is written only when the
outcome changes, so a market stuck behind one gate does not flood the log.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from hip3.market.state import BBO_STALE, CTX_STALE, TIME_REGRESSION, MarketSpec, MarketState

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

NO_BOOK = "no_book"
MARK_MID_DIVERGENCE = "mark_mid_divergence"
SPREAD_SHOCK = "spread_shock"
OI_CAP = "oi_cap"
PARAM_CHANGE = "param_change"
HALTED = "halted"
DELISTED = "delisted"

_ONE = Decimal(1)


@dataclass(slots=True, frozen=True)
class GateResult:
    ok: bool
    reason: str | None
    size_factor: Decimal


_PASS = GateResult(True, None, _ONE)


@dataclass(slots=True, frozen=True)
class GateParams:
    """Thresholds; a 0 for the divergence disables that gate. Freshness is not here: it is
    the market state's one definition."""

    max_mark_mid_divergence_bps: float = 50.0
    # Samples before the spread EWMA is trusted; until then the shock gate passes.
    spread_min_samples: int = 20
    spread_shock_multiplier: float = 3.0
    spread_shock_block_multiplier: float = 2.0
    spread_shock_size_factor: Decimal = Decimal("0.2")

    def __post_init__(self) -> None:
        value = self.max_mark_mid_divergence_bps
        if not value >= 0 or value == float("inf"):
            raise ValueError(
                f"GateParams.max_mark_mid_divergence_bps = {value!r}: expected a finite number >= 0"
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
            max_mark_mid_divergence_bps=cfg.max_mark_mid_divergence_bps,
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
    """The gate chain of one market; its verdicts see only this market's state."""

    __slots__ = (
        "_accepted_key",
        "_bbo_seen",
        "_blocked",
        "_last_reason",
        "_latest_key",
        "_reduced",
        "_shock_level",
        "coin",
        "counts",
        "delisted",
        "oi_capped",
        "p",
        "param_changed",
    )

    def __init__(self, coin: str, params: GateParams) -> None:
        self.coin = coin
        self.p = params
        self.counts: Counter[str] = Counter()
        self.oi_capped = False
        self.delisted = False
        self.param_changed = False
        self._accepted_key: tuple[int, int, Decimal, bool] | None = None
        self._latest_key: tuple[int, int, Decimal, bool] | None = None
        self._bbo_seen = 0
        self._shock_level = 0  # 0 calm, 1 reduce, 2 block: judged once per new book
        self._reduced = GateResult(True, SPREAD_SHOCK, params.spread_shock_size_factor)
        self._blocked = {
            r: GateResult(False, r, Decimal(0))
            for r in (
                BBO_STALE,
                CTX_STALE,
                TIME_REGRESSION,
                HALTED,
                NO_BOOK,
                MARK_MID_DIVERGENCE,
                SPREAD_SHOCK,
                OI_CAP,
                PARAM_CHANGE,
                DELISTED,
            )
        }
        self._last_reason: str | None = None

    # -- inputs besides market data ------------------------------------------------------------

    def on_params(self, spec: MarketSpec) -> None:
        """Record discovery's facts. A change from the accepted ones latches the ParamChange
        block; the latch opens again when they change back, or when an operator accepts them."""
        if spec.coin != self.coin:
            raise ValueError(f"MarketGates({self.coin!r}) given the spec of {spec.coin!r}")
        key = _spec_key(spec)
        self._latest_key = key
        if self._accepted_key is None:
            self._accepted_key = key
        elif key == self._accepted_key:
            if self.param_changed:
                self.param_changed = False
                log.info("%s: market parameters are back to the accepted ones %s", self.coin, key)
        elif not self.param_changed:
            self.param_changed = True
            log.warning(
                "%s: market parameters changed (asset, szDecimals, fee scale, growth mode) "
                "%s -> %s; entries blocked until they change back or an operator accepts them",
                self.coin,
                self._accepted_key,
                key,
            )

    def accept_params(self) -> bool:
        """The operator accepts the parameters discovery saw last: rebase on them and unblock.
        False when nothing was latched."""
        if not self.param_changed:
            return False
        log.warning(
            "%s: operator accepted the new market parameters %s", self.coin, self._latest_key
        )
        self._accepted_key = self._latest_key
        self.param_changed = False
        return True

    def set_oi_capped(self, capped: bool) -> None:
        self.oi_capped = bool(capped)

    def set_delisted(self, delisted: bool) -> None:
        """Discovery lists the market as delisted: it blocks before anything else is asked."""
        self.delisted = bool(delisted)

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
        if self.delisted:
            return blocked[DELISTED]
        stale = m.stale_reason(now_ns)
        if stale is not None:
            return blocked[stale]
        if m.halted:
            return blocked[HALTED]

        # gate statistics are floats: exact enough, and several times cheaper than Decimal
        bid, ask = m.bid_f, m.ask_f
        two_sided = bid > 0 and ask > bid
        if p.max_mark_mid_divergence_bps:
            mark = m.mark_px
            if not two_sided or mark is None:
                return blocked[NO_BOOK]
            mid = (bid + ask) / 2
            if abs(m.mark_f - mid) / mid * 10_000 > p.max_mark_mid_divergence_bps:
                return blocked[MARK_MID_DIVERGENCE]

        if m.bbo_updates != self._bbo_seen:
            self._bbo_seen = m.bbo_updates
            self._shock_level = self._judge_spread(m, bid, ask) if two_sided else 0
        shock = self._shock_level

        if shock == 2:
            return blocked[SPREAD_SHOCK]
        if self.oi_capped:
            return blocked[OI_CAP]
        if self.param_changed:
            return blocked[PARAM_CHANGE]
        return self._reduced if shock == 1 else _PASS

    def _judge_spread(self, m: MarketState, bid: float, ask: float) -> int:
        """The latest book's spread against the market's EWMA of the books before it."""
        ewma, p = m.spread.before, self.p
        if ewma is None or m.spread.samples - 1 < p.spread_min_samples:
            return 0
        spread_bps = (ask - bid) / ((bid + ask) / 2) * 10_000
        reduce_above = ewma * p.spread_shock_multiplier
        if spread_bps > reduce_above * p.spread_shock_block_multiplier:
            return 2
        if spread_bps > reduce_above:
            return 1
        return 0

    def _log_change(self, result: GateResult) -> None:
        if result.ok and result.reason is None:
            if self._last_reason is not None:
                log.info("%s: market gates pass again (was %s)", self.coin, self._last_reason)
        elif result.ok:
            log.info("%s: spread shock, size x%s", self.coin, result.size_factor)
        else:
            log.info("%s: entries blocked: %s", self.coin, result.reason)


def accept_changed_params(gates: dict[str, MarketGates]) -> list[str]:
    """The operator's "accept the new market parameters" (SIGHUP): every market whose
    ParamChange latch is closed rebases on what discovery saw last. Returns those markets."""
    return [coin for coin, gate in gates.items() if gate.accept_params()]
