"""READY — the one definition (docs/design.md#ready), asked by executor and write path alike.

- READY-MD(market): the epoch's ReadinessMachine has first bbo and ctx data for the market (and
  has not excluded it by the logged timeout policy) and that data is fresh now, by the market
  state's one freshness definition (`MarketState.stale_reason`).
- READY-TRADING: connection live, every market ready-or-excluded, orderUpdates/userEvents
  acked, userFills snapshot received, positions/open orders/fills reconciled in this epoch,
  HardStop armed — all of which the epoch's ReadinessMachine aggregates — and, with
  `dead_mans_switch.required`, the exchange holding the dead man's switch. Freshness is per
  market: an entry needs READY-TRADING and READY-MD of its own market, so a market whose
  stream went silent blocks entries on itself at once, not on every market (each market's
  bbo and context are separate subscriptions; one can stall while the others flow, see
  docs/exchange/freshness.md). A connection whose data stopped altogether leaves every market
  stale, and so blocks every entry. The leverage configured per market must be confirmed on
  the exchange too.
- Cancels and reduce-only orders only need the socket to be open (`can_reduce`): HardStop
  must be able to act while the rest is not ready.

Nothing else in the code base answers these questions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Ready:
    def __init__(self, *, now_ns: Callable[[], int], dead_mans_switch: Any = None) -> None:
        self._now_ns = now_ns  # the clock the market states' receive times come from
        # with `dead_mans_switch.required`, no trading until the exchange holds the switch
        self.dead_mans_switch = dead_mans_switch
        self.machine: Any = None  # the current epoch's ReadinessMachine
        self.connection: Any = None  # the ConnectionMachine
        self.markets: dict[str, Any] = {}  # coin -> MarketState
        # delisted markets (discovery says so): never traded, so READY does not wait for them
        self.retired: set[str] = set()
        # markets whose configured leverage is not confirmed on the exchange yet
        self.unsettled: set[str] = set()
        # markets that joined the run after it started (a whole dex's new listing): their
        # leverage holds back their own entries, not READY-TRADING
        self.late: set[str] = set()

    def trading(self, now_ns: int | None = None) -> bool:
        m = self.machine
        return (
            m is not None
            and m.trading_ready
            and self.connection is not None
            and self.connection.is_live
            and (not self.unsettled or self.unsettled <= self.late)
            and (self.dead_mans_switch is None or not self.dead_mans_switch.blocks_trading())
        )

    def market(self, coin: str, now_ns: int | None = None) -> bool:
        m = self.machine
        if m is None or coin in self.retired or coin in self.unsettled or not m.market_ready(coin):
            return False
        st = self.markets.get(coin)
        if st is None:
            return False
        return st.stale_reason(self._now_ns() if now_ns is None else now_ns) is None

    def stale_markets(self, now_ns: int | None = None) -> dict[str, str]:
        """Markets (not excluded) whose data is not fresh now, with the reason."""
        now = self._now_ns() if now_ns is None else now_ns
        excluded = self.machine.excluded if self.machine is not None else {}
        out = {}
        for coin, st in self.markets.items():
            if coin not in excluded and coin not in self.retired:
                reason = st.stale_reason(now)
                if reason is not None:
                    out[coin] = reason
        return out

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
            "delisted": sorted(self.retired),
            "leverage_unsettled": sorted(self.unsettled),
            "stale": self.stale_markets(),
            "dead_mans_switch": (
                None if self.dead_mans_switch is None else self.dead_mans_switch.describe()
            ),
        }
