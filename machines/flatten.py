"""FlattenMachine: ONE per market; the only path to a reduce-only flatten order for it.

Every exit and the HardStop go through it, and its single guarantee is that no two flatten
orders for one market are ever in flight: `SendFlattenOrder` is emitted only on entering
`requested`, and `requested` is only entered from states with no order outstanding (idle,
waiting, failed).

idle → requested → inflight(cloid) → idle when the answer leaves the position flat; when it does
not, → waiting (backoff) and `tick` re-requests. When the runtime cannot build or send the
order (`not_sent`), that is an attempt too: → waiting with the same backoff, counted as a
failure unless nothing could have been tried (no open connection). An inflight order with no
answer for `timeout_ms` counts as a failure and moves to `unresolved`: the order itself is
Unknown elsewhere, so nothing new is sent until the dispatcher reports `done` for that cloid
(reconciliation settles every unknown order, to filled, cancelled or rejected).

Every counted failure emits `FlattenAttemptFailed` (the runtime's risk trigger counts them).
After `max_attempts` consecutive failures, or at once when the exchange answers that it holds
no position to reduce (outcome `no_position`: retrying the same order cannot help, only
reconciliation can), the machine parks in `failed` and emits `FlattenFailed` once (no automatic
hammering); a new `request` (e.g. from the HardStop) starts a fresh round.

Deliberately ignored events (internal self-transitions):
- `request` while requested, inflight, unresolved or waiting: recorded, never a second order;
- `cancel_request` while an order is outstanding (inflight, unresolved): the order's own answer
  decides; in idle it is a no-op (in requested it ends the episode: nothing was sent yet);
- `tick` when nothing is due.

The completion event is declared as `order_done` (an event named `done` would also match the
library's internal `done.state.*` events); `send("done", ...)` is accepted as an alias.
"""

from __future__ import annotations

from statemachine import Event, State

from .base import HipChart, require_non_negative_int, require_text, stay
from .commands import FlattenAttemptFailed, FlattenFailed, SendFlattenOrder

# `no_position`: rejected because the exchange holds no position this order could reduce.
DONE_OUTCOMES = ("filled", "rejected", "cancelled", "no_position")


