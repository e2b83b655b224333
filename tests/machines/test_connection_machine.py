"""ConnectionMachine: every transition, the documented no-ops, backoff maths, and a
hypothesis model check (epochs strictly increase; one OpenSocket per entry to connecting)."""

from __future__ import annotations

import random

import pytest
from hip3.machines.commands import (
    CloseSocket,
    EpochEnded,
    OpenSocket,
    SendPing,
    SendSubscriptions,
    StartReconciliation,
)
from hip3.machines.connection import ConnectionMachine
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from statemachine.exceptions import TransitionNotAllowed

PARAMS = dict(
    backoff_min_ms=100,
    backoff_max_ms=1_600,
    backoff_reset_after_ms=10_000,
    ping_after_ms=1_000,
    pong_timeout_ms=500,
    handshake_timeout_ms=5_000,
)


def make(seed: int = 7, **overrides) -> ConnectionMachine:
    return ConnectionMachine(**{**PARAMS, **overrides}, rng=random.Random(seed))


def to_live(sm: ConnectionMachine, now: int = 0) -> None:
    sm.send("start", now_ms=now)
    sm.send("socket_open", now_ms=now + 1)
    sm.send("subscriptions_acked", now_ms=now + 2)
    sm.send("reconciled", now_ms=now + 3)


def test_happy_path_emits_one_command_per_step() -> None:
    sm = make()
    assert sm.state == "disconnected" and sm.epoch == 0
    to_live(sm)
    assert sm.is_live and sm.epoch == 1
    assert sm.outbox == [OpenSocket(1), SendSubscriptions(1), StartReconciliation(1)]


@pytest.mark.parametrize("steps", [1, 2, 3, 4])
def test_socket_lost_from_each_connected_state_goes_to_backoff(steps: int) -> None:
    sm = make()
    events = ["start", "socket_open", "subscriptions_acked", "reconciled"][:steps]
    for i, ev in enumerate(events):
        sm.send(ev, now_ms=i)
    sm.outbox.clear()
    sm.send("socket_lost", now_ms=50, reason="closed by peer")
    assert sm.state == "backoff"
    assert sm.outbox == [EpochEnded(1, "closed by peer")]
    assert sm.attempt == 1
    assert 50 + 50 <= sm.retry_at_ms <= 50 + 100


def test_backoff_waits_then_reconnects_with_a_new_epoch() -> None:
    sm = make()
    to_live(sm)
    sm.send("socket_lost", now_ms=10, reason="x")
    retry = sm.retry_at_ms
    sm.send("tick", now_ms=retry - 1, last_rx_ms=0)
    assert sm.state == "backoff"
    sm.outbox.clear()
    sm.send("tick", now_ms=retry, last_rx_ms=0)
    assert sm.state == "connecting" and sm.epoch == 2
    assert sm.outbox == [OpenSocket(2)]


def test_delay_doubles_and_caps_with_bounded_jitter() -> None:
    sm = make()
    for attempt, cap in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1600), (6, 1600), (40, 1600)]:
        for _ in range(20):
            assert cap // 2 <= sm.retry_delay_ms(attempt) <= cap


def test_attempt_resets_only_after_a_long_enough_live_connection() -> None:
    sm = make()
    to_live(sm)
    sm.send("socket_lost", now_ms=10, reason="x")
    assert sm.attempt == 1
    sm.send("tick", now_ms=sm.retry_at_ms, last_rx_ms=0)
    for ev in ("socket_open", "subscriptions_acked", "reconciled"):
        sm.send(ev, now_ms=1_000)
    sm.send("socket_lost", now_ms=1_000 + 9_999, reason="short")
    assert sm.attempt == 2  # live for less than backoff_reset_after_ms: keeps growing
    sm.send("tick", now_ms=sm.retry_at_ms, last_rx_ms=0)
    for ev in ("socket_open", "subscriptions_acked", "reconciled"):
        sm.send(ev, now_ms=50_000)
    sm.send("socket_lost", now_ms=60_000, reason="long")
    assert sm.attempt == 1  # the trap of the Rust bot: it never reset


