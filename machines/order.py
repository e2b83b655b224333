"""OrderMachine: the lifecycle of ONE live order, from the moment its post frame is written.

created → sent → resting → partially_filled → filled | cancelled | rejected (final); an order of
this account the bot did not send is adopted from the exchange's open orders (created → resting
or partially_filled by `adopt`, with the oid and filled size the exchange lists). A post
without an answer (timeout, disconnect) sends sent/resting/partially_filled → unknown, which only
reconciliation (`resolve`) or a later authoritative fact settles: unknown is not failed, and the
order is never resent blindly.

Contract for late events: final states have no outgoing transitions, so any event delivered to a
terminal machine raises TransitionNotAllowed and cannot change it. The dispatcher drops machines
once terminal (they cost ~20 KB each) and treats events for unknown cloids as a logged anomaly.

Deliberately ignored events (internal self-transitions):
- `resting` in resting or partially_filled (a duplicate post response or an "open" orderUpdate
  after a partial fill) — only the oid is checked;
- `fill` with a tid already counted (snapshot overlap, replays): each tid counts once;
- `fill` in unknown that does not complete the order: recorded, the order stays unknown;
- `lost` in unknown: re-emits ReconcileOrder (the earlier request may have died with the socket).

A fact whose numbers cannot belong to this order (an oid other than the one it has, a filled
total above its size, a fill that would take it beyond its size) raises InconsistentFact before
any transition: the machine is untouched, and the caller decides what the contradiction means
(the dispatcher sends `lost`, so the exchange is asked).

Event ids `sent`, `resting`, `cancelled` and `rejected` equal state ids, so those events are
declared under `*_event` attributes; deliver them with `send("sent", ...)` etc.
"""

from __future__ import annotations

from decimal import Decimal

from statemachine import Event, State

from .base import (
    HipChart,
    parse_positive_decimal,
    require_non_negative_int,
    require_text,
    stay,
)
from .commands import OrderTerminal, ReconcileOrder

OUTCOMES = ("filled", "cancelled", "rejected", "resting", "absent")


class InconsistentFact(ValueError):
    """A well-formed fact that contradicts what this order already is."""


