"""Market feeds: a seeded oracle process per market and makers whose quotes lag it.

This is what makes the simulator worth trading against. On HIP-3 books the deployer's
oracle moves first and the makers follow late, so for a moment the book is stale: the best
ask sits below the new oracle (or the best bid above it). Here each maker quotes around the
oracle as it was `lag_ms` ago, so every jump or fast drift opens a real, takeable gap that
closes when the makers catch up.

Everything is counted in ticks, not wall time, so a run is a pure function of the scenario
and the seed: two runs with the same seed see the same prices tick for tick.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import deque
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from functools import partial
from typing import Any

from hip3.sim.scenario import MakerParams, OracleParams, Scenario

log = logging.getLogger(__name__)

_BPS = 1e-4
MAX_SIG_FIGS = 5
PERP_MAX_DECIMALS = 6


def valid_px(px: Decimal, sz_decimals: int, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """Round to the exchange's price rules: 5 significant figures, 6 - szDecimals decimals.

    Integer prices are always valid, whatever their number of figures.
    """
    max_decimals = PERP_MAX_DECIMALS - sz_decimals
    sig_exp = px.adjusted() - MAX_SIG_FIGS + 1
    exponent = max(sig_exp, -max_decimals)
    if exponent > 0:
        exponent = 0
    return px.quantize(Decimal(1).scaleb(exponent), rounding=rounding)


def maker_address(index: int) -> str:
    """Fixed addresses for the simulated makers (never a funded test account)."""
    return "0x" + f"{0x5AFE0000 + index:040x}"


class OracleProcess:
    """Random walk in log price with occasional exponentially sized jumps."""

    def __init__(self, start_px: Decimal, params: OracleParams, rng: random.Random) -> None:
        self._log_px = math.log(float(start_px))
        self._sigma = float(params.volatility_bps) * _BPS
        self._jump_p = float(params.jump_probability)
        self._jump_mean = float(params.jump_bps) * _BPS
        self._rng = rng

    def step(self) -> float:
        rng = self._rng
        move = rng.gauss(0.0, self._sigma) if self._sigma > 0 else 0.0
        if self._jump_p > 0 and rng.random() < self._jump_p and self._jump_mean > 0:
            size = rng.expovariate(1 / self._jump_mean)
            move += size if rng.random() < 0.5 else -size
        self._log_px += move
        return math.exp(self._log_px)


class MarketFeed:
    """One market: its oracle, the oracle's recent history, and its makers' quotes."""

    def __init__(
        self, asset: Any, oracle: OracleParams, makers: MakerParams, tick_ms: int, seed: int
    ) -> None:
        self.asset = asset
        self.coin: str = asset.coin
        self.sz_decimals: int = asset.sz_decimals
        self.makers = makers
        # str seeds hash deterministically (unlike hash() of a str across processes).
        self.rng = random.Random(f"{seed}:{asset.coin}")
        self.oracle = OracleProcess(asset.start_px, oracle, self.rng)
        self.lag_ticks = max(0, round(makers.lag_ms / tick_ms))
        self.history: deque[float] = deque([float(asset.start_px)], maxlen=self.lag_ticks + 1)
        self.oracle_px = valid_px(asset.start_px, self.sz_decimals)

    def step(self) -> None:
        raw = self.oracle.step()
        self.history.append(raw)
        self.oracle_px = valid_px(Decimal(repr(raw)), self.sz_decimals)

    @property
    def reference(self) -> float:
        """The oracle as the makers see it: `lag_ticks` ticks old."""
        return self.history[0]

    def quotes(self, maker_index: int) -> tuple[list[tuple[Decimal, Decimal]], ...]:
        p = self.makers
        ref = self.reference
        # Maker k stands further out; all share one lagged reference, so they never cross.
        spread = float(p.spread_bps) * (1 + maker_index) * _BPS
        step = float(p.level_step_bps) * _BPS
        bids: list[tuple[Decimal, Decimal]] = []
        asks: list[tuple[Decimal, Decimal]] = []
        for level in range(p.depth):
            offset = spread + level * step
            bid = valid_px(Decimal(repr(ref * (1 - offset))), self.sz_decimals, ROUND_FLOOR)
            ask = valid_px(Decimal(repr(ref * (1 + offset))), self.sz_decimals, ROUND_CEILING)
            if bid > 0 and (not bids or bid < bids[-1][0]):
                bids.append((bid, self._size(bid)))
            if not asks or ask > asks[-1][0]:
                asks.append((ask, self._size(ask)))
        return bids, asks

    def _size(self, px: Decimal) -> Decimal:
        lot = Decimal(1).scaleb(-self.sz_decimals)
        # +-30% around the target notional so the book does not look machine-made.
        notional = self.makers.level_notional_usd * Decimal(repr(0.7 + 0.6 * self.rng.random()))
        size = (notional / px).quantize(lot, rounding=ROUND_FLOOR)
        return max(size, lot)


class Feeds:
    """All markets' feeds, stepped together: `step()` is one tick of the whole exchange.

    `in_block`, when given, is how the makers' re-quotes reach the exchange: the timing
    model runs them in a block like any cancel-and-ALO batch (first in its block), so a
    taker racing a re-quote sees the exchange's order. Without it they apply at once.
    """

    def __init__(
        self,
        exchange: Any,
        scenario: Scenario,
        seed: int,
        *,
        in_block: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self.exchange = exchange
        self._in_block = in_block
        self.scenario = scenario
        self.markets: list[MarketFeed] = []
        for asset in exchange.universe.assets:
            oracle, makers = scenario.params_for(asset.coin)
            self.markets.append(MarketFeed(asset, oracle, makers, scenario.tick_ms, seed))
        self.ticks = 0
        self._broken: set[str] = set()

    def step(self, *, direct: bool = False) -> None:
        """One tick: every oracle moves at once; the makers' re-quotes follow, in a block
        when the timing model is on (unless `direct`: the start-up books)."""
        in_block = None if direct else self._in_block
        for market in self.markets:
            if market.coin in self._broken:
                continue
            market.step()
            try:
                self.exchange.set_oracle(market.coin, market.oracle_px)
            except Exception:
                self._stop(market)
                continue
            quotes = [market.quotes(k) for k in range(market.makers.count)]
            requote = partial(self._requote, market, quotes)
            if in_block is None:
                requote()
            else:
                in_block(requote)
        self.ticks += 1

    def _requote(
        self, market: MarketFeed, quotes: list[tuple[list[tuple[Decimal, Decimal]], ...]]
    ) -> None:
        if market.coin in self._broken:
            return
        try:
            for k, (bids, asks) in enumerate(quotes):
                self.exchange.replace_maker_quotes(market.coin, maker_address(k), bids, asks)
        except Exception:
            self._stop(market)

    def _stop(self, market: MarketFeed) -> None:
        # A halted or removed market stops its feed; the others keep running.
        log.warning("feed for %s stopped", market.coin, exc_info=True)
        self._broken.add(market.coin)

    async def run(self, on_tick: Callable[[], None] | None = None) -> None:
        """Step every tick_ms until cancelled, keeping the cadence despite slow steps."""
        loop = asyncio.get_running_loop()
        interval = self.scenario.tick_ms / 1000
        next_at = loop.time()
        while True:
            self.step()
            if on_tick is not None:
                on_tick()
            next_at += interval
            delay = next_at - loop.time()
            if delay < -interval:  # fell far behind (machine paused): do not burst to catch up
                next_at = loop.time()
                delay = 0
            await asyncio.sleep(max(delay, 0))
