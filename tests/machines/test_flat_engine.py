"""The flat-chart engine (machines/engine.py) behaves exactly as the library's own engine.

Every hip3 machine runs on `FlatChartEngine`, which replaces three steps of python-statemachine's
`SyncEngine` with their answers for a flat chart. Here each machine is built twice, one copy put
back on the library's engine, and both receive the same events: after every event they must
agree on the state, the error raised (type and text), the commands emitted, every public
attribute, and the order and arguments of the generic callbacks a listener sees.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hip3.machines.base import HipChart
from hip3.machines.connection import ConnectionMachine
from hip3.machines.engine import FlatChartEngine
from hip3.machines.flatten import FlattenMachine
from hip3.machines.hardstop import HardStopMachine
from hip3.machines.order import OUTCOMES, OrderMachine
from hip3.machines.readiness import ReadinessMachine
from hypothesis import given
from hypothesis import strategies as st
from statemachine import State
from statemachine.engines.sync import SyncEngine
from statemachine.exceptions import TransitionNotAllowed

MARKETS = ["xyz:AAA", "xyz:BBB"]
KEYS = [f"{p}:{c}" for c in MARKETS for p in ("bbo", "activeAssetCtx")] + [
    "orderUpdates",
    "userFills",
    "userEvents",
]


def _connection() -> ConnectionMachine:
    return ConnectionMachine(
        backoff_min_ms=100,
        backoff_max_ms=1_600,
        backoff_reset_after_ms=10_000,
        ping_after_ms=1_000,
        pong_timeout_ms=500,
        handshake_timeout_ms=5_000,
        rng=random.Random(7),
    )


def _readiness() -> ReadinessMachine:
    return ReadinessMachine(
        epoch=3,
        markets=MARKETS,
        trading=True,
        first_data_timeout_ms=1_000,
        exclude_on_timeout=True,
        started_ms=0,
    )


def _flatten() -> FlattenMachine:
    return FlattenMachine(
        market="xyz:AAA", timeout_ms=1_000, backoff_ms=100, backoff_max_ms=400, max_attempts=2
    )


def _order() -> OrderMachine:
    return OrderMachine(
        cloid="0x" + "ab" * 16, market="xyz:AAA", is_buy=True, size="1.0", reduce_only=False
    )


# Per machine: how to build it, and the events it may receive. "NOW" in a payload is replaced by
# a clock that only moves forward; some payloads are wrong on purpose (both engines must refuse
# them alike).
MENUS: dict[str, tuple[Any, list[tuple[str, dict]]]] = {
    "order": (
        _order,
        [
            ("sent", {"post_id": 1, "epoch": 1}),
            ("sent", {"post_id": -1, "epoch": 1}),
            ("adopt", {"oid": 9, "filled_sz": "0"}),
            ("adopt", {"oid": 9, "filled_sz": "0.5"}),
            ("resting", {"oid": 9}),
            ("resting", {"oid": 8}),
            ("fill", {"sz": "0.25", "tid": 1}),
            ("fill", {"sz": "0.5", "tid": 2}),
            ("fill", {"sz": "1.0", "tid": 3}),
            ("fill", {"sz": "2", "tid": 4}),
            ("filled_at_post", {"oid": 9, "total_sz": "1.0"}),
            ("cancelled", {"status": "canceled"}),
            ("rejected", {"reason": "no"}),
            ("lost", {"reason": "timeout"}),
            *[("resolve", {"outcome": o}) for o in OUTCOMES],
            ("resolve", {"outcome": "resting", "oid": 9}),
            ("resolve", {"outcome": "maybe"}),
        ],
    ),
    "connection": (
        _connection,
        [
            ("start", {"now_ms": "NOW"}),
            ("socket_open", {"now_ms": "NOW"}),
            ("subscriptions_acked", {"now_ms": "NOW"}),
            ("reconciled", {"now_ms": "NOW"}),
            ("socket_lost", {"now_ms": "NOW", "reason": "x"}),
            ("socket_lost", {"now_ms": "NOW", "reason": "old", "epoch": 0}),
            ("tick", {"now_ms": "NOW", "last_rx_ms": 0}),
            ("tick", {"now_ms": "NOW", "last_rx_ms": "NOW", "exposed": True}),
            ("pong", {"now_ms": "NOW"}),
            ("stale_stream", {"now_ms": "NOW", "stream": "bbo"}),
            ("shutdown", {"now_ms": "NOW"}),
            ("closed", {"now_ms": "NOW"}),
        ],
    ),
    "readiness": (
        _readiness,
        [
            *[("ack", {"key": k}) for k in KEYS],
            *[("data", {"key": k}) for k in KEYS],
            ("data", {"key": "userFills", "snapshot": True}),
            ("data", {"key": "nope"}),
            ("reconciled", {"part": "positions"}),
            ("reconciled", {"part": "orders"}),
            ("reconciled", {"part": "nope"}),
            ("connection_live", {}),
            ("hardstop_armed", {"armed": True}),
            ("hardstop_armed", {"armed": False}),
            ("tick", {"now_ms": "NOW"}),
            ("retire", {"market": "xyz:BBB", "reason": "delisted"}),
            ("join", {"market": "xyz:CCC"}),
            ("end", {}),
        ],
    ),
    "hardstop": (
        lambda: HardStopMachine(retry_interval_ms=100),
        [
            ("trip", {"reason": "loss", "now_ms": "NOW"}),
            ("trip", {"reason": "", "now_ms": "NOW"}),
            ("orders_cancelled", {}),
            ("orders_cancelled", {"attempt": 1}),
            ("positions_flat", {"attempt": 1}),
            ("positions_flat", {}),
            ("flatten_given_up", {"markets": ("xyz:AAA",), "attempt": 1}),
            ("verified", {"flat": True}),
            ("verified", {"flat": False, "now_ms": "NOW"}),
            ("tick", {"now_ms": "NOW"}),
            ("operator_reset", {}),
        ],
    ),
    "flatten": (
        _flatten,
        [
            ("request", {"reason": "exit", "now_ms": "NOW"}),
            ("sent", {"cloid": "c1", "now_ms": "NOW"}),
            ("sent", {"cloid": "c2", "now_ms": "NOW"}),
            ("not_sent", {"reason": "no price", "now_ms": "NOW"}),
            ("not_sent", {"reason": "no connection", "now_ms": "NOW", "failure": False}),
            ("done", {"outcome": "filled", "now_ms": "NOW", "flat": True, "cloid": "c1"}),
            ("done", {"outcome": "cancelled", "now_ms": "NOW", "flat": False}),
            ("done", {"outcome": "rejected", "now_ms": "NOW", "flat": False, "cloid": "c2"}),
            ("tick", {"now_ms": "NOW"}),
            ("cancel_request", {}),
        ],
    ),
}


class CallbackRecorder:
    """A listener with the library's generic hooks only: what runs, in which order, with what."""

    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def _note(self, hook: str, event: Any, source: Any, target: Any, state: Any) -> None:
        ids = tuple(getattr(s, "id", None) for s in (source, target, state))
        self.seen.append((hook, str(event), *ids))

    def before_transition(self, event: Any, source: Any, target: Any, state: Any) -> None:
        self._note("before", event, source, target, state)

    def on_exit_state(self, event: Any, source: Any, target: Any, state: Any) -> None:
        self._note("exit", event, source, target, state)

    def on_transition(self, event: Any, source: Any, target: Any, state: Any) -> None:
        self._note("on", event, source, target, state)

    def on_enter_state(self, event: Any, source: Any, target: Any, state: Any) -> None:
        self._note("enter", event, source, target, state)

    def after_transition(self, event: Any, source: Any, target: Any, state: Any) -> None:
        self._note("after", event, source, target, state)


