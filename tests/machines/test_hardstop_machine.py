"""HardStopMachine: the full sequence, retries, recorded re-trips, operator reset, and a
hypothesis check that it never re-arms without an operator reset and halts only on flat."""

from __future__ import annotations

import pytest
from hip3.machines.commands import (
    BlockEntries,
    CancelAllOrders,
    FlattenAllPositions,
    HardStopHalted,
    HardStopRearmed,
    VerifyFlat,
)
from hip3.machines.hardstop import HardStopMachine
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from statemachine.exceptions import TransitionNotAllowed


def tripped() -> HardStopMachine:
    sm = HardStopMachine(retry_interval_ms=100)
    sm.send("trip", reason="loss limit", now_ms=1_000)
    return sm


def test_full_sequence_to_halted_and_operator_reset() -> None:
    sm = tripped()
    assert sm.state == "cancelling" and not sm.is_armed
    sm.send("orders_cancelled")
    sm.send("positions_flat")
    sm.send("verified", flat=True)
    assert sm.state == "halted" and sm.is_halted
    assert sm.outbox == [
        BlockEntries("loss limit"),
        CancelAllOrders(1),
        FlattenAllPositions(1),
        VerifyFlat(1),
        HardStopHalted(("loss limit",)),
    ]
    sm.send("operator_reset")
    assert sm.is_armed and sm.reasons == [] and sm.outbox[-1] == HardStopRearmed()


def test_not_flat_starts_a_new_attempt() -> None:
    sm = tripped()
    sm.send("orders_cancelled", attempt=1)
    sm.send("positions_flat", attempt=1)
    sm.send("verified", flat=False, attempt=1)
    assert sm.state == "cancelling" and sm.attempt == 2
    assert sm.outbox[-1] == CancelAllOrders(2)
    sm.send("orders_cancelled", attempt=1)  # late answer to the superseded attempt: ignored
    assert sm.state == "cancelling"
    sm.send("orders_cancelled", attempt=2)
    assert sm.state == "flattening" and sm.outbox[-1] == FlattenAllPositions(2)


def test_second_trip_is_recorded_not_restarted() -> None:
    sm = tripped()
    sm.send("orders_cancelled")
    count = len(sm.outbox)
    sm.send("trip", reason="operator", now_ms=1_001)
    assert sm.state == "flattening" and sm.reasons == ["loss limit", "operator"]
    assert len(sm.outbox) == count
    sm.send("positions_flat")
    sm.send("verified", flat=True)
    sm.send("trip", reason="after halt", now_ms=2_000)
    assert sm.state == "halted" and sm.reasons[-1] == "after halt"
    sm.send("trip", reason="operator", now_ms=2_001)  # a repeated reason is not repeated
    assert sm.reasons == ["loss limit", "operator", "after halt"]


def test_flatten_given_up_moves_on_to_verification() -> None:
    sm = tripped()
    sm.send("orders_cancelled", attempt=1)
    sm.send("flatten_given_up", markets=("xyz:AAA",), attempt=1)
    assert sm.state == "verifying" and sm.outbox[-1] == VerifyFlat(1)
    assert sm.given_up == ["xyz:AAA"]
    sm.send("verified", flat=True, attempt=1)
    assert sm.state == "halted"
    sm.send("operator_reset")
    assert sm.given_up == []


def test_a_stale_flatten_given_up_is_ignored() -> None:
    sm = tripped()
    sm.send("orders_cancelled", attempt=1)
    sm.send("positions_flat", attempt=1)
    sm.send("verified", flat=False, attempt=1)
    sm.send("orders_cancelled", attempt=2)
    sm.send("flatten_given_up", markets=("xyz:AAA",), attempt=1)
    assert sm.state == "flattening" and sm.given_up == []
    with pytest.raises(ValueError, match="markets must be a tuple"):
        sm.send("flatten_given_up", markets=["xyz:AAA"], attempt=2)


def test_tick_re_emits_the_current_step_after_the_interval() -> None:
    sm = tripped()
    sm.send("tick", now_ms=1_099)
    assert sm.outbox[-1] == CancelAllOrders(1) and len(sm.outbox) == 2
    sm.send("tick", now_ms=1_100)
    assert sm.outbox[-1] == CancelAllOrders(1) and len(sm.outbox) == 3
    sm.send("orders_cancelled")  # no time: the next tick starts the clock
    sm.send("tick", now_ms=5_000)
    assert len(sm.outbox) == 4
    sm.send("tick", now_ms=5_100)
    assert sm.outbox[-1] == FlattenAllPositions(1) and len(sm.outbox) == 5


def test_ticks_in_armed_and_halted_do_nothing() -> None:
    sm = HardStopMachine()
    sm.send("tick", now_ms=1)
    assert sm.is_armed and sm.outbox == []