class OrderMachine(HipChart):
    """One order: fills counted once per tid, never beyond the order size."""

    created = State(initial=True)
    sent = State()
    resting = State()
    partially_filled = State()
    unknown = State()
    filled = State(final=True, enter="announce_terminal")
    cancelled = State(final=True, enter="announce_terminal")
    rejected = State(final=True, enter="announce_terminal")

    sent_event = Event(created.to(sent, on="record_post"), id="sent", name="Sent")
    # An order of this account that the bot did not send, listed by the exchange as resting:
    # its oid and the size already filled come from that listing, there is no post of ours.
    adopt = created.to(resting, cond="nothing_filled", on="record_adoption") | created.to(
        partially_filled, on="record_adoption"
    )
    resting_event = Event(
        sent.to(resting, on="record_oid")
        | stay(resting, partially_filled, on="record_oid")
        | unknown.to(resting, unless="has_fills", on="record_oid")
        | unknown.to(partially_filled, on="record_oid"),
        id="resting",
        name="Resting",
    )
    filled_at_post = (
        sent.to(filled, on="record_post_fill")
        | resting.to(filled, on="record_post_fill")
        | partially_filled.to(filled, on="record_post_fill")
        | unknown.to(filled, on="record_post_fill")
    )
    fill = (
        stay(sent, resting, partially_filled, unknown, cond="duplicate_fill")
        | sent.to(filled, cond="fill_completes", on="add_fill")
        | resting.to(filled, cond="fill_completes", on="add_fill")
        | partially_filled.to(filled, cond="fill_completes", on="add_fill")
        | unknown.to(filled, cond="fill_completes", on="add_fill")
        | sent.to(partially_filled, on="add_fill")
        | resting.to(partially_filled, on="add_fill")
        | stay(partially_filled, unknown, on="add_fill")
    )
    cancelled_event = Event(
        sent.to(cancelled, on="record_status")
        | resting.to(cancelled, on="record_status")
        | partially_filled.to(cancelled, on="record_status")
        | unknown.to(cancelled, on="record_status"),
        id="cancelled",
        name="Cancelled",
    )
    rejected_event = Event(
        created.to(rejected, on="record_reason")
        | sent.to(rejected, unless="has_fills", on="record_reason")
        | unknown.to(rejected, unless="has_fills", on="record_reason"),
        id="rejected",
        name="Rejected",
    )
    lost = (
        sent.to(unknown, on="record_reason")
        | resting.to(unknown, on="record_reason")
        | partially_filled.to(unknown, on="record_reason")
        | stay(unknown, on="request_reconcile")
    )
    resolve = (
        unknown.to(filled, cond="outcome_filled", on="record_oid_if_given")
        | unknown.to(cancelled, cond="outcome_cancelled", on="record_oid_if_given")
        | unknown.to(rejected, cond="outcome_rejected", unless="has_fills")
        | unknown.to(resting, cond="outcome_resting", unless="has_fills", on="record_oid_if_given")
        | unknown.to(partially_filled, cond="outcome_resting", on="record_oid_if_given")
        | unknown.to(rejected, cond="outcome_absent", unless="has_fills")
        | unknown.to(filled, cond=["outcome_absent", "fully_filled"])
        | unknown.to(cancelled, cond="outcome_absent")
    )

    def __init__(
        self,
        *,
        cloid: str,
        market: str,
        is_buy: bool,
        size: str,
        reduce_only: bool,
        outbox: list | None = None,
    ) -> None:
        self._bind(cloid=cloid, market=market, is_buy=is_buy, size=size, reduce_only=reduce_only)
        self.oid: int | None = None
        self.post_id: int | None = None
        self.sent_epoch: int | None = None
        self.filled_sz = Decimal(0)
        self.tids: set[int | str] = set()
        self.status: str | None = None
        self.reason: str | None = None
        super().__init__(outbox=outbox)

    def bind(self, *, cloid: str, market: str, is_buy: bool, size: str, reduce_only: bool) -> None:
        """Say which order this machine is. Building a machine costs far more than a transition
        (the library registers every callback per instance), so the runtime builds spares off
        the hot path and binds one when an order is sent; only a machine still in `created`
        may be bound (whether it came from the pool or was built for this order)."""
        if self.state != "created" or self.sent_epoch is not None or self.tids:
            raise ValueError(f"order {self.cloid}: cannot rebind a machine in state {self.state}")
        self._bind(cloid=cloid, market=market, is_buy=is_buy, size=size, reduce_only=reduce_only)

    def _bind(self, *, cloid: str, market: str, is_buy: bool, size: str, reduce_only: bool) -> None:
        self.cloid = require_text(cloid, "cloid")
        self.market = require_text(market, "market")
        for flag, name in ((is_buy, "is_buy"), (reduce_only, "reduce_only")):
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be a bool, got {flag!r}")
        self.is_buy = is_buy
        self.reduce_only = reduce_only
        self.size = parse_positive_decimal(size, "size")

    def recycle(self) -> None:
        """Return a terminal machine to `created`, unbound, for the runtime's pool.

        Building a machine costs milliseconds; this costs microseconds. It bypasses the
        library's hooks on purpose (no callbacks run: the order this machine was is over), so
        only a machine in a final state may be recycled, and the runtime recycles it only after
        dropping every reference to the old order. That a recycled machine behaves exactly as a
        new one is checked by tests/machines/test_order_machine.py.
        """
        if not self.is_final:
            raise ValueError(f"order {self.cloid}: cannot recycle a live machine ({self.state})")
        self.cloid = self.market = "spare"
        self.oid = self.post_id = self.sent_epoch = None
        self.filled_sz = Decimal(0)
        self.tids = set()
        self.status = self.reason = None
        self.current_state_value = self.created.value
        # Reaching a top-level final state stops the library's engine; a machine back in its
        # initial state must accept events again.
        self._engine.running = True

    @classmethod
    def spare(cls, outbox: list | None = None) -> OrderMachine:
        """An unbound machine for the runtime's pool; `bind` it before its first event."""
        return cls(
            cloid="spare", market="spare", is_buy=True, size="1", reduce_only=False, outbox=outbox
        )

    # --- guards ------------------------------------------------------------------------------

    def has_fills(self) -> bool:
        return self.filled_sz > 0

    def fully_filled(self) -> bool:
        return self.filled_sz >= self.size

    def duplicate_fill(self, tid: int | str) -> bool:
        return tid in self.tids

    def nothing_filled(self, oid: int, filled_sz: str) -> bool:
        return Decimal(filled_sz) == 0

    def fill_completes(self, sz: str) -> bool:
        return self.filled_sz + Decimal(sz) >= self.size

    def outcome_filled(self, outcome: str) -> bool:
        return outcome == "filled"

    def outcome_cancelled(self, outcome: str) -> bool:
        return outcome == "cancelled"

    def outcome_rejected(self, outcome: str) -> bool:
        return outcome == "rejected"

    def outcome_resting(self, outcome: str) -> bool:
        return outcome == "resting"

    def outcome_absent(self, outcome: str) -> bool:
        return outcome == "absent"

    # --- validators (run before guards; a bad payload leaves the machine untouched) ----------

    def _check_oid(self, oid: object) -> None:
        require_non_negative_int(oid, "oid")
        if self.oid is not None and oid != self.oid:
            raise InconsistentFact(
                f"order {self.cloid}: oid {oid} conflicts with known oid {self.oid}"
            )

    @sent_event.validators
    def _validate_sent(self, post_id: int, epoch: int) -> None:
        require_non_negative_int(post_id, "post_id")
        require_non_negative_int(epoch, "epoch")

    @resting_event.validators
    def _validate_resting(self, oid: int) -> None:
        self._check_oid(oid)

    @adopt.validators
    def _validate_adopt(self, oid: int, filled_sz: str) -> None:
        self._check_oid(oid)
        filled = Decimal(filled_sz) if isinstance(filled_sz, str) else None
        if filled is None or not filled.is_finite() or not 0 <= filled < self.size:
            raise ValueError(
                f"order {self.cloid}: adopted filled size {filled_sz!r} must be in [0, {self.size})"
            )

    @filled_at_post.validators
    def _validate_post_fill(self, oid: int, total_sz: str) -> None:
        self._check_oid(oid)
        total = parse_positive_decimal(total_sz, "total_sz")
        if total > self.size:
            raise InconsistentFact(f"order {self.cloid}: total_sz {total} exceeds size {self.size}")

    @fill.validators
    def _validate_fill(self, sz: str, tid: int | str) -> None:
        if isinstance(tid, bool) or not isinstance(tid, int | str) or tid == "":
            raise ValueError(
                f"order {self.cloid}: tid must be an int or non-empty str, got {tid!r}"
            )
        amount = parse_positive_decimal(sz, "fill sz")
        if tid not in self.tids and self.filled_sz + amount > self.size:
            raise InconsistentFact(
                f"order {self.cloid}: fill {amount} (tid {tid}) would take filled size "
                f"{self.filled_sz} beyond order size {self.size}"
            )

    @resolve.validators
    def _validate_resolve(self, outcome: str, oid: int | None = None) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown reconciliation outcome {outcome!r} (expected {OUTCOMES})")
        if oid is not None:
            self._check_oid(oid)

    # --- actions -----------------------------------------------------------------------------

    def record_post(self, post_id: int, epoch: int) -> None:
        self.post_id = post_id
        self.sent_epoch = epoch

    def record_adoption(self, oid: int, filled_sz: str) -> None:
        self.oid = oid
        self.filled_sz = Decimal(filled_sz)

    def record_oid(self, oid: int) -> None:
        self.oid = oid

    def record_oid_if_given(self, oid: int | None = None) -> None:
        if oid is not None:
            self.oid = oid

    def record_post_fill(self, oid: int, total_sz: str) -> None:
        self.oid = oid
        # Fills may already have been counted from userFills: never count them twice.
        self.filled_sz = max(self.filled_sz, Decimal(total_sz))

    def add_fill(self, sz: str, tid: int | str) -> None:
        self.tids.add(tid)
        self.filled_sz += Decimal(sz)

    def record_status(self, status: str) -> None:
        self.status = status

    def record_reason(self, reason: str) -> None:
        self.reason = reason

    def request_reconcile(self) -> None:
        self.emit(ReconcileOrder(self.cloid, self.oid))

    def on_enter_unknown(self) -> None:
        self.request_reconcile()

    def announce_terminal(self, target: State) -> None:
        self.emit(OrderTerminal(self.cloid, target.id, self.reason))
