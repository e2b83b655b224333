"""The entry path: market data → market state → detector → executor (gates, then the order),
and the exit rules of open positions.

Events it takes: bbo and activeAssetCtx frames (the plain market state they update, and the
first data of each subscription told to the epoch), external strategy signals. A signal goes
to the executor, which asks READY, the gates and the risk limits before it sends an IOC; an
open position's exit rules (`hip3.strategy.exits`) request a flatten.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hip3.market.state import MarketState
from hip3.runtime.common import dec
from hip3.runtime.recorder import Recorder
from hip3.strategy.basic import BasicDetector, DetectorParams
from hip3.strategy.detector import Detector
from hip3.strategy.detector import DetectorParams as FullDetectorParams
from hip3.strategy.exits import ExitPolicy


def make_detector(
    cfg: Any, *, fees: Any, gates: dict[str, Any], specs: dict[str, Any], priority: Any = None
) -> Any:
    """The detector the configuration names (`detector.kind`)."""
    d = cfg.detector
    if d.kind == "basic":
        return BasicDetector(
            DetectorParams(
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
        FullDetectorParams.from_config(d, cfg.markets),
        fee_bps=fees,
        gates=gates,
        specs=specs,
        priority=priority,
    )


class EntryPath:
    def __init__(
        self,
        *,
        markets: dict[str, MarketState],
        positions: Any,
        flatten: dict[str, Any],
        hardstop: Any,
        detector: Any,
        executor: Any,
        exits: ExitPolicy,
        recorder: Recorder,
        first_data: Callable[[str], None],
        request_flatten: Callable[[str, str], None],
        clock: Any,
        counters: Any,
    ) -> None:
        self.markets = markets
        self.positions = positions
        self.flatten = flatten  # market -> FlattenMachine: an exit waits for a busy one
        self.hardstop = hardstop
        self.detector = detector
        self.executor = executor
        self.exits = exits
        self.recorder = recorder
        self.first_data = first_data  # the epoch's first-data-of-a-subscription fact
        self.request_flatten = request_flatten
        self.clock = clock
        self.counters = counters
        self.signals_seen = 0

    def bbo(self, b: Any, recv_ns: int) -> None:
        st = self.markets.get(b.coin)
        if st is None:
            return
        bid, ask = b.bbo
        if not st.on_bbo(
            b.time,
            None if bid is None else (bid.px, bid.sz),
            None if ask is None else (ask.px, ask.sz),
            recv_ns,
            wall_ms=self.clock.wall_ms(),
        ):
            return  # refused (stamped ahead of our clock, or older than the book we have)
        self.first_data("bbo:" + b.coin)
        self._evaluate(st, recv_ns)
        if b.coin in self.positions.positions:
            self.check_exit(b.coin, recv_ns)

    def ctx(self, a: Any, recv_ns: int) -> None:
        st = self.markets.get(a.coin)
        if st is None:
            return
        c = a.ctx
        st.on_ctx(
            c.oracle_px, c.mark_px, c.mid_px, c.funding or "0", c.open_interest or "0", recv_ns
        )
        self.first_data("activeAssetCtx:" + a.coin)
        self._evaluate(st, recv_ns)
        if a.coin in self.positions.positions:
            self.check_exit(a.coin, recv_ns)  # the oracle exit counts every oracle move

    def signal(self, sig: Any) -> None:
        """A signal from outside the detector (a strategy, a test): straight to the executor."""
        self.executor.on_signal(sig, self.clock.now_ms(), self.clock.now_ns())

    def _evaluate(self, st: MarketState, now_ns: int) -> None:
        sig = self.detector.evaluate(st, now_ns)
        if sig is not None:
            self.signals_seen += 1
            now_ms = self.clock.now_ms()
            self.executor.on_signal(sig, now_ms, now_ns)
            # recorded after the order (if any) is on the wire
            if self.recorder.enabled:
                self.recorder.signal(
                    sig, st, self.executor.last_outcome, now_ms=now_ms, wall_ms=self.clock.wall_ms()
                )

    def check_exits(self, now_ns: int) -> None:
        """The exit rules of every open position (on every tick)."""
        for coin in self.positions.open_coins():
            self.check_exit(coin, now_ns)

    def check_exit(self, coin: str, now_ns: int) -> None:
        """Exit rules for an open position (`hip3.strategy.exits`), via the flatten machine."""
        p = self.positions.positions.get(coin)
        if p is None or not p.size or not self.hardstop.is_armed:
            return
        fm = self.flatten.get(coin)
        if fm is not None and fm.state != "idle":
            return
        st = self.markets.get(coin)
        if st is None:
            return
        reason = self.exits.check(
            coin=coin,
            size=p.size,
            entry_px=p.entry_px,
            opened_ms=p.opened_ms,
            now_wall_ms=self.clock.wall_ms(),
            m=st,
            now_ns=now_ns,
        )
        if reason is not None:
            self.counters[f"exit:{reason}"] += 1
            self.request_flatten(coin, reason)
