"""FlattenMachine: request/sent/done, retries with backoff, timeout → unresolved, refusals
(not_sent) through the same attempts and backoff, failure escalation, no-position answers, and
a hypothesis check that never two flatten orders are outstanding."""

from __future__ import annotations

import pytest
from hip3.machines.commands import FlattenAttemptFailed, FlattenFailed, SendFlattenOrder
from hip3.machines.flatten import FlattenMachine
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from statemachine.exceptions import TransitionNotAllowed


def make(max_attempts: int = 3) -> FlattenMachine:
    return FlattenMachine(
        market="xyz:AAA",
        timeout_ms=1_000,
        backoff_ms=100,
        backoff_max_ms=400,
        max_attempts=max_attempts,
    )


def inflight(sm: FlattenMachine, cloid: str = "c1", now: int = 0) -> None:
    sm.send("request", reason="exit", now_ms=now)
    sm.send("sent", cloid=cloid, now_ms=now)


def test_request_sent_done_flat_returns_to_idle() -> None:
    sm = make()
    sm.send("request", reason="time stop", now_ms=0)
    assert sm.state == "requested" and sm.outbox == [SendFlattenOrder("xyz:AAA", 1)]
    sm.send("request", reason="hardstop", now_ms=1)  # recorded, no second order
    sm.send("sent", cloid="c1", now_ms=2)
    sm.send("request", reason="again", now_ms=3)
    assert sm.state == "inflight" and sm.inflight_cloid == "c1" and len(sm.outbox) == 1
    sm.send("done", outcome="filled", now_ms=10, flat=True, cloid="c1")
    assert sm.state == "idle" and sm.inflight_cloid is None and sm.failures == 0


def test_not_flat_waits_with_backoff_then_retries() -> None:
    sm = make()
    inflight(sm)
    sm.send("done", outcome="rejected", now_ms=10, flat=False)
    assert sm.state == "waiting" and sm.failures == 1 and sm.retry_at_ms == 110
    sm.send("tick", now_ms=109)
    assert sm.state == "waiting"
    sm.send("tick", now_ms=110)
    assert sm.state == "requested" and sm.outbox[-1] == SendFlattenOrder("xyz:AAA", 2)
    sm.send("sent", cloid="c2", now_ms=111)
    sm.send("done", outcome="cancelled", now_ms=120, flat=False)
    assert sm.failures == 2 and sm.retry_at_ms == 120 + 200
    sm.send("tick", now_ms=320)
    sm.send("sent", cloid="c3", now_ms=321)
    sm.send("done", outcome="filled", now_ms=330, flat=False)  # progress resets failures
    assert sm.state == "waiting" and sm.failures == 0 and sm.retry_at_ms == 430


def test_backoff_is_capped() -> None:
    sm = make(max_attempts=10)
    for failures, delay in [(1, 100), (2, 200), (3, 400), (4, 400), (9, 400)]:
        sm.failures = failures
        assert sm.backoff_delay_ms() == delay


def test_timeout_never_allows_a_second_order_until_resolved() -> None:
    sm = make()
    inflight(sm)
    sm.send("tick", now_ms=1_000)
    assert sm.state == "inflight"
    sm.send("tick", now_ms=1_001)
    assert sm.state == "unresolved" and sm.failures == 1 and sm.inflight_cloid == "c1"
    for t in (5_000, 50_000):
        sm.send("tick", now_ms=t)
        sm.send("request", reason="hardstop", now_ms=t)
    assert sm.state == "unresolved"
    assert sum(isinstance(c, SendFlattenOrder) for c in sm.outbox) == 1
    with pytest.raises(ValueError, match="not the order in flight"):
        sm.send("done", outcome="filled", now_ms=1, flat=True, cloid="other")
    sm.send("done", outcome="rejected", now_ms=60_000, flat=False, cloid="c1")
    assert sm.state == "waiting" and sm.failures == 1  # the timeout already counted it


def test_an_unresolved_order_settled_by_reconciliation_ends_with_done() -> None:
    sm = make()
    inflight(sm)
    sm.send("tick", now_ms=2_000)
    assert sm.state == "unresolved"
    # reconciliation found the order gone: the order machine ends cancelled, and says so
    sm.send("done", outcome="cancelled", now_ms=2_500, flat=False, cloid="c1")
    assert sm.state == "waiting" and sm.inflight_cloid is None
    assert sm.retry_at_ms == 2_500 + 100