def _public_view(m: HipChart) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for name, value in vars(m).items():
        if name.startswith("_") or isinstance(value, State) or name == "model":
            continue
        view[name] = value.getstate() if isinstance(value, random.Random) else value
    return view


def _pair(
    name: str, listen: bool = True
) -> tuple[HipChart, HipChart, CallbackRecorder, CallbackRecorder]:
    build = MENUS[name][0]
    flat, library = build(), build()
    assert type(flat._engine) is FlatChartEngine
    library._engine = SyncEngine(library)  # the library's own engine, as before this change
    recorders = CallbackRecorder(), CallbackRecorder()
    if listen:  # a listener registers callbacks for every state and transition
        flat.add_listener(recorders[0])
        library.add_listener(recorders[1])
    return flat, library, *recorders


def _step(m: HipChart, event: str, kwargs: dict, recorder: CallbackRecorder) -> tuple:
    mark, seen = len(m.outbox), len(recorder.seen)
    try:
        result = m.send(event, **kwargs)
        error = None
    except (TransitionNotAllowed, ValueError, TypeError) as exc:
        result, error = None, (type(exc).__name__, str(exc))
    return (
        m.state,
        m.is_final,
        result,
        error,
        m.outbox[mark:],
        recorder.seen[seen:],
        _public_view(m),
    )