def test_ping_once_then_pong_clears_then_heartbeat_timeout() -> None:
    sm = make()
    to_live(sm)
    sm.outbox.clear()
    sm.send("tick", now_ms=500, last_rx_ms=0)
    assert sm.outbox == []
    sm.send("tick", now_ms=1_000, last_rx_ms=0)
    sm.send("tick", now_ms=1_100, last_rx_ms=0)
    assert sm.outbox == [SendPing(1)] and sm.ping_outstanding
    sm.send("pong", now_ms=1_200)
    assert not sm.ping_outstanding
    sm.send("tick", now_ms=2_300, last_rx_ms=1_200)
    assert sm.outbox[-1] == SendPing(1)
    sm.send("tick", now_ms=2_800, last_rx_ms=1_200)
    assert sm.state == "live"  # exactly pong_timeout_ms: not yet overdue
    sm.send("tick", now_ms=2_801, last_rx_ms=1_200)
    assert sm.state == "backoff"
    assert sm.outbox[-2:] == [
        CloseSocket(1, "heartbeat timeout"),
        EpochEnded(1, "heartbeat timeout"),
    ]


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_handshake_timeout(steps: int) -> None:
    sm = make()
    for i, ev in enumerate(["start", "socket_open", "subscriptions_acked"][:steps]):
        sm.send(ev, now_ms=i)
    sm.send("tick", now_ms=5_000, last_rx_ms=4_999)
    assert sm.state != "backoff"
    sm.send("tick", now_ms=5_001, last_rx_ms=5_000)
    assert sm.state == "backoff"
    assert CloseSocket(1, "handshake timeout") in sm.outbox
    assert sm.outbox[-1] == EpochEnded(1, "handshake timeout")


def test_documented_no_ops() -> None:
    sm = make()
    sm.send("tick", now_ms=0, last_rx_ms=0)  # disconnected
    to_live(sm)
    sm.send("socket_lost", now_ms=5, reason="old socket", epoch=0)  # stale epoch
    assert sm.state == "live"
    sm.send("socket_lost", now_ms=6, reason="x")
    before = list(sm.outbox)
    sm.send("socket_lost", now_ms=7, reason="the close we asked for")
    sm.send("pong", now_ms=8)
    assert sm.state == "backoff" and sm.outbox == before


def test_shutdown_closes_and_final_state_rejects_everything() -> None:
    sm = make()
    to_live(sm)
    sm.outbox.clear()
    sm.send("shutdown", now_ms=10)
    assert sm.state == "closing"
    assert sm.outbox == [CloseSocket(1, "shutdown"), EpochEnded(1, "shutdown")]
    for ev, kw in [
        ("shutdown", {}),
        ("socket_lost", {"reason": "x"}),
        ("socket_open", {}),
        ("pong", {}),
        ("tick", {"last_rx_ms": 0}),
    ]:
        sm.send(ev, now_ms=11, **kw)
    assert sm.state == "closing" and len(sm.outbox) == 2
    sm.send("closed", now_ms=12)
    assert sm.state == "closed" and sm.is_final
    with pytest.raises(TransitionNotAllowed):
        sm.send("start", now_ms=13)


def test_shutdown_from_disconnected_and_backoff() -> None:
    sm = make()
    sm.send("shutdown", now_ms=0)
    assert sm.state == "closing" and sm.outbox == [CloseSocket(0, "shutdown")]
    sm2 = make()
    sm2.send("start", now_ms=0)
    sm2.send("socket_lost", now_ms=1, reason="x")
    sm2.outbox.clear()
    sm2.send("shutdown", now_ms=2)
    assert sm2.outbox == [CloseSocket(1, "shutdown")]


def test_not_allowed_events_raise() -> None:
    sm = make()
    with pytest.raises(TransitionNotAllowed):
        sm.send("socket_open", now_ms=0)
    to_live(sm)
    with pytest.raises(TransitionNotAllowed):
        sm.send("start", now_ms=1)
    assert sm.state == "live"


def test_missing_payload_propagates_instead_of_being_swallowed() -> None:
    sm = make()
    to_live(sm)
    with pytest.raises(TypeError):
        sm.send("tick", now_ms=5)  # last_rx_ms missing
    assert sm.state == "live"