def test_failures_escalate_once_and_park_in_failed() -> None:
    sm = make(max_attempts=2)
    inflight(sm)
    sm.send("done", outcome="rejected", now_ms=10, flat=False)
    assert sm.outbox[-1] == FlattenAttemptFailed("xyz:AAA", 1, "rejected")
    sm.send("tick", now_ms=110)
    sm.send("sent", cloid="c2", now_ms=110)
    sm.send("tick", now_ms=2_000)  # timeout: second failure, the order still unknown
    assert sm.state == "unresolved" and sm.outbox[-1] == FlattenAttemptFailed(
        "xyz:AAA", 2, "timeout"
    )
    assert not any(isinstance(c, FlattenFailed) for c in sm.outbox)
    sm.send("done", outcome="cancelled", now_ms=2_100, flat=False)
    assert sm.state == "failed" and sm.outbox[-1] == FlattenFailed("xyz:AAA", 2, "cancelled")
    assert sum(isinstance(c, FlattenFailed) for c in sm.outbox) == 1
    sm.send("tick", now_ms=99_999)
    assert sm.state == "failed"  # no automatic hammering
    sm.send("request", reason="hardstop", now_ms=100_000)
    assert sm.state == "requested" and sm.failures == 0


def test_not_sent_counts_as_failure_and_retries_after_the_backoff() -> None:
    sm = make(max_attempts=2)
    sm.send("request", reason="exit", now_ms=0)
    sm.send("not_sent", reason="no reference price", now_ms=5)
    assert sm.state == "waiting" and sm.failures == 1 and sm.retry_at_ms == 105
    assert sm.outbox[-1] == FlattenAttemptFailed("xyz:AAA", 1, "not sent: no reference price")
    sm.send("tick", now_ms=104)
    assert sm.state == "waiting"  # no retry before the backoff
    sm.send("tick", now_ms=105)
    assert sm.state == "requested" and sm.outbox[-1] == SendFlattenOrder("xyz:AAA", 2)
    sm.send("not_sent", reason="no reference price", now_ms=106)
    assert sm.state == "failed"
    assert sm.outbox[-1] == FlattenFailed("xyz:AAA", 2, "not sent: no reference price")


def test_not_sent_without_a_try_waits_without_counting() -> None:
    sm = make(max_attempts=1)
    sm.send("request", reason="exit", now_ms=0)
    for t in (0, 100, 200, 300):
        sm.send("tick", now_ms=t)
        assert sm.state == "requested"
        sm.send("not_sent", reason="no connection", now_ms=t, failure=False)
        assert sm.state == "waiting" and sm.failures == 0 and sm.retry_at_ms == t + 100
    assert not any(isinstance(c, FlattenAttemptFailed | FlattenFailed) for c in sm.outbox)


def test_no_position_gives_up_at_once_unless_flat() -> None:
    sm = make(max_attempts=5)
    inflight(sm)
    sm.send("done", outcome="no_position", now_ms=10, flat=False, cloid="c1")
    assert sm.state == "failed" and sm.failures == 1
    assert sm.outbox[-2:] == [
        FlattenAttemptFailed("xyz:AAA", 1, "no_position"),
        FlattenFailed("xyz:AAA", 1, "no_position"),
    ]
    other = make()
    inflight(other)
    other.send("done", outcome="no_position", now_ms=10, flat=True, cloid="c1")
    assert other.state == "idle"


def test_cancel_request() -> None:
    sm = make()
    sm.send("cancel_request")
    assert sm.state == "idle"
    inflight(sm)
    sm.send("cancel_request")  # the order's own answer decides
    assert sm.state == "inflight"
    sm.send("done", outcome="rejected", now_ms=1, flat=False)
    sm.send("cancel_request")
    assert sm.state == "idle" and sm.failures == 0
    # requested, but the runtime found the position already flat: nothing to send
    sm.send("request", reason="exit", now_ms=2)
    assert sm.state == "requested"
    sm.send("cancel_request")
    assert sm.state == "idle"


def test_not_allowed_events_raise() -> None:
    sm = make()
    for ev, kw in [
        ("sent", {"cloid": "c", "now_ms": 0}),
        ("done", {"outcome": "filled", "now_ms": 0, "flat": True}),
        ("abandon", {"cloid": "c"}),
    ]:
        with pytest.raises((TransitionNotAllowed, ValueError)):
            sm.send(ev, **kw)
    assert sm.state == "idle"
    with pytest.raises(TransitionNotAllowed):
        sm.send("order_finished")


