"""Hourly funding: every open position pays or receives `szi * oracle * rate` on the hour.

Each payment is kept on the account (info userFunding, the `userFundings` feed) and each
hour's rate per coin in `history` (info fundingHistory).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from decimal import Decimal

from hip3.sim import rules
from hip3.sim.accounts import Account
from hip3.sim.events import UserEvent
from hip3.sim.market import Markets

HOUR_MS = 3600 * 1000
MAX_RATES_KEPT = 24 * 366  # a year of hourly rates per coin


class Funding:
    def __init__(
        self,
        markets: Markets,
        accounts: dict[str, Account],
        *,
        emit: Callable[[object], None],
        enabled: bool = True,
    ) -> None:
        self._markets = markets
        self._accounts = accounts
        self._emit = emit
        self.enabled = enabled
        self._last_hour: int | None = None
        # coin -> (time, rate, premium) of each hour paid, oldest first
        self.history: dict[str, deque[tuple[int, Decimal, Decimal]]] = {}

    def tick(self, now_ms: int) -> None:
        """Pay funding once when the clock crosses into a new hour (never for the first hour)."""
        if not self.enabled:
            return
        hour = now_ms // HOUR_MS
        if self._last_hour is None:
            self._last_hour = hour
        elif hour > self._last_hour:
            self._last_hour = hour
            self.pay(hour * HOUR_MS)

    def pay(self, at_ms: int) -> None:
        markets = self._markets
        rates = {}
        for coin in markets.books:
            if coin in markets.halted:
                continue
            rate, premium = markets.funding_rate(coin)
            rates[coin] = rate
            kept = self.history.get(coin)
            if kept is None:
                kept = self.history[coin] = deque(maxlen=MAX_RATES_KEPT)
            kept.append((at_ms, rate, premium))
        for account in self._accounts.values():
            for position in list(account.positions.values()):
                rate = rates.get(position.coin)
                if rate is None:
                    continue
                payment = rules.usdc(position.szi * markets.oracle[position.coin] * rate)
                account.balances[position.dex] = account.balance(position.dex) - payment
                position.cum_funding_all_time += payment
                position.cum_funding_since_open += payment
                if not account.internal and payment:
                    funding = {
                        "time": at_ms,
                        "coin": position.coin,
                        "usdc": rules.wire(-payment),
                        "szi": rules.wire(position.szi),
                        "fundingRate": rules.wire(rate),
                        "nSamples": None,
                    }
                    account.fundings.append(funding)
                    self._emit(UserEvent(account.address, {"funding": funding}))
