"""The basic oracle/book dislocation detector.

Buy when the ask sits below the oracle by more than costs plus a minimum edge:
`(oracle - ask) / oracle` in bps > taker fee + slippage + min edge (or the market's own
threshold); sell on the mirror condition with the bid above the oracle. Size is a fraction of
the quote's displayed size, capped by a notional limit. Stale data never makes a signal.
Runs on every bbo/ctx update, so it is plain arithmetic on the market's own state only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hip3.events import Signal
from hip3.market.state import MarketState

_BPS = Decimal(10_000)


@dataclass(slots=True)
class DetectorParams:
    taker_fee_bps: Decimal
    slippage_bps: Decimal
    min_edge_bps: Decimal
    size_fraction: Decimal
    max_order_notional: Decimal
    thresholds: dict[str, Decimal]  # per-market override of the total threshold, in bps

    def threshold(self, coin: str) -> Decimal:
        t = self.thresholds.get(coin)
        return t if t is not None else self.taker_fee_bps + self.slippage_bps + self.min_edge_bps


class BasicDetector:
    def __init__(self, params: DetectorParams) -> None:
        self.p = params
        self.signals = 0
        self.stale_skips = 0

    def evaluate(self, m: MarketState, now_ns: int) -> Signal | None:
        oracle = m.oracle_px
        if oracle is None or oracle <= 0:
            return None
        if m.stale_reason(now_ns) is not None:
            self.stale_skips += 1
            return None
        threshold = self.p.threshold(m.coin)
        ask, bid = m.ask_px, m.bid_px
        if ask is not None and m.ask_sz:
            edge = (oracle - ask) / oracle * _BPS
            if edge > threshold:
                return self._signal(m.coin, True, ask, m.ask_sz, edge)
        if bid is not None and m.bid_sz:
            edge = (bid - oracle) / oracle * _BPS
            if edge > threshold:
                return self._signal(m.coin, False, bid, m.bid_sz, edge)
        return None

    def _signal(
        self, coin: str, is_buy: bool, px: Decimal, quote_sz: Decimal, edge: Decimal
    ) -> Signal:
        size = quote_sz * self.p.size_fraction
        cap = self.p.max_order_notional / px
        if size > cap:
            size = cap
        self.signals += 1
        return Signal(coin=coin, is_buy=is_buy, size=size, ref_px=px, edge_bps=float(edge))