@pytest.mark.parametrize("listen", [True, False], ids=["listener", "bare"])
@pytest.mark.parametrize("name", sorted(MENUS))
@given(data=st.data())
def test_flat_engine_matches_the_library_engine(
    name: str, listen: bool, data: st.DataObject
) -> None:
    flat, library, flat_seen, library_seen = _pair(name, listen)
    assert _public_view(flat) == _public_view(library)
    menu = MENUS[name][1]
    now = 0
    steps = data.draw(
        st.lists(st.tuples(st.sampled_from(menu), st.integers(0, 3_000)), max_size=25)
    )
    for (event, template), advance in steps:
        now += advance
        kwargs = {k: now if v == "NOW" else v for k, v in template.items()}
        assert _step(flat, event, kwargs, flat_seen) == _step(
            library, event, kwargs, library_seen
        ), (event, kwargs)


def test_every_hip3_machine_runs_on_the_flat_engine() -> None:
    for name, (build, _menu) in MENUS.items():
        assert type(build()._engine) is FlatChartEngine, name


def test_a_chart_the_flat_engine_cannot_shortcut_keeps_the_library_engine() -> None:
    class Nested(HipChart):
        class outer(State.Compound):
            a = State(initial=True)
            b = State()
            go = a.to(b)

        done = State(final=True)
        finish = outer.to(done)

    class SelfEntries(HipChart):
        enable_self_transition_entries = True
        a = State(initial=True)
        b = State(final=True)
        go = a.to(b)

    assert type(Nested()._engine) is SyncEngine
    assert type(SelfEntries()._engine) is SyncEngine


def test_an_action_that_raises_leaves_the_state_as_the_library_leaves_it() -> None:
    # The final state's entry action emits OrderTerminal; with no outbox it raises after the
    # configuration was updated, and both engines must put the configuration back.
    flat, library, flat_seen, library_seen = _pair("order")
    outcomes = []
    for m, seen in ((flat, flat_seen), (library, library_seen)):
        m.send("sent", post_id=1, epoch=1)
        outbox, m.outbox = m.outbox, None
        with pytest.raises(AttributeError):
            m.send("cancelled", status="canceled")
        failed = (m.state, m.is_final, m.status)
        m.outbox = outbox
        retried = _step(m, "cancelled", {"status": "canceled"}, seen)
        outcomes.append((failed, retried, seen.seen))
    assert outcomes[0] == outcomes[1]
    failed, retried, _seen = outcomes[0]
    assert failed[:2] == ("sent", False)
    assert retried[:2] == ("cancelled", True)


class PrepareCounter:
    """A listener with `prepare_event`: the library calls it each time it builds callback
    arguments, so the flat engine must build them as often."""

    def __init__(self) -> None:
        self.calls = 0

    def prepare_event(self) -> dict:
        self.calls += 1
        return {}


def test_with_prepare_event_callbacks_arguments_are_built_as_often_as_the_library_does() -> None:
    flat, library, _, _ = _pair("order", listen=False)
    counters = PrepareCounter(), PrepareCounter()
    flat.add_listener(counters[0])
    library.add_listener(counters[1])
    for m in (flat, library):
        m.send("sent", post_id=1, epoch=1)
        m.send("resting", oid=9)
        m.send("fill", sz="0.5", tid=1)
        m.send("fill", sz="0.5", tid=2)
        assert m.state == "filled"
    assert counters[0].calls == counters[1].calls > 0