@pytest.mark.parametrize(
    "overrides",
    [
        {"backoff_min_ms": 0},
        {"backoff_max_ms": 50},
        {"ping_after_ms": -1},
        {"pong_timeout_ms": 1.5},
    ],
)
def test_bad_parameters_are_named(overrides: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(overrides))):
        make(**overrides)


def test_rng_must_be_injected() -> None:
    with pytest.raises(ValueError, match="rng"):
        ConnectionMachine(**PARAMS, rng=None)  # type: ignore[arg-type]


# --- stateful model check -----------------------------------------------------------------------

HANDSHAKE = {"connecting", "subscribing", "reconciling"}
CONNECTED = HANDSHAKE | {"live"}
# (state, event) -> states the machine may be in afterwards; anything absent must raise.
REFERENCE: dict[tuple[str, str], set[str]] = {
    ("disconnected", "start"): {"connecting"},
    ("connecting", "socket_open"): {"subscribing"},
    ("subscribing", "subscriptions_acked"): {"reconciling"},
    ("reconciling", "reconciled"): {"live"},
    **{(s, "socket_lost"): {"backoff"} for s in CONNECTED},
    ("backoff", "socket_lost"): {"backoff"},
    ("closing", "socket_lost"): {"closing"},
    ("disconnected", "tick"): {"disconnected"},
    ("connecting", "tick"): {"connecting", "backoff"},
    ("subscribing", "tick"): {"subscribing", "backoff"},
    ("reconciling", "tick"): {"reconciling", "backoff"},
    ("live", "tick"): {"live", "backoff"},
    ("backoff", "tick"): {"backoff", "connecting"},
    ("closing", "tick"): {"closing"},
    **{(s, "pong"): {s} for s in ("subscribing", "reconciling", "live", "backoff", "closing")},
    **{(s, "shutdown"): {"closing"} for s in CONNECTED | {"disconnected", "backoff", "closing"}},
    ("closing", "socket_open"): {"closing"},
    ("closing", "subscriptions_acked"): {"closing"},
    ("closing", "reconciled"): {"closing"},
    ("closing", "closed"): {"closed"},
}
EVENTS = sorted({ev for _, ev in REFERENCE})


class ConnectionModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sm = make(seed=1)
        self.now = 0
        self.last_rx = 0
        self.epochs_seen: list[int] = []
        self.connecting_entries = 0
        self.seen_outbox = 0

    @rule(
        event=st.sampled_from(EVENTS),
        advance=st.integers(0, 3_000),
        rx_recent=st.booleans(),
    )
    def deliver(self, event: str, advance: int, rx_recent: bool) -> None:
        self.now += advance
        if rx_recent:
            self.last_rx = self.now
        kwargs: dict = {"now_ms": self.now}
        if event == "tick":
            kwargs["last_rx_ms"] = self.last_rx
        if event == "socket_lost":
            kwargs["reason"] = "lost"
        before = self.sm.state
        allowed = REFERENCE.get((before, event))
        if allowed is None:
            with pytest.raises(TransitionNotAllowed):
                self.sm.send(event, **kwargs)
            assert self.sm.state == before
            return
        self.sm.send(event, **kwargs)
        assert self.sm.state in allowed, (before, event, self.sm.state)
        if self.sm.state == "connecting" and before != "connecting":
            self.connecting_entries += 1

    @invariant()
    def epochs_strictly_increase_one_open_per_entry(self) -> None:
        opens = [c.epoch for c in self.sm.outbox if isinstance(c, OpenSocket)]
        assert opens == list(range(1, len(opens) + 1))
        assert len(opens) == self.connecting_entries == self.sm.epoch

    @invariant()
    def commands_belong_to_existing_epochs(self) -> None:
        for cmd in self.sm.outbox:
            epoch = getattr(cmd, "epoch", None)
            if epoch is not None:
                assert 0 <= epoch <= self.sm.epoch

    @invariant()
    def backoff_has_a_retry_time(self) -> None:
        if self.sm.state == "backoff":
            assert self.sm.retry_at_ms is not None and self.sm.attempt >= 1


TestConnectionModel = ConnectionModel.TestCase
