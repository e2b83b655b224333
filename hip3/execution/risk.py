"""HardStop triggers that are numbers: losses, rejections, exposure while disconnected.

The HardStop itself is one machine (machines/hardstop.py); this module only decides when to
trip it, and says why in words an operator can act on.
"""

from __future__ import annotations

from decimal import Decimal

# Rejections that say "the market moved" or "nothing to do", not "something is wrong with us".
_BENIGN_PREFIXES = (
    "Order could not immediately match against any resting orders",
    "Order must have minimum value of",
    # a resting strategy's races with the market: its ALO would have crossed, or the order it
    # modifies filled or was cancelled first
    "Post only order would have immediately matched",
    "Cannot modify canceled or filled order",
)
# The exchange's words when a reduce-only order finds no position to reduce: the whole text,
# "Reduce only order would increase position. asset=<a>", or the orderUpdates status.
_REDUCE_ONLY_PREFIX = "Reduce only order would increase position"
_REDUCE_ONLY_STATUS = "reduceOnlyRejected"


def is_no_position_rejection(text: str) -> bool:
    """A reduce-only order refused because the exchange holds no position it could reduce."""
    return text.startswith(_REDUCE_ONLY_PREFIX) or text == _REDUCE_ONLY_STATUS


def is_benign_rejection(text: str, *, reduce_only: bool, position_flat: bool) -> bool:
    if text.startswith(_BENIGN_PREFIXES):
        return True
    if text.startswith(("iocCancelRejected", "minTradeNtlRejected", "badAloPxRejected")):
        return True
    # a reduce-only order refused because the position is already gone did its job
    return reduce_only and position_flat and is_no_position_rejection(text)


class RiskMonitor:
    def __init__(
        self,
        *,
        loss_limit: Decimal,
        max_consecutive_rejections: int,
        disconnect_exposure_ms: int,
        max_flatten_failures: int,
    ) -> None:
        self.loss_limit = loss_limit
        self.max_consecutive_rejections = max_consecutive_rejections
        self.disconnect_exposure_ms = disconnect_exposure_ms
        self.max_flatten_failures = max_flatten_failures
        self.consecutive_rejections = 0
        self._disconnected_since: int | None = None

    def on_rejection(self, text: str, benign: bool) -> str | None:
        """Counts a rejection; the reason to trip once the count reaches the limit (said once:
        later rejections of the same run add nothing new)."""
        if benign:
            return None
        self.consecutive_rejections += 1
        if self.consecutive_rejections == self.max_consecutive_rejections:
            return (
                f"{self.consecutive_rejections} consecutive order rejections (last: {text[:120]})"
            )
        return None

    def on_accepted(self) -> None:
        """The exchange accepted an order (it rested or filled): the run of rejections ends."""
        self.consecutive_rejections = 0

    def on_flatten_failure(self, market: str, failures: int, outcome: str) -> str | None:
        """`failures` consecutive failed flatten attempts on one market (the FlattenMachine
        counts them); the reason to trip when they reach the limit."""
        if failures == self.max_flatten_failures:
            return (
                f"flatten failures: {failures} failed flatten attempts in a row on {market} "
                f"(last: {outcome[:120]})"
            )
        return None

    def reset(self) -> None:
        """The operator re-armed the HardStop: counts that led to the stop start again."""
        self.consecutive_rejections = 0

    def check(self, *, now_ms: int, pnl: Decimal, connected: bool, exposed: bool) -> str | None:
        if not pnl.is_finite():
            # a size or price that is not a number reached the books: nothing is known
            return f"data integrity: PnL is {pnl}"
        if pnl <= -self.loss_limit:
            return f"loss limit: PnL {pnl:.2f} USD <= -{self.loss_limit} USD"
        if connected or not exposed:
            self._disconnected_since = None
            return None
        if self._disconnected_since is None:
            self._disconnected_since = now_ms
        elif now_ms - self._disconnected_since >= self.disconnect_exposure_ms:
            return f"disconnected with open exposure for {(now_ms - self._disconnected_since) / 1000:.1f} s"
        return None