@pytest.mark.parametrize("steps", [0, 1, 2])
def test_operator_reset_before_halted_is_a_clear_error(steps: int) -> None:
    sm = tripped()
    for ev, kw in [("orders_cancelled", {}), ("positions_flat", {})][:steps]:
        sm.send(ev, **kw)
    with pytest.raises(TransitionNotAllowed, match="Operator reset"):
        sm.send("operator_reset")
    with pytest.raises(TransitionNotAllowed):
        HardStopMachine().send("operator_reset")


def test_out_of_order_answers_raise() -> None:
    sm = tripped()
    with pytest.raises(TransitionNotAllowed):
        sm.send("positions_flat")
    with pytest.raises(TransitionNotAllowed):
        sm.send("verified", flat=True)
    with pytest.raises(TransitionNotAllowed):
        HardStopMachine().send("orders_cancelled")


@pytest.mark.parametrize(
    ("event", "kwargs"),
    [("trip", {"reason": "", "now_ms": 1}), ("trip", {"reason": "x", "now_ms": -1})],
)
def test_bad_trip_is_named(event: str, kwargs: dict) -> None:
    sm = HardStopMachine()
    with pytest.raises(ValueError):
        sm.send(event, **kwargs)
    assert sm.is_armed and sm.outbox == []


def test_verified_needs_a_bool_and_interval_must_be_positive() -> None:
    sm = tripped()
    sm.send("orders_cancelled")
    sm.send("positions_flat")
    with pytest.raises(ValueError, match="flat must be a bool"):
        sm.send("verified", flat="yes")
    with pytest.raises(ValueError):
        HardStopMachine(retry_interval_ms=0)


# --- stateful ------------------------------------------------------------------------------------

STEPS = {"cancelling", "flattening", "verifying", "halted"}
REFERENCE: dict[tuple[str, str], set[str]] = {
    ("armed", "trip"): {"cancelling"},
    **{(s, "trip"): {s} for s in STEPS},
    ("cancelling", "orders_cancelled"): {"flattening"},
    ("flattening", "positions_flat"): {"verifying"},
    ("flattening", "flatten_given_up"): {"verifying"},
    ("verifying", "verified"): {"halted", "cancelling"},
    **{(s, "tick"): {s} for s in STEPS | {"armed"}},
    ("halted", "operator_reset"): {"armed"},
}


class HardStopModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sm = HardStopMachine(retry_interval_ms=50)
        self.now = 0
        self.resets = 0
        self.last_verified_flat: bool | None = None

    def _deliver(self, event: str, **kwargs) -> None:
        before = self.sm.state
        allowed = REFERENCE.get((before, event))
        if allowed is None:
            with pytest.raises(TransitionNotAllowed):
                self.sm.send(event, **kwargs)
            assert self.sm.state == before
            return
        self.sm.send(event, **kwargs)
        assert self.sm.state in allowed
        if before != "armed" and self.sm.state == "armed":
            assert event == "operator_reset"
            self.resets += 1

    @rule(reason=st.sampled_from(["loss", "operator", "rejects"]))
    def trip(self, reason: str) -> None:
        self._deliver("trip", reason=reason, now_ms=self.now)

    @rule()
    def orders_cancelled(self) -> None:
        self._deliver("orders_cancelled")

    @rule()
    def positions_flat(self) -> None:
        self._deliver("positions_flat")

    @rule()
    def flatten_given_up(self) -> None:
        self._deliver("flatten_given_up", markets=("xyz:AAA",))

    @rule(flat=st.booleans())
    def verified(self, flat: bool) -> None:
        before = self.sm.state
        self._deliver("verified", flat=flat)
        if before == "verifying":
            self.last_verified_flat = flat

    @rule(advance=st.integers(0, 120))
    def tick(self, advance: int) -> None:
        self.now += advance
        self._deliver("tick", now_ms=self.now)

    @rule()
    def operator_reset(self) -> None:
        self._deliver("operator_reset")

    @invariant()
    def halted_only_after_a_flat_verification(self) -> None:
        if self.sm.state == "halted":
            assert self.last_verified_flat is True

    @invariant()
    def rearmed_exactly_once_per_operator_reset(self) -> None:
        rearms = [c for c in self.sm.outbox if isinstance(c, HardStopRearmed)]
        assert len(rearms) == self.resets

    @invariant()
    def entries_blocked_whenever_not_armed(self) -> None:
        blocks = sum(isinstance(c, BlockEntries) for c in self.sm.outbox)
        assert blocks == self.resets + (0 if self.sm.is_armed else 1)


TestHardStopModel = HardStopModel.TestCase
