"""A price for a coin the bot does not stream.

The account may hold a position in a coin the bot does not trade (opened elsewhere); the
HardStop must flatten it too, and a flatten order needs a reference price. This component asks
the coin's book once (`l2Book`), keeps the mid of its best levels for a few seconds, and says
whether an answer is still awaited (a flatten waiting on it has not failed).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

MAX_AGE_MS = 5_000

# ask(payload, key, on_answer=..., on_failure=...): sends one info request
Ask = Callable[..., None]


class PriceLookup:
    def __init__(
        self,
        *,
        ask: Ask,
        can_ask: Callable[[], bool],
        now_ms: Callable[[], int],
        counters: Any,
    ) -> None:
        self._ask = ask
        self._can_ask = can_ask  # a socket is open (the request is a reduce-side need)
        self._now_ms = now_ms
        self._counters = counters
        self._prices: dict[str, tuple[Decimal, int]] = {}  # coin -> (price, at ms)
        self._asked: set[str] = set()  # coins whose book request is in flight

    def price(self, coin: str) -> Decimal | None:
        """The cached price if it is recent; otherwise None, and the book is asked for once."""
        cached = self._prices.get(coin)
        if cached is not None and self._now_ms() - cached[1] <= MAX_AGE_MS:
            return cached[0]
        if coin not in self._asked and self._can_ask():
            self._asked.add(coin)
            self._ask(
                {"type": "l2Book", "coin": coin},
                f"px:{coin}",
                on_answer=partial(self._answered, coin),
                on_failure=partial(self._failed, coin),
            )
        return None

    def waiting(self, coin: str) -> bool:
        """A request for the coin's price is in flight (its answer comes before a retry)."""
        return coin in self._asked

    def _failed(self, coin: str, reason: str, now: int) -> None:
        self._asked.discard(coin)  # the flatten retry on the next tick asks again

    def _answered(self, coin: str, data: Any, now: int) -> None:
        self._asked.discard(coin)
        levels = data.get("levels") if isinstance(data, dict) else None
        if not isinstance(levels, list) or len(levels) != 2:
            self._counters["px_lookup_bad_answer"] += 1
            return
        tops = [Decimal(side[0]["px"]) for side in levels if side]
        if tops:
            self._prices[coin] = (sum(tops) / len(tops), self._now_ms())
