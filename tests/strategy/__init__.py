"""Helpers shared by the strategy tests: a market fed update by update, as the dispatcher does."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hip3.market.state import MarketSpec, MarketState

NS = 1_000_000_000
MS = 1_000_000


def spec(coin: str = "xyz:AAA", sz_decimals: int = 2, **kw: Any) -> MarketSpec:
    return MarketSpec(coin=coin, dex="xyz", asset=110000, sz_decimals=sz_decimals, **kw)


@dataclass
class Feed:
    """One market's state plus a clock; each update is evaluated right away when a detector
    is attached, exactly like the entry path's `bbo`/`ctx` (hip3/runtime/strategy_host.py)."""

    coin: str = "xyz:AAA"
    detector: Any = None
    now_ns: int = 10 * NS
    time_ms: int = 1_000
    m: MarketState = field(init=False)
    signals: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.m = MarketState(self.coin)

    def tick(self, dt_s: float) -> None:
        self.now_ns += int(dt_s * NS)
        self.time_ms += int(dt_s * 1000)

    def ctx(self, oracle: str, mark: str | None = None, dt_s: float = 0.01) -> Any:
        self.tick(dt_s)
        self.m.on_ctx(oracle, mark or oracle, None, "0", "1000", self.now_ns)
        return self.evaluate()

    def bbo(
        self,
        bid: str | None,
        ask: str | None,
        bid_sz: str = "100",
        ask_sz: str = "100",
        dt_s: float = 0.01,
    ) -> Any:
        self.tick(dt_s)
        self.m.on_bbo(
            self.time_ms,
            None if bid is None else (bid, bid_sz),
            None if ask is None else (ask, ask_sz),
            self.now_ns,
            wall_ms=self.time_ms,
        )
        return self.evaluate()

    def evaluate(self) -> Any:
        if self.detector is None:
            return None
        sig = self.detector.evaluate(self.m, self.now_ns)
        if sig is not None:
            self.signals.append(sig)
        return sig

    def oracle_path(self, *prices: str, dt_s: float = 0.01) -> Any:
        out = None
        for px in prices:
            out = self.ctx(px, dt_s=dt_s)
        return out


def d(x: str | int) -> Decimal:
    return Decimal(x)
