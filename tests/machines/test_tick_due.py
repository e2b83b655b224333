"""`tick_due` is exact: the runtime sends a machine `tick` only when `tick_due` says so, which
is safe only if a tick it calls not due changes nothing at all (state, commands, recorded
fields), and it is worth it only if a tick it calls due does change something.

Each model drives one machine through random events (out-of-order ones are refused and
ignored) and, on every tick, checks both directions against a snapshot of the machine."""

from __future__ import annotations

import contextlib
import copy
import random
from typing import Any

from hip3.machines.connection import ConnectionMachine
from hip3.machines.flatten import FlattenMachine
from hip3.machines.hardstop import HardStopMachine
from hip3.machines.readiness import RECONCILIATION_PARTS, ReadinessMachine
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule
from statemachine.exceptions import TransitionNotAllowed

# the state-machine library's own per-instance attributes (not the machine's data)
_LIBRARY = {
    "model",
    "history_values",
    "state_field",
    "start_configuration_values",
    "_callbacks",
    "_config",
    "_listeners",
    "_engine",
}


def snapshot(sm: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"state": sm.state, "outbox": list(sm.outbox)}
    for name, value in vars(sm).items():
        if name in _LIBRARY or name == "outbox" or type(value).__name__ == "InstanceState":
            continue
        data[name] = value.getstate() if isinstance(value, random.Random) else copy.deepcopy(value)
    return data


def tick_and_check(sm: Any, due: bool, **kwargs: Any) -> None:
    before = snapshot(sm)
    try:
        sm.send("tick", **kwargs)
    except TransitionNotAllowed:
        assert due, "tick_due said a refused tick was not due (the runtime would hide a bug)"
        return
    changed = snapshot(sm) != before
    assert changed == due, (before["state"], kwargs, due)


def _send(sm: Any, event: str, **kwargs: Any) -> None:
    # refused when out of order for the state the model happens to be in
    with contextlib.suppress(TransitionNotAllowed, ValueError):
        sm.send(event, **kwargs)


