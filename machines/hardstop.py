"""HardStopMachine: the one emergency stop (docs/design.md#hardstop).

armed → tripped → cancelling → flattening → verifying → halted; halted → armed ONLY on
`operator_reset()`. A trip blocks entries, cancels every open order, flattens every position
and verifies with the exchange; a verification that is not flat starts a new attempt from
cancelling. Each step's command is re-emitted by `tick` after `retry_interval_ms` without an
answer (the runtime may have lost it with a socket).

Flattening ends in one of two ways: `positions_flat` (every tracked position is closed), or
`flatten_given_up` (every position left is one whose flatten gave up, e.g. the exchange said it
holds no such position). Either way verification asks the exchange what is really open and
adopts it, so a position the bot believes in but the exchange does not hold ends in `halted`
instead of an endless flatten loop, and a real one starts a new attempt.

Deliberately ignored events (internal self-transitions):
- `trip` once tripped (cancelling, flattening, verifying, halted): the reason is recorded (once:
  a reason already recorded is not repeated), the sequence is NOT restarted;
- `tick` when nothing is due; step answers (`orders_cancelled`, `positions_flat`,
  `flatten_given_up`, `verified`) carrying an `attempt` other than the current one (a late
  answer to a superseded attempt).
An answer without `attempt` is taken as current. Anything else out of order raises
TransitionNotAllowed, including `operator_reset` before halted (the operator sees why).
"""

from __future__ import annotations

from statemachine import State

from .base import HipChart, require_non_negative_int, require_text, stay
from .commands import (
    BlockEntries,
    CancelAllOrders,
    FlattenAllPositions,
    HardStopHalted,
    HardStopRearmed,
    VerifyFlat,
)


class HardStopMachine(HipChart):
    """Latching stop: block, cancel, flatten, verify, stay halted until an operator resets."""

    armed = State(initial=True)
    tripped = State()
    cancelling = State()
    flattening = State()
    verifying = State()
    halted = State()

    # `tripped` is transient: the trip is recorded on entry, then the sequence starts at once.
    tripped.to(cancelling)

    trip = armed.to(tripped, on="record_trip") | stay(
        cancelling, flattening, verifying, halted, on="record_trip"
    )
    orders_cancelled = stay(cancelling, cond="stale_attempt") | cancelling.to(flattening)
    positions_flat = stay(flattening, cond="stale_attempt") | flattening.to(verifying)
    flatten_given_up = stay(flattening, cond="stale_attempt") | flattening.to(
        verifying, on="record_given_up"
    )
    verified = (
        stay(verifying, cond="stale_attempt")
        | verifying.to(halted, cond="is_flat")
        | verifying.to(cancelling, on="next_attempt")
    )
    tick = stay(cancelling, flattening, verifying, on="retry_if_due") | stay(armed, halted)
    operator_reset = halted.to(armed, on="rearm")

    def __init__(self, *, retry_interval_ms: int = 2_000, outbox: list | None = None) -> None:
        require_non_negative_int(retry_interval_ms, "retry_interval_ms")
        if retry_interval_ms == 0:
            raise ValueError("retry_interval_ms must be > 0")
        self.retry_interval_ms = retry_interval_ms
        self.reasons: list[str] = []
        # markets whose flatten gave up during this stop (verification settled them)
        self.given_up: list[str] = []
        self.attempt = 0
        self.tripped_at_ms: int | None = None
        # When the current step's command was (re-)emitted; None until a time is known.
        self._step_since_ms: int | None = None
        self._now_ms: int | None = None
        super().__init__(outbox=outbox)

    @property
    def is_armed(self) -> bool:
        return self.state == "armed"

    @property
    def is_halted(self) -> bool:
        return self.state == "halted"

    # --- validators --------------------------------------------------------------------------

    @trip.validators
    def _validate_trip(self, reason: str, now_ms: int) -> None:
        require_text(reason, "trip reason")
        require_non_negative_int(now_ms, "now_ms")

    @verified.validators
    def _validate_verified(self, flat: bool) -> None:
        if not isinstance(flat, bool):
            raise ValueError(f"flat must be a bool, got {flat!r}")

    @flatten_given_up.validators
    def _validate_given_up(self, markets: tuple[str, ...] = ()) -> None:
        if not isinstance(markets, tuple):
            raise ValueError(f"markets must be a tuple of market names, got {markets!r}")
        for market in markets:
            require_text(market, "market")

    @tick.validators
    def _validate_tick(self, now_ms: int) -> None:
        require_non_negative_int(now_ms, "now_ms")

    # --- guards ------------------------------------------------------------------------------

    def stale_attempt(self, attempt: int | None = None) -> bool:
        return attempt is not None and attempt != self.attempt

    def is_flat(self, flat: bool) -> bool:
        return flat

    def tick_due(self, now_ms: int) -> bool:
        """Whether `tick` would do anything (re-emit the step's command, or start the step's
        clock); False in armed and halted and while the step's retry interval runs. The
        runtime sends `tick` only when this holds: a transition costs ~90 µs, a comparison
        nothing."""
        state = self.state
        if state in ("armed", "halted"):
            return False
        if state in ("cancelling", "flattening", "verifying"):
            since = self._step_since_ms
            return since is None or now_ms - since >= self.retry_interval_ms
        return True

    # --- actions -----------------------------------------------------------------------------

    def record_trip(self, reason: str, now_ms: int) -> None:
        if reason not in self.reasons:  # a repeated trigger adds nothing to the report
            self.reasons.append(reason)
        self._now_ms = now_ms

    def on_enter_tripped(self) -> None:
        self.attempt = 1
        self.tripped_at_ms = self._now_ms
        self.emit(BlockEntries(self.reasons[-1]))

    def record_given_up(self, markets: tuple[str, ...] = ()) -> None:
        self.given_up.extend(m for m in markets if m not in self.given_up)

    def next_attempt(self, now_ms: int | None = None) -> None:
        self.attempt += 1
        self._now_ms = now_ms

    def _start_step(self, command: object, now_ms: int | None) -> None:
        self._step_since_ms = now_ms if now_ms is not None else self._now_ms
        self._now_ms = None
        self.emit(command)

    def on_enter_cancelling(self, now_ms: int | None = None) -> None:
        self._start_step(CancelAllOrders(self.attempt), now_ms)

    def on_enter_flattening(self, now_ms: int | None = None) -> None:
        self._start_step(FlattenAllPositions(self.attempt), now_ms)

    def on_enter_verifying(self, now_ms: int | None = None) -> None:
        self._start_step(VerifyFlat(self.attempt), now_ms)

    def on_enter_halted(self) -> None:
        self._step_since_ms = None
        self.emit(HardStopHalted(tuple(self.reasons)))

    def current_command(self) -> object:
        step = {
            "cancelling": CancelAllOrders,
            "flattening": FlattenAllPositions,
            "verifying": VerifyFlat,
        }[self.state]
        return step(self.attempt)

    def retry_if_due(self, now_ms: int) -> None:
        if self._step_since_ms is None:
            # The step began on an event that carried no time: start its clock now.
            self._step_since_ms = now_ms
            return
        if now_ms - self._step_since_ms >= self.retry_interval_ms:
            self._step_since_ms = now_ms
            self.emit(self.current_command())

    def rearm(self) -> None:
        self.reasons = []
        self.given_up = []
        self.attempt = 0
        self.tripped_at_ms = None
        self.emit(HardStopRearmed())
