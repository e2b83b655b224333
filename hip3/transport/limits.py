"""Outbound limits the exchange enforces per connection.

The exchange allows 2000 messages per minute (subscribe, ping and post alike) and 100 posts in
flight. Going over either costs an error frame or the connection, so the client enforces both
before it writes, and counts what it refused.
"""

from __future__ import annotations


class TokenBucket:
    """A refilling budget: `capacity` tokens, refilled at `capacity / period_s` per second.

    Time comes from the caller, so the bucket is deterministic under test.
    """

    __slots__ = ("_last_ms", "_rate_per_ms", "_tokens", "capacity", "refused")

    def __init__(self, capacity: int, period_s: float, now_ms: int) -> None:
        if capacity <= 0 or period_s <= 0:
            raise ValueError(
                f"token bucket needs capacity > 0 and period > 0, got {capacity}, {period_s}"
            )
        self.capacity = capacity
        self._rate_per_ms = capacity / (period_s * 1000.0)
        self._tokens = float(capacity)
        self._last_ms = now_ms
        self.refused = 0

    def _refill(self, now_ms: int) -> None:
        if now_ms > self._last_ms:
            self._tokens = min(
                self.capacity, self._tokens + (now_ms - self._last_ms) * self._rate_per_ms
            )
            self._last_ms = now_ms

    def available(self, now_ms: int) -> float:
        self._refill(now_ms)
        return self._tokens

    def try_take(self, now_ms: int, n: int = 1) -> bool:
        self._refill(now_ms)
        if self._tokens >= n:
            self._tokens -= n
            return True
        self.refused += 1
        return False


class InflightLimit:
    """Counts posts sent and not yet answered; never negative, zeroed with the connection."""

    __slots__ = ("count", "limit", "refused")

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError(f"inflight limit must be > 0, got {limit}")
        self.limit = limit
        self.count = 0
        self.refused = 0

    def can_send(self) -> bool:
        return self.count < self.limit

    def acquire(self) -> bool:
        if self.count >= self.limit:
            self.refused += 1
            return False
        self.count += 1
        return True

    def release(self) -> None:
        if self.count > 0:
            self.count -= 1

    def reset(self) -> None:
        self.count = 0
