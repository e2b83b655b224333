"""Per-IP request weight of the HTTP API: 1200 per minute, answered with 429 `null` beyond.

Weights, from the exchange's rate-limit docs
(https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/rate-limits-and-user-limits):
an /exchange action weighs 1 + floor(batch length / 40); /info weighs 2 for l2Book,
allMids, clearinghouseState, orderStatus, spotClearinghouseState and exchangeStatus, 60 for
userRole, 20 for every other request, and the history requests add 1 per 20 items they
return. The window slides; a refused request costs nothing. Websocket posts do not count
(whether the exchange counts them is not documented).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

DEFAULT_WEIGHT_PER_WINDOW = 1200
DEFAULT_WINDOW_S = 60.0
ACTION_BATCH_KEYS = ("orders", "cancels", "modifies")
LIGHT_INFO = frozenset(
    {
        "l2Book",
        "allMids",
        "clearinghouseState",
        "orderStatus",
        "spotClearinghouseState",
        "exchangeStatus",
    }
)
INFO_WEIGHT_OVERRIDES = {"userRole": 60}
DEFAULT_INFO_WEIGHT = 20
# Requests whose weight grows with what they return: +1 per 20 items.
PER_ITEM_INFO = frozenset(
    {
        "userFills",
        "userFillsByTime",
        "historicalOrders",
        "recentTrades",
        "userFunding",
        "fundingHistory",
        "userNonFundingLedgerUpdates",
        "twapHistory",
    }
)
ITEMS_PER_WEIGHT = 20


def request_weight(kind: str, payload: Any) -> int:
    """The weight a request is admitted with (before its answer is known)."""
    if not isinstance(payload, dict):
        return DEFAULT_INFO_WEIGHT if kind == "info" else 1
    if kind == "action":
        action = payload.get("action")
        length = 0
        if isinstance(action, dict):
            for key in ACTION_BATCH_KEYS:
                items = action.get(key)
                if isinstance(items, list):
                    length = len(items)
                    break
        return 1 + length // 40
    info_type = payload.get("type")
    if info_type in LIGHT_INFO:
        return 2
    return INFO_WEIGHT_OVERRIDES.get(info_type, DEFAULT_INFO_WEIGHT)  # type: ignore[arg-type]


def result_weight(kind: str, payload: Any, body: Any) -> int:
    """Extra weight a history request owes for the items it returned."""
    if kind != "info" or not isinstance(payload, dict) or not isinstance(body, list):
        return 0
    if payload.get("type") not in PER_ITEM_INFO:
        return 0
    return len(body) // ITEMS_PER_WEIGHT


class IpLimiter:
    """Sliding-window weight budget per client IP."""

    def __init__(
        self,
        weight_per_window: int = DEFAULT_WEIGHT_PER_WINDOW,
        window_s: float = DEFAULT_WINDOW_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if weight_per_window < 1 or window_s <= 0:
            raise ValueError("the per-IP weight and its window must be positive")
        self.weight_per_window = weight_per_window
        self.window_s = window_s
        self._clock = clock
        self._spent: dict[str, deque[tuple[float, int]]] = {}
        self._totals: dict[str, int] = {}

    def used(self, ip: str) -> int:
        self._expire(ip, self._clock())
        return self._totals.get(ip, 0)

    def admit(self, ip: str, weight: int) -> bool:
        """Charge `weight` to `ip` if it fits in the window; False (nothing charged) if not."""
        now = self._clock()
        self._expire(ip, now)
        total = self._totals.get(ip, 0)
        if total + weight > self.weight_per_window:
            return False
        self._add(ip, now, weight)
        return True

    def charge_result(self, ip: str, kind: str, payload: Any, answer: Any) -> None:
        """Charge what an answer adds (items of a history request), even past the budget."""
        extra = result_weight(kind, payload, getattr(answer, "body", None))
        if extra:
            self._add(ip, self._clock(), extra)

    def _add(self, ip: str, now: float, weight: int) -> None:
        self._spent.setdefault(ip, deque()).append((now, weight))
        self._totals[ip] = self._totals.get(ip, 0) + weight

    def _expire(self, ip: str, now: float) -> None:
        spent = self._spent.get(ip)
        if not spent:
            return
        horizon = now - self.window_s
        total = self._totals[ip]
        while spent and spent[0][0] <= horizon:
            total -= spent.popleft()[1]
        if spent:
            self._totals[ip] = total
        else:
            del self._spent[ip]
            del self._totals[ip]
