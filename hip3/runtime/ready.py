"""READY — the one definition (design.md), asked by the executor and the write path alike.

- READY-MD(market): the epoch's ReadinessMachine has first bbo and ctx data for the market (or
  excluded it by the logged timeout policy) and that data is fresh now.
- READY-TRADING: connection live, every market ready-or-excluded, orderUpdates/userEvents
  acked, userFills snapshot received, positions/open orders/fills reconciled in this epoch,
  HardStop armed — all of which the epoch's ReadinessMachine aggregates.
- Cancels and reduce-only orders only need the socket to be open (`can_reduce`): HardStop
  must be able to act while the rest is not ready.

Nothing else in the code base answers these questions.
"""

from __future__ import annotations

from typing import Any


class Ready:
    def __init__(self, *, max_bbo_age_s: float, max_ctx_age_s: float) -> None:
        self.max_bbo_age_ns = int(max_bbo_age_s * 1e9)
        self.max_ctx_age_ns = int(max_ctx_age_s * 1e9)
        self.machine: Any = None  # the current epoch's ReadinessMachine
        self.connection: Any = None  # the ConnectionMachine
        self.markets: dict[str, Any] = {}  # coin -> MarketState

    def trading(self) -> bool:
        m = self.machine
        return (
            m is not None
            and m.trading_ready
            and self.connection is not None
            and self.connection.is_live
        )

    def market(self, coin: str, now_ns: int) -> bool:
        m = self.machine
        if m is None or not m.market_ready(coin):
            return False
        st = self.markets.get(coin)
        if st is None or st.bbo_recv_ns == 0 or st.ctx_recv_ns == 0:
            return False
        return (
            now_ns - st.bbo_recv_ns <= self.max_bbo_age_ns
            and now_ns - st.ctx_recv_ns <= self.max_ctx_age_ns
        )

    def can_reduce(self) -> bool:
        c = self.connection
        return c is not None and c.state in ("subscribing", "reconciling", "live")

    def describe(self) -> dict:
        m = self.machine
        return {
            "trading": self.trading(),
            "connection": None if self.connection is None else self.connection.state,
            "missing": [] if m is None else list(m.missing()),
            "excluded": {} if m is None else dict(m.excluded),
        }
