"""What the bot knows about one market right now.

Updated for every bbo/ctx frame, so it is plain attribute writes: no machine, no allocation
beyond the Decimals the strategy needs. Receive times are monotonic nanoseconds from the
reader; exchange times are kept beside them to catch a clock running backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(slots=True)
class MarketSpec:
    """Static facts from discovery (perpDexs + meta)."""

    coin: str
    dex: str
    asset: int
    sz_decimals: int
    max_leverage: int = 1
    margin_mode: str = ""
    growth_mode: bool = False
    deployer_fee_scale: Decimal = Decimal(1)


@dataclass(slots=True)
class MarketState:
    coin: str
    bid_px: Decimal | None = None
    bid_sz: Decimal | None = None
    ask_px: Decimal | None = None
    ask_sz: Decimal | None = None
    bbo_time_ms: int = 0  # exchange time
    bbo_recv_ns: int = 0  # monotonic receive time
    oracle_px: Decimal | None = None
    mark_px: Decimal | None = None
    mid_px: Decimal | None = None
    funding: Decimal | None = None
    open_interest: Decimal | None = None
    ctx_recv_ns: int = 0
    bbo_updates: int = 0
    ctx_updates: int = 0
    time_regressions: int = 0

    def on_bbo(
        self, time_ms: int, bid: tuple[str, str] | None, ask: tuple[str, str] | None, recv_ns: int
    ) -> None:
        if time_ms < self.bbo_time_ms:
            self.time_regressions += 1
            return  # an older book must never overwrite a newer one
        self.bbo_time_ms = time_ms
        self.bbo_recv_ns = recv_ns
        if bid is None:
            self.bid_px = self.bid_sz = None
        else:
            self.bid_px, self.bid_sz = Decimal(bid[0]), Decimal(bid[1])
        if ask is None:
            self.ask_px = self.ask_sz = None
        else:
            self.ask_px, self.ask_sz = Decimal(ask[0]), Decimal(ask[1])
        self.bbo_updates += 1

    def on_ctx(
        self,
        oracle: str,
        mark: str,
        mid: str | None,
        funding: str,
        open_interest: str,
        recv_ns: int,
    ) -> None:
        self.oracle_px = Decimal(oracle)
        self.mark_px = Decimal(mark)
        self.mid_px = Decimal(mid) if mid is not None else None
        self.funding = Decimal(funding)
        self.open_interest = Decimal(open_interest)
        self.ctx_recv_ns = recv_ns
        self.ctx_updates += 1

    def bbo_age_s(self, now_ns: int) -> float:
        return float("inf") if self.bbo_recv_ns == 0 else (now_ns - self.bbo_recv_ns) / 1e9

    def ctx_age_s(self, now_ns: int) -> float:
        return float("inf") if self.ctx_recv_ns == 0 else (now_ns - self.ctx_recv_ns) / 1e9

    def reference_px(self) -> Decimal | None:
        """Mark, else mid of the book: what flatten prices are computed from."""
        if self.mark_px is not None:
            return self.mark_px
        if self.bid_px is not None and self.ask_px is not None:
            return (self.bid_px + self.ask_px) / 2
        return None