class FlattenMachine(HipChart):
    """At most one reduce-only flatten order in flight for one market."""

    event_aliases = {"done": "order_done"}

    idle = State(initial=True)
    requested = State()
    inflight = State()
    unresolved = State()
    waiting = State()
    failed = State()

    request = (
        idle.to(requested, on="record_request")
        | failed.to(requested, on="restart")
        | stay(requested, inflight, unresolved, waiting, on="record_request")
    )
    sent = requested.to(inflight, on="record_sent")
    not_sent = requested.to(failed, cond="gives_up", on="conclude") | requested.to(
        waiting, on="conclude"
    )
    order_done = Event(
        inflight.to(idle, cond="is_flat", on="conclude")
        | inflight.to(failed, cond="gives_up", on="conclude")
        | inflight.to(waiting, on="conclude")
        | unresolved.to(idle, cond="is_flat", on="conclude")
        | unresolved.to(failed, cond="gives_up", on="conclude")
        | unresolved.to(waiting, on="conclude"),
        id="order_done",
        name="Done",
    )
    tick = (
        inflight.to(unresolved, cond="inflight_expired", on="count_timeout")
        | waiting.to(requested, cond="retry_due")
        | stay(idle, requested, inflight, unresolved, waiting, failed)
    )
    # In `requested` no order exists yet: the runtime found the position already flat when it
    # came to build the order, so there is nothing to send and the episode ends.
    cancel_request = (
        requested.to(idle) | waiting.to(idle) | failed.to(idle) | stay(idle, inflight, unresolved)
    )

    def __init__(
        self,
        *,
        market: str,
        timeout_ms: int,
        backoff_ms: int,
        backoff_max_ms: int,
        max_attempts: int,
        outbox: list | None = None,
    ) -> None:
        self.market = require_text(market, "market")
        for name, value in (
            ("timeout_ms", timeout_ms),
            ("backoff_ms", backoff_ms),
            ("backoff_max_ms", backoff_max_ms),
            ("max_attempts", max_attempts),
        ):
            require_non_negative_int(value, name)
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if backoff_max_ms < backoff_ms:
            raise ValueError(
                f"backoff_max_ms ({backoff_max_ms}) must be >= backoff_ms ({backoff_ms})"
            )
        self.timeout_ms = timeout_ms
        self.backoff_ms = backoff_ms
        self.backoff_max_ms = backoff_max_ms
        self.max_attempts = max_attempts
        self.inflight_cloid: str | None = None
        self.failures = 0
        self.attempt = 0
        self.reasons: list[str] = []
        self.retry_at_ms: int | None = None
        self.sent_at_ms: int | None = None
        self.last_outcome: str | None = None
        self._last_now_ms: int | None = None
        super().__init__(outbox=outbox)

    # --- validators --------------------------------------------------------------------------

    @request.validators
    def _validate_request(self, reason: str, now_ms: int) -> None:
        require_text(reason, "flatten reason")
        require_non_negative_int(now_ms, "now_ms")

    @sent.validators
    def _validate_sent(self, cloid: str, now_ms: int) -> None:
        require_text(cloid, "cloid")
        require_non_negative_int(now_ms, "now_ms")

    @not_sent.validators
    def _validate_not_sent(self, reason: str, now_ms: int, failure: bool = True) -> None:
        require_text(reason, "reason")
        require_non_negative_int(now_ms, "now_ms")
        if not isinstance(failure, bool):
            raise ValueError(f"failure must be a bool, got {failure!r}")

    def _check_cloid(self, cloid: str | None) -> None:
        if cloid is not None and cloid != self.inflight_cloid:
            raise ValueError(
                f"flatten {self.market}: cloid {cloid!r} is not the order in flight "
                f"({self.inflight_cloid!r})"
            )

    @order_done.validators
    def _validate_done(
        self, outcome: str, now_ms: int, flat: bool, cloid: str | None = None
    ) -> None:
        if outcome not in DONE_OUTCOMES:
            raise ValueError(f"unknown flatten outcome {outcome!r} (expected {DONE_OUTCOMES})")
        require_non_negative_int(now_ms, "now_ms")
        if not isinstance(flat, bool):
            raise ValueError(f"flat must be a bool, got {flat!r}")
        self._check_cloid(cloid)

    @tick.validators
    def _validate_tick(self, now_ms: int) -> None:
        require_non_negative_int(now_ms, "now_ms")

    # --- guards ------------------------------------------------------------------------------

    def is_flat(self, flat: bool) -> bool:
        return flat

    def _failures_after(self, outcome: str, failure: bool) -> int:
        if outcome == "filled":
            return 0  # progress: the position shrank
        if self.state == "unresolved" or not failure:
            return self.failures  # the timeout already counted this order, or nothing was tried
        return self.failures + 1

    def gives_up(self, outcome: str = "not_sent", failure: bool = True) -> bool:
        if outcome == "no_position":
            return True
        return self._failures_after(outcome, failure) >= self.max_attempts

    def inflight_expired(self, now_ms: int) -> bool:
        return self.sent_at_ms is not None and now_ms - self.sent_at_ms > self.timeout_ms

    def retry_due(self, now_ms: int) -> bool:
        return self.retry_at_ms is not None and now_ms >= self.retry_at_ms

    def tick_due(self, now_ms: int) -> bool:
        """Whether `tick` would change anything: an inflight order's timeout or a waiting
        retry has come. Everywhere else `tick` is an ignored self-transition, which the runtime
        skips (a transition costs ~90 µs)."""
        state = self.state
        if state == "inflight":
            return self.inflight_expired(now_ms)
        if state == "waiting":
            return self.retry_due(now_ms)
        return state not in ("idle", "requested", "unresolved", "failed")

    # --- actions -----------------------------------------------------------------------------

    def record_request(self, reason: str, now_ms: int) -> None:
        self.reasons.append(reason)
        self._last_now_ms = now_ms

    def restart(self, reason: str, now_ms: int) -> None:
        self.failures = 0
        self.record_request(reason, now_ms)

    def on_enter_requested(self) -> None:
        self.attempt += 1
        self.retry_at_ms = None
        self.emit(SendFlattenOrder(self.market, self.attempt))

    def record_sent(self, cloid: str, now_ms: int) -> None:
        self.inflight_cloid = cloid
        self.sent_at_ms = now_ms
        self._last_now_ms = now_ms

    def _count_failure(self, outcome: str) -> None:
        self.failures += 1
        self.emit(FlattenAttemptFailed(self.market, self.failures, outcome))

    def count_timeout(self, now_ms: int) -> None:
        self._last_now_ms = now_ms
        self.last_outcome = "timeout"
        self._count_failure("timeout")

    def conclude(
        self,
        outcome: str = "not_sent",
        now_ms: int | None = None,
        reason: str | None = None,
        failure: bool = True,
    ) -> None:
        if reason is not None:
            outcome = f"not sent: {reason}"
        if outcome == "filled":
            self.failures = 0
        elif self.state != "unresolved" and failure:
            self._count_failure(outcome)
        self.last_outcome = outcome
        self.inflight_cloid = None
        self.sent_at_ms = None
        when = now_ms if now_ms is not None else self._last_now_ms
        self._last_now_ms = when
        self.retry_at_ms = (when or 0) + self.backoff_delay_ms()

    def backoff_delay_ms(self) -> int:
        exponent = min(max(self.failures, 1) - 1, 62)
        return min(self.backoff_max_ms, self.backoff_ms * (1 << exponent))

    def on_enter_idle(self) -> None:
        # Flat (or nothing to do): the next request starts a fresh episode.
        self.failures = 0
        self.attempt = 0
        self.retry_at_ms = None
        self.inflight_cloid = None
        self.sent_at_ms = None
        self.reasons = []

    def on_enter_failed(self) -> None:
        self.retry_at_ms = None
        self.emit(FlattenFailed(self.market, self.failures, self.last_outcome or "unknown"))