class ConnectionTicks(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sm = ConnectionMachine(
            backoff_min_ms=100,
            backoff_max_ms=1_600,
            backoff_reset_after_ms=10_000,
            ping_after_ms=1_000,
            pong_timeout_ms=500,
            handshake_timeout_ms=5_000,
            exposed_backoff_max_ms=800,
            exposed_ping_interval_ms=300,
            exposed_pong_timeout_ms=200,
            rng=random.Random(1),
        )
        self.now = 0
        self.last_rx = 0

    @rule(
        event=st.sampled_from(["pong", "pong", "socket_lost"]),
        advance=st.integers(0, 300),
        exposed=st.booleans(),
    )
    def event(self, event: str, advance: int, exposed: bool) -> None:
        self.now += advance
        kwargs: dict[str, Any] = {"now_ms": self.now}
        if event == "socket_lost":
            kwargs.update(reason="lost", exposed=exposed)
        _send(self.sm, event, **kwargs)

    def handshake_step(self) -> None:
        """The event that moves the handshake on from where it is (random events alone
        seldom reach live before a timeout)."""
        step = {
            "disconnected": "start",
            "connecting": "socket_open",
            "subscribing": "subscriptions_acked",
            "reconciling": "reconciled",
        }.get(self.sm.state)
        if step is not None:
            self.sm.send(step, now_ms=self.now)

    @rule(advance=st.integers(0, 2_000), rx_recent=st.booleans())
    def frame(self, advance: int, rx_recent: bool) -> None:
        self.now += advance
        if rx_recent:
            self.last_rx = self.now

    @rule(advance=st.integers(0, 800), exposed=st.booleans(), progress=st.booleans())
    def tick(self, advance: int, exposed: bool, progress: bool) -> None:
        if progress:
            self.handshake_step()
        self.now += advance
        due = self.sm.tick_due(self.now, self.last_rx, exposed)
        tick_and_check(self.sm, due, now_ms=self.now, last_rx_ms=self.last_rx, exposed=exposed)


class HardStopTicks(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sm = HardStopMachine(retry_interval_ms=50)
        self.now = 0

    @rule(
        event=st.sampled_from(["orders_cancelled", "positions_flat", "flatten_given_up"]),
        stale=st.booleans(),
    )
    def step_answer(self, event: str, stale: bool) -> None:
        _send(self.sm, event, attempt=self.sm.attempt + (1 if stale else 0))

    @rule()
    def trip(self) -> None:
        _send(self.sm, "trip", reason="loss", now_ms=self.now)

    @rule(flat=st.booleans(), with_time=st.booleans())
    def verified(self, flat: bool, with_time: bool) -> None:
        _send(self.sm, "verified", flat=flat, **({"now_ms": self.now} if with_time else {}))

    @rule()
    def operator_reset(self) -> None:
        _send(self.sm, "operator_reset")

    @rule(advance=st.sampled_from([0, 1, 25, 49, 50, 51, 120]), progress=st.booleans())
    def tick(self, advance: int, progress: bool) -> None:
        if progress:  # the stop's next step, answered (random answers seldom get far)
            step = {
                "armed": ("trip", {"reason": "loss", "now_ms": self.now}),
                "cancelling": ("orders_cancelled", {}),
                "flattening": ("positions_flat", {}),
                "verifying": ("verified", {"flat": False}),  # a new attempt, no time given
            }.get(self.sm.state)
            if step is not None:
                self.sm.send(step[0], **step[1])
        self.now += advance
        tick_and_check(self.sm, self.sm.tick_due(self.now), now_ms=self.now)


class FlattenTicks(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sm = FlattenMachine(
            market="xyz:AAA", timeout_ms=1_000, backoff_ms=100, backoff_max_ms=400, max_attempts=3
        )
        self.now = 0
        self.cloids = 0

    @rule()
    def request(self) -> None:
        _send(self.sm, "request", reason="exit", now_ms=self.now)

    @rule()
    def sent(self) -> None:
        self.cloids += 1
        _send(self.sm, "sent", cloid=f"c{self.cloids}", now_ms=self.now)

    @rule(failure=st.booleans())
    def not_sent(self, failure: bool) -> None:
        _send(self.sm, "not_sent", reason="no socket", now_ms=self.now, failure=failure)

    @rule(
        outcome=st.sampled_from(["filled", "rejected", "cancelled", "no_position"]),
        flat=st.booleans(),
    )
    def done(self, outcome: str, flat: bool) -> None:
        cloid = self.sm.inflight_cloid
        _send(self.sm, "done", outcome=outcome, now_ms=self.now, flat=flat, cloid=cloid)

    @rule()
    def cancel_request(self) -> None:
        _send(self.sm, "cancel_request")

    @rule(advance=st.sampled_from([0, 1, 99, 100, 101, 400, 999, 1_000, 1_001]))
    def tick(self, advance: int) -> None:
        self.now += advance
        tick_and_check(self.sm, self.sm.tick_due(self.now), now_ms=self.now)


MARKETS = ["xyz:AAA", "xyz:BBB"]
JOINING = "xyz:CCC"
KEYS = [f"{p}:{c}" for c in (*MARKETS, JOINING) for p in ("bbo", "activeAssetCtx")] + [
    "orderUpdates",
    "userFills",
    "userEvents",
]


class ReadinessTicks(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sm = ReadinessMachine(
            epoch=1,
            markets=MARKETS,
            trading=True,
            first_data_timeout_ms=1_000,
            exclude_on_timeout=True,
            started_ms=0,
        )
        self.now = 0

    @rule(key=st.sampled_from(KEYS), snapshot=st.booleans(), ack=st.booleans())
    def stream(self, key: str, snapshot: bool, ack: bool) -> None:
        if ack:
            _send(self.sm, "ack", key=key)
        else:
            _send(self.sm, "data", key=key, snapshot=snapshot)

    @rule(part=st.sampled_from(RECONCILIATION_PARTS))
    def reconciled(self, part: str) -> None:
        _send(self.sm, "reconciled", part=part)

    @rule(armed=st.booleans())
    def flags(self, armed: bool) -> None:
        _send(self.sm, "connection_live")
        _send(self.sm, "hardstop_armed", armed=armed)

    @rule(market=st.sampled_from(MARKETS))
    def retire(self, market: str) -> None:
        _send(self.sm, "retire", market=market, reason="delisted")

    @rule()
    def join(self) -> None:
        """A market listed mid-epoch: never excluded by the timeout, whatever it lacks."""
        _send(self.sm, "join", market=JOINING)

    @rule(policy=st.booleans())
    def policy(self, policy: bool) -> None:
        self.sm.exclude_on_timeout = policy  # the configuration's choice, either way

    @rule()
    def end(self) -> None:
        _send(self.sm, "end")

    @rule(advance=st.integers(0, 700))
    def tick(self, advance: int) -> None:
        self.now += advance
        due = self.sm.tick_due(self.now)
        if self.sm.is_final:
            assert not due  # the runtime never ticks an ended epoch
            return
        tick_and_check(self.sm, due, now_ms=self.now)


TestConnectionTicks = ConnectionTicks.TestCase
TestHardStopTicks = HardStopTicks.TestCase
TestFlattenTicks = FlattenTicks.TestCase
TestReadinessTicks = ReadinessTicks.TestCase


def test_flatten_timeout_and_retry_are_due_exactly_when_the_transitions_fire() -> None:
    fm = FlattenMachine(
        market="xyz:AAA", timeout_ms=1_000, backoff_ms=100, backoff_max_ms=400, max_attempts=3
    )
    assert not fm.tick_due(0)  # idle
    fm.send("request", reason="exit", now_ms=0)
    fm.send("sent", cloid="c1", now_ms=0)
    tick_and_check(fm, fm.tick_due(1_000), now_ms=1_000)  # not yet expired: `>` the timeout
    assert fm.state == "inflight"
    tick_and_check(fm, fm.tick_due(1_001), now_ms=1_001)
    assert fm.state == "unresolved"
    fm.send("done", outcome="rejected", now_ms=1_001, flat=False, cloid="c1")
    assert fm.state == "waiting"
    retry = fm.retry_at_ms
    tick_and_check(fm, fm.tick_due(retry - 1), now_ms=retry - 1)
    tick_and_check(fm, fm.tick_due(retry), now_ms=retry)
    assert fm.state == "requested"


def test_hardstop_step_retry_is_due_at_its_interval() -> None:
    hs = HardStopMachine(retry_interval_ms=50)
    assert not hs.tick_due(10**9)  # armed
    hs.send("trip", reason="loss", now_ms=100)
    assert hs.state == "cancelling"
    tick_and_check(hs, hs.tick_due(149), now_ms=149)
    assert hs.tick_due(150)
    tick_and_check(hs, True, now_ms=150)


def test_a_joined_market_is_never_excluded_by_the_first_data_timeout() -> None:
    sm = ReadinessMachine(
        epoch=1,
        markets=MARKETS,
        trading=False,
        first_data_timeout_ms=1_000,
        exclude_on_timeout=True,
        started_ms=0,
    )
    for coin in MARKETS:
        for prefix in ("bbo", "activeAssetCtx"):
            sm.send("data", key=f"{prefix}:{coin}")
    sm.send("join", market=JOINING)
    assert not sm.tick_due(5_000)  # it holds nothing back, so nothing is due for it
    tick_and_check(sm, False, now_ms=5_000)
    assert JOINING not in sm.excluded
