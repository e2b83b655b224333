"""Per-signer nonce bookkeeping: the 100 highest nonces, uniqueness and the time window."""

from __future__ import annotations

import bisect

KEEP = 100
WINDOW_PAST_MS = 2 * 24 * 3600 * 1000
WINDOW_FUTURE_MS = 24 * 3600 * 1000


class NonceSet:
    """The highest nonces one signer has used, sorted ascending."""

    __slots__ = ("_sorted",)

    def __init__(self) -> None:
        self._sorted: list[int] = []

    def check(self, nonce: int, now_ms: int) -> str | None:
        """The exchange's error text if `nonce` may not be used now, else None."""
        if nonce <= now_ms - WINDOW_PAST_MS:
            return f"Invalid nonce: nonce too low {nonce} < {now_ms - WINDOW_PAST_MS}"
        if nonce >= now_ms + WINDOW_FUTURE_MS:
            return f"Invalid nonce: nonce too high {nonce} > {now_ms + WINDOW_FUTURE_MS}"
        used = self._sorted
        position = bisect.bisect_left(used, nonce)
        if position < len(used) and used[position] == nonce:
            return f"Invalid nonce: duplicate nonce {nonce}"
        if len(used) >= KEEP and nonce < used[0]:
            return f"Invalid nonce: nonce too low {nonce} < {used[0]}"
        return None

    def use(self, nonce: int) -> None:
        bisect.insort(self._sorted, nonce)
        if len(self._sorted) > KEEP:
            del self._sorted[0]