@pytest.mark.parametrize(
    ("event", "kwargs", "message"),
    [
        ("done", {"outcome": "maybe", "now_ms": 1, "flat": True}, "unknown flatten outcome"),
        ("done", {"outcome": "filled", "now_ms": 1, "flat": None}, "flat must be a bool"),
        ("request", {"reason": "", "now_ms": 1}, "reason"),
    ],
)
def test_bad_payloads_are_named(event: str, kwargs: dict, message: str) -> None:
    sm = make()
    inflight(sm)
    with pytest.raises(ValueError, match=message):
        sm.send(event, **kwargs)
    assert sm.state == "inflight"


def test_bad_construction() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        make(max_attempts=0)


# --- stateful ------------------------------------------------------------------------------------

REFERENCE: dict[tuple[str, str], set[str]] = {
    ("idle", "request"): {"requested"},
    ("failed", "request"): {"requested"},
    **{(s, "request"): {s} for s in ("requested", "inflight", "unresolved", "waiting")},
    ("requested", "sent"): {"inflight"},
    ("requested", "not_sent"): {"waiting", "failed"},
    ("inflight", "done"): {"idle", "waiting", "failed"},
    ("unresolved", "done"): {"idle", "waiting", "failed"},
    ("inflight", "tick"): {"inflight", "unresolved"},
    ("waiting", "tick"): {"waiting", "requested"},
    **{(s, "tick"): {s} for s in ("idle", "requested", "unresolved", "failed")},
    ("requested", "cancel_request"): {"idle"},
    ("waiting", "cancel_request"): {"idle"},
    ("failed", "cancel_request"): {"idle"},
    **{(s, "cancel_request"): {s} for s in ("idle", "inflight", "unresolved")},
}


class FlattenModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sm = make(max_attempts=3)
        self.now = 0
        self.next_cloid = 0
        self.outstanding: set[str] = set()  # orders sent and not yet resolved
        self.requested_unsent = 0
        self.entered_failed = 0

    def _deliver(self, event: str, **kwargs) -> bool:
        before = self.sm.state
        allowed = REFERENCE.get((before, event))
        if allowed is None:
            with pytest.raises((TransitionNotAllowed, ValueError)):
                self.sm.send(event, **kwargs)
            assert self.sm.state == before
            return False
        orders_before = self._orders()
        self.sm.send(event, **kwargs)
        assert self.sm.state in allowed, (before, event, self.sm.state)
        self.entered_failed += before != "failed" and self.sm.state == "failed"
        self.requested_unsent += self._orders() - orders_before
        return True

    def _orders(self) -> int:
        return sum(isinstance(c, SendFlattenOrder) for c in self.sm.outbox)

    @rule()
    def request(self) -> None:
        self._deliver("request", reason="exit", now_ms=self.now)

    @rule()
    def sent(self) -> None:
        cloid = f"c{self.next_cloid}"
        if self._deliver("sent", cloid=cloid, now_ms=self.now):
            self.next_cloid += 1
            self.requested_unsent -= 1
            self.outstanding.add(cloid)

    @rule(failure=st.booleans())
    def not_sent(self, failure: bool) -> None:
        if self._deliver("not_sent", reason="down", now_ms=self.now, failure=failure):
            self.requested_unsent -= 1

    @rule(
        outcome=st.sampled_from(["filled", "rejected", "cancelled", "no_position"]),
        flat=st.booleans(),
    )
    def done(self, outcome: str, flat: bool) -> None:
        cloid = self.sm.inflight_cloid
        if self._deliver("done", outcome=outcome, now_ms=self.now, flat=flat, cloid=cloid):
            self.outstanding.discard(cloid)

    @rule(advance=st.integers(0, 1_500))
    def tick(self, advance: int) -> None:
        self.now += advance
        self._deliver("tick", now_ms=self.now)

    @rule()
    def cancel_request(self) -> None:
        was_requested = self.sm.state == "requested"
        if self._deliver("cancel_request") and was_requested:
            self.requested_unsent -= 1  # the requested order will never be built

    @invariant()
    def never_two_flatten_orders_outstanding(self) -> None:
        assert self.requested_unsent + len(self.outstanding) <= 1
        assert self.requested_unsent in (0, 1)
        if self.outstanding:
            assert self.outstanding == {self.sm.inflight_cloid}

    @invariant()
    def failure_escalation_is_bounded(self) -> None:
        assert self.sm.failures <= self.sm.max_attempts

    @invariant()
    def gives_up_once_per_entry_into_failed(self) -> None:
        assert sum(isinstance(c, FlattenFailed) for c in self.sm.outbox) == self.entered_failed


TestFlattenModel = FlattenModel.TestCase
