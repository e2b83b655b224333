"""OrderMachine: every transition and no-op, terminal immutability, and a hypothesis check that
fills never exceed the size and each tid counts once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hip3.machines.commands import OrderTerminal, ReconcileOrder
from hip3.machines.order import OUTCOMES, OrderMachine
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from statemachine.exceptions import TransitionNotAllowed


def make(size: str = "1.0") -> OrderMachine:
    return OrderMachine(cloid="0xabc", market="xyz:AAA", is_buy=True, size=size, reduce_only=False)


def sent(size: str = "1.0") -> OrderMachine:
    sm = make(size)
    sm.send("sent", post_id=11, epoch=2)
    return sm


def test_resting_partial_then_filled() -> None:
    sm = sent()
    assert sm.state == "sent" and sm.post_id == 11 and sm.sent_epoch == 2
    sm.send("resting", oid=42)
    sm.send("resting", oid=42)  # duplicate: recorded no-op
    assert sm.state == "resting" and sm.oid == 42
    sm.send("fill", sz="0.4", tid=1)
    assert sm.state == "partially_filled" and sm.filled_sz == Decimal("0.4")
    sm.send("resting", oid=42)  # "open" update after a partial fill
    sm.send("fill", sz="0.4", tid=1)  # same tid again: ignored
    sm.send("fill", sz="0.2", tid=2)
    assert sm.state == "partially_filled" and sm.filled_sz == Decimal("0.6")
    sm.send("fill", sz="0.4", tid=3)
    assert sm.state == "filled" and sm.is_final
    assert sm.outbox == [OrderTerminal("0xabc", "filled")]


def test_fill_before_post_response_then_post_fill_is_not_double_counted() -> None:
    sm = sent()
    sm.send("fill", sz="0.5", tid=9)
    assert sm.state == "partially_filled"
    sm.send("filled_at_post", oid=7, total_sz="0.5")
    assert sm.state == "filled" and sm.filled_sz == Decimal("0.5") and sm.oid == 7


def test_terminal_paths_from_sent() -> None:
    a = sent()
    a.send("filled_at_post", oid=1, total_sz="1.0")
    assert a.state == "filled"
    b = sent()
    b.send("cancelled", status="canceled")
    assert b.state == "cancelled" and b.status == "canceled"
    c = sent()
    c.send("rejected", reason="Insufficient margin")
    assert c.state == "rejected" and c.outbox == [
        OrderTerminal("0xabc", "rejected", "Insufficient margin")
    ]
    d = make()
    d.send("rejected", reason="could not sign")
    assert d.state == "rejected"


@pytest.mark.parametrize(
    "prefix", [[], [("resting", {"oid": 5})], [("fill", {"sz": "0.1", "tid": 1})]]
)
def test_lost_goes_unknown_and_asks_for_reconciliation(prefix: list) -> None:
    sm = sent()
    for ev, kw in prefix:
        sm.send(ev, **kw)
    sm.send("lost", reason="post timeout")
    assert sm.state == "unknown"
    assert sm.outbox[-1] == ReconcileOrder("0xabc", sm.oid)
    sm.send("lost", reason="disconnect")  # asks again, stays unknown
    assert sm.state == "unknown" and sm.outbox.count(ReconcileOrder("0xabc", sm.oid)) == 2


@pytest.mark.parametrize(
    ("fills", "outcome", "expected"),
    [
        ([], "filled", "filled"),
        ([], "cancelled", "cancelled"),
        ([], "rejected", "rejected"),
        ([], "resting", "resting"),
        (["0.3"], "resting", "partially_filled"),
        ([], "absent", "rejected"),
        (["0.3"], "absent", "cancelled"),
        (["0.3", "0.7"], None, "filled"),
    ],
)
def test_resolve_outcomes(fills: list[str], outcome: str | None, expected: str) -> None:
    sm = sent()
    sm.send("lost", reason="timeout")
    for i, sz in enumerate(fills):
        sm.send("fill", sz=sz, tid=100 + i)
    if outcome is not None:
        sm.send("resolve", outcome=outcome, oid=77)
    assert sm.state == expected


def test_unknown_partial_fill_stays_unknown_and_rejected_with_fills_is_refused() -> None:
    sm = sent()
    sm.send("lost", reason="timeout")
    sm.send("fill", sz="0.3", tid=5)
    assert sm.state == "unknown"
    with pytest.raises(TransitionNotAllowed):
        sm.send("resolve", outcome="rejected")
    with pytest.raises(TransitionNotAllowed):
        sm.send("rejected", reason="late")
    sm.send("resting", oid=5)
    assert sm.state == "partially_filled"


def test_final_states_reject_every_late_event() -> None:
    for terminal in ("filled_at_post", "cancelled", "rejected"):
        sm = sent()
        kw = {"filled_at_post": {"oid": 1, "total_sz": "1"}, "cancelled": {"status": "x"}}.get(
            terminal, {"reason": "x"}
        )
        sm.send(terminal, **kw)
        state, filled = sm.state, sm.filled_sz
        for ev, args in [
            ("fill", {"sz": "0.1", "tid": 99}),
            ("resting", {"oid": 1}),
            ("lost", {"reason": "x"}),
            ("cancelled", {"status": "x"}),
            ("resolve", {"outcome": "filled"}),
        ]:
            with pytest.raises(TransitionNotAllowed):
                sm.send(ev, **args)
        assert (sm.state, sm.filled_sz) == (state, filled)
        assert len([c for c in sm.outbox if isinstance(c, OrderTerminal)]) == 1


def test_not_allowed_from_created() -> None:
    sm = make()
    for ev, kw in [
        ("resting", {"oid": 1}),
        ("fill", {"sz": "1", "tid": 1}),
        ("lost", {"reason": "x"}),
    ]:
        with pytest.raises(TransitionNotAllowed):
            sm.send(ev, **kw)


@pytest.mark.parametrize(
    ("event", "kwargs", "message"),
    [
        ("fill", {"sz": "1.5", "tid": 1}, "beyond order size"),
        ("fill", {"sz": "0", "tid": 1}, "must be a finite number > 0"),
        ("fill", {"sz": 0.1, "tid": 1}, "decimal string"),
        ("fill", {"sz": "abc", "tid": 1}, "not a decimal"),
        ("fill", {"sz": "0.1", "tid": None}, "tid"),
        ("resting", {"oid": -3}, "oid"),
        ("filled_at_post", {"oid": 1, "total_sz": "2"}, "exceeds size"),
    ],
)
def test_bad_payloads_are_named_and_change_nothing(event: str, kwargs: dict, message: str) -> None:
    sm = sent()
    with pytest.raises(ValueError, match=message):
        sm.send(event, **kwargs)
    assert sm.state == "sent" and sm.filled_sz == 0


def test_conflicting_oid_and_bad_outcome() -> None:
    sm = sent()
    sm.send("resting", oid=5)
    with pytest.raises(ValueError, match="conflicts"):
        sm.send("resting", oid=6)
    sm.send("lost", reason="x")
    with pytest.raises(ValueError, match="unknown reconciliation outcome"):
        sm.send("resolve", outcome="gone")


@pytest.mark.parametrize("size", ["0", "-1", "x", 1.0])
def test_bad_size(size) -> None:
    with pytest.raises(ValueError):
        make(size)


# --- stateful ------------------------------------------------------------------------------------

SIZE = Decimal("1.0")
FINAL = {"filled", "cancelled", "rejected"}
ACTIVE = ("sent", "resting", "partially_filled", "unknown")
REFERENCE: dict[tuple[str, str], set[str]] = {
    ("created", "sent"): {"sent"},
    ("created", "rejected"): {"rejected"},
    ("sent", "resting"): {"resting"},
    ("resting", "resting"): {"resting"},
    ("partially_filled", "resting"): {"partially_filled"},
    ("unknown", "resting"): {"resting", "partially_filled"},
    **{(s, "filled_at_post"): {"filled"} for s in ACTIVE},
    ("sent", "fill"): {"sent", "partially_filled", "filled"},
    ("resting", "fill"): {"resting", "partially_filled", "filled"},
    ("partially_filled", "fill"): {"partially_filled", "filled"},
    ("unknown", "fill"): {"unknown", "filled"},
    **{(s, "cancelled"): {"cancelled"} for s in ACTIVE},
    ("sent", "rejected"): {"rejected"},
    ("unknown", "rejected"): {"rejected"},
    **{(s, "lost"): {"unknown"} for s in ("sent", "resting", "partially_filled", "unknown")},
    ("unknown", "resolve"): {"filled", "cancelled", "rejected", "resting", "partially_filled"},
}


class OrderModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sm = make(str(SIZE))
        self.counted: dict[int, Decimal] = {}

    def _deliver(self, event: str, **kwargs) -> None:
        before = self.sm.state
        allowed = REFERENCE.get((before, event))
        try:
            self.sm.send(event, **kwargs)
        except TransitionNotAllowed:
            # only guard-refused events inside the table may be refused (rejected with fills)
            assert allowed is None or event in ("rejected", "resolve"), (before, event)
            assert self.sm.state == before
            return
        except ValueError:
            assert self.sm.state == before  # overfill and friends: nothing changed
            return
        assert allowed is not None and self.sm.state in allowed, (before, event, self.sm.state)

    @rule()
    def post(self) -> None:
        self._deliver("sent", post_id=1, epoch=1)

    @rule()
    def resting(self) -> None:
        self._deliver("resting", oid=9)

    @rule(tid=st.integers(1, 6), sz=st.sampled_from(["0.1", "0.25", "0.5", "1.0"]))
    def fill(self, tid: int, sz: str) -> None:
        before = self.sm.filled_sz
        fresh = tid not in self.counted and self.sm.state in ACTIVE
        self._deliver("fill", sz=sz, tid=tid)
        if fresh and self.sm.filled_sz != before:
            self.counted[tid] = Decimal(sz)

    @rule(total=st.sampled_from(["0.5", "1.0"]))
    def filled_at_post(self, total: str) -> None:
        self._deliver("filled_at_post", oid=9, total_sz=total)

    @rule()
    def cancelled(self) -> None:
        self._deliver("cancelled", status="canceled")

    @rule()
    def rejected(self) -> None:
        self._deliver("rejected", reason="no")

    @rule()
    def lost(self) -> None:
        self._deliver("lost", reason="timeout")

    @rule(outcome=st.sampled_from(["filled", "cancelled", "rejected", "resting", "absent"]))
    def resolve(self, outcome: str) -> None:
        self._deliver("resolve", outcome=outcome)

    @invariant()
    def fills_never_exceed_size_and_each_tid_counts_once(self) -> None:
        assert self.sm.filled_sz <= SIZE
        assert set(self.counted) == self.sm.tids
        if self.sm.state != "filled":  # a post-fill may report more than the streamed fills
            assert self.sm.filled_sz == sum(self.counted.values(), Decimal(0))

    @invariant()
    def exactly_one_terminal_announcement_iff_final(self) -> None:
        terminals = [c for c in self.sm.outbox if isinstance(c, OrderTerminal)]
        assert len(terminals) == (1 if self.sm.state in FINAL else 0)
        if terminals:
            assert terminals[0].state == self.sm.state


TestOrderModel = OrderModel.TestCase


def test_spare_machine_binds_to_an_order_and_cannot_be_rebound_once_used() -> None:
    outbox: list = []
    m = OrderMachine.spare(outbox)
    m.bind(cloid="0x" + "ab" * 16, market="xyz:AAA", is_buy=False, size="2.5", reduce_only=True)
    assert (m.cloid, m.market, m.is_buy, m.size, m.reduce_only) == (
        "0x" + "ab" * 16,
        "xyz:AAA",
        False,
        Decimal("2.5"),
        True,
    )
    m.send("sent", post_id=1, epoch=1)
    m.send("fill", sz="2.5", tid=9)
    assert m.state == "filled" and m.filled_sz == Decimal("2.5")
    with pytest.raises(ValueError, match="cannot rebind"):
        m.bind(cloid="0x" + "cd" * 16, market="xyz:AAA", is_buy=True, size="1", reduce_only=False)


# --- recycling: a machine back from a final state behaves exactly as a new one ----------------

_EVENTS = st.one_of(
    st.just(("sent", {"post_id": 1, "epoch": 1})),
    st.just(("resting", {"oid": 9})),
    st.builds(
        lambda tid, sz: ("fill", {"sz": sz, "tid": tid}),
        st.integers(1, 4),
        st.sampled_from(["0.25", "0.5", "1.0"]),
    ),
    st.just(("filled_at_post", {"oid": 9, "total_sz": "1.0"})),
    st.just(("cancelled", {"status": "canceled"})),
    st.just(("rejected", {"reason": "no"})),
    st.just(("lost", {"reason": "timeout"})),
    st.builds(lambda o: ("resolve", {"outcome": o}), st.sampled_from(OUTCOMES)),
)
# ways to finish an earlier order, one per final state and through unknown
_ENDINGS = [
    [("sent", {"post_id": 5, "epoch": 3}), ("fill", {"sz": "1.0", "tid": 77})],
    [("sent", {"post_id": 5, "epoch": 3}), ("resting", {"oid": 4}), ("cancelled", {"status": "x"})],
    [("rejected", {"reason": "earlier"})],
    [
        ("sent", {"post_id": 5, "epoch": 3}),
        ("lost", {"reason": "t"}),
        ("resolve", {"outcome": "absent"}),
    ],
]


def _trace(m: OrderMachine, events: list) -> list:
    out = []
    for event, kwargs in events:
        mark = len(m.outbox)
        try:
            m.send(event, **kwargs)
            error = None
        except (TransitionNotAllowed, ValueError) as exc:
            error = type(exc).__name__
        out.append(
            (m.state, error, m.outbox[mark:], m.filled_sz, set(m.tids), m.oid, m.post_id, m.reason)
        )
    return out


@given(ending=st.sampled_from(_ENDINGS), events=st.lists(_EVENTS, max_size=12))
def test_a_recycled_machine_behaves_as_a_new_one(ending: list, events: list) -> None:
    order = {"cloid": "0x" + "12" * 16, "market": "xyz:BBB", "is_buy": False, "size": "1.0"}
    fresh = OrderMachine.spare([])
    fresh.bind(**order, reduce_only=False)
    used = OrderMachine.spare([])
    used.bind(cloid="0x" + "99" * 16, market="xyz:AAA", is_buy=True, size="1.0", reduce_only=True)
    _trace(used, ending)
    assert used.is_final
    used.recycle()
    assert used.state == "created" and used.cloid == "spare"
    used.bind(**order, reduce_only=False)
    used.outbox.clear()
    assert _trace(used, events) == _trace(fresh, events)


def test_only_a_final_machine_can_be_recycled() -> None:
    m = sent()
    with pytest.raises(ValueError, match="cannot recycle a live machine"):
        m.recycle()
    assert m.state == "sent"
