"""The built-in strategy: the oracle/book dislocation taker, written on the strategy API.

On every bbo and asset context it asks its detector (the full one, hip3/strategy/detector.py,
or the basic one, hip3/strategy/basic.py, as `detector.kind` says) whether the market is
dislocated, and enters with `Context.enter` (an IOC behind the executor's gates). An open
position is checked against the exit policy (hip3/strategy/exits.py: time stop, mark
regression, the oracle exit) on each of its market's bbo and asset context and on every
tick, and closed with
`Context.flatten`. Its parameters are the configuration's `[detector]` and `[exits]` tables.
"""

from __future__ import annotations

from typing import Any

from hip3.strategy.api import AssetCtx, Bbo, Context, Strategy, Timer
from hip3.strategy.basic import BasicDetector
from hip3.strategy.basic import DetectorParams as BasicDetectorParams
from hip3.strategy.detector import Detector, DetectorParams
from hip3.strategy.exits import ExitPolicy

__all__ = ["DislocationTaker", "make_detector"]


def make_detector(
    cfg: Any, *, fees: Any, gates: dict[str, Any], specs: dict[str, Any], priority: Any = None
) -> Any:
    """The detector the configuration names (`detector.kind`)."""
    from hip3.config import as_decimal as dec

    d = cfg.detector
    if d.kind == "basic":
        return BasicDetector(
            BasicDetectorParams(
                taker_fee_bps=dec(d.taker_fee_bps),
                slippage_bps=dec(d.slippage_bps),
                min_edge_bps=dec(d.min_edge_bps),
                size_fraction=dec(d.size_fraction),
                max_order_notional=dec(d.max_order_notional_usd),
                thresholds={
                    m.coin: dec(m.threshold_bps) for m in cfg.markets if m.threshold_bps is not None
                },
            )
        )
    return Detector(
        DetectorParams.from_config(d, cfg.markets),
        fee_bps=fees,
        gates=gates,
        specs=specs,
        priority=priority,
    )


EXITS_TIMER = "exits"


class DislocationTaker(Strategy):
    """Its detector and exit policy are built by the runtime from the configuration (the
    detector reads the runtime's fee table, market gates and specs; the exits the entry
    guards' entry edge)."""

    def __init__(self, ctx: Context, *, detector: Any, exits: ExitPolicy) -> None:
        super().__init__(ctx)
        self.detector = detector
        self.exits = exits

    def on_start(self) -> None:
        # every tick: a position must never outlive its time stop because the feed went quiet
        self.ctx.set_timer(EXITS_TIMER, after_ms=0, every_ms=0)

    def on_bbo(self, bbo: Bbo) -> None:
        coin = bbo.coin
        self._evaluate(coin)
        if self.ctx.position(coin):
            self._check_exit(coin, self.ctx.now_ns())

    def on_asset_ctx(self, ctx: AssetCtx) -> None:
        coin = ctx.coin
        self._evaluate(coin)
        if self.ctx.position(coin):
            self._check_exit(coin, self.ctx.now_ns())  # the oracle exit counts every oracle move

    def on_timer(self, timer: Timer) -> None:
        if timer.name == EXITS_TIMER:
            now_ns = self.ctx.now_ns()
            for coin in self.ctx.positions():
                self._check_exit(coin, now_ns)

    def _evaluate(self, coin: str) -> None:
        ctx = self.ctx
        sig = self.detector.evaluate(ctx.market(coin), ctx.now_ns())
        if sig is not None:
            ctx.enter(sig)

    def _check_exit(self, coin: str, now_ns: int) -> None:
        if coin not in self.ctx.coins or not self.ctx.can_flatten(coin):
            # a coin the bot does not stream is the HardStop's to flatten; and the exit policy
            # keeps state per position, so it is asked only when its answer can be acted on
            return
        p = self.ctx.positions()[coin]
        reason = self.exits.check(
            coin=coin,
            size=p.size,
            entry_px=p.entry_px,
            opened_ms=p.opened_ms,
            now_wall_ms=self.ctx.wall_ms(),
            m=self.ctx.market(coin),  # type: ignore[arg-type]
            now_ns=now_ns,
        )
        if reason is not None:
            self.ctx.flatten(coin, reason)
