"""The timing model on a virtual clock: slots, in-block order, commit, latency, event order.

Socket-free on purpose: these pin the model's arithmetic; tests/sim/test_timing_socket.py
checks the same behaviour through the simulator's socket.
"""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.sim.blocks import (
    Admitted,
    Lane,
    MempoolRules,
    Slot,
    execution_order,
    priority_rate,
    slot_for,
)
from hip3.sim.events import BookChanged, OrderUpdates, UserFills
from hip3.sim.latency import Latency, LatencySpec, LatencySpecError, parse_latency
from hip3.sim.timing import Sequencer, TimingConfig, VirtualClock

RULES = MempoolRules()
NO_LATENCY = LatencySpec()
BLOCK = 70
COMMIT = 2 * BLOCK


def _order(tif: str) -> dict:
    return {"a": 0, "b": True, "p": "100", "s": "1", "r": False, "t": {"limit": {"tif": tif}}}


def _order_action(*tifs: str, p: int | None = None) -> dict:
    action: dict = {"type": "order", "orders": [_order(t) for t in tifs], "grouping": "na"}
    if p is not None:
        action["grouping"] = {"p": p}
    return action


# --- latency ---------------------------------------------------------------------------


def test_latency_draws_have_the_configured_median_and_p99() -> None:
    latency = Latency(LatencySpec(200, 900), random.Random(3))
    draws = sorted(latency.draw_ms() for _ in range(20_000))
    assert statistics.median(draws) == pytest.approx(200, rel=0.05)
    assert draws[int(0.99 * len(draws))] == pytest.approx(900, rel=0.1)
    assert draws[-1] <= 4 * 900


def test_latency_is_reproducible_per_seed_and_constant_when_p99_is_the_median() -> None:
    a = [Latency(LatencySpec(200, 900), random.Random(5)).draw_ms() for _ in range(3)]
    b = [Latency(LatencySpec(200, 900), random.Random(5)).draw_ms() for _ in range(3)]
    assert a == b
    fixed = Latency(LatencySpec(50, 50), random.Random(5))
    assert {fixed.draw_ms() for _ in range(10)} == {50}
    assert Latency(LatencySpec(), random.Random(5)).draw_ms() == 0


@pytest.mark.parametrize(
    ("text", "median", "p99"), [("200,900", 200, 900), ("50", 50, 50), (" 0 ", 0, 0)]
)
def test_parse_latency(text: str, median: float, p99: float) -> None:
    assert parse_latency(text) == LatencySpec(median, p99)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "expected MEDIAN or MEDIAN,P99"),
        ("fast", "is not a number"),
        ("900,200", "must not be below the median"),
        ("-5", "must be a finite number >= 0"),
        ("1,2,3", "expected MEDIAN or MEDIAN,P99"),
    ],
)
def test_parse_latency_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(LatencySpecError, match=problem):
        parse_latency(text)


# --- slots -----------------------------------------------------------------------------


def test_cancels_and_alo_only_batches_wait_nothing_in_the_first_lane() -> None:
    for action in (
        {"type": "cancel", "cancels": [{"a": 0, "o": 1}]},
        {"type": "cancelByCloid", "cancels": []},
        _order_action("Alo", "Alo"),
        _order_action("Alo", p=30_000),
        {"type": "modify", "oid": 1, "order": _order("Alo")},
        {"type": "batchModify", "modifies": [{"oid": 1, "order": _order("Alo")}]},
    ):
        assert slot_for(action, RULES) == Slot(Lane.FIRST), action


def test_takers_wait_f0_minus_45_ms_per_bp_down_to_8_bps() -> None:
    assert slot_for(_order_action("Ioc"), RULES) == Slot(Lane.TAKERS, 0, 360)
    assert slot_for(_order_action("Gtc"), RULES) == Slot(Lane.TAKERS, 0, 360)
    assert slot_for(_order_action("Ioc", p=10_000), RULES) == Slot(Lane.TAKERS, 10_000, 315)
    assert slot_for(_order_action("Ioc", p=40_000), RULES) == Slot(Lane.TAKERS, 40_000, 180)
    assert slot_for(_order_action("Ioc", p=80_000), RULES) == Slot(Lane.TAKERS, 80_000, 0)
    top = slot_for(_order_action("Ioc", p=100_000_000), RULES)
    assert top == Slot(Lane.TAKERS, 100_000_000, 0)
    # A mixed batch is a taker batch; a modify to a GTC waits like one.
    assert slot_for(_order_action("Alo", "Ioc"), RULES).lane is Lane.TAKERS
    modify = {"type": "modify", "oid": 1, "order": _order("Gtc")}
    assert slot_for(modify, RULES) == Slot(Lane.TAKERS, 0, 360)


def test_other_and_malformed_actions_take_a_plain_slot() -> None:
    plain = Slot(Lane.TAKERS)
    for action in (
        {"type": "updateLeverage", "asset": 0, "isCross": True, "leverage": 3},
        {"type": "noop"},
        {"type": "order", "orders": "nope"},
        "not an object",
    ):
        assert slot_for(action, RULES) == plain, action
    # A batch modify the core will refuse still waits like a modify to a taker order.
    broken = {"type": "batchModify", "modifies": [1, 2]}
    assert slot_for(broken, RULES) == Slot(Lane.TAKERS, 0, 360)


@pytest.mark.parametrize("grouping", ["na", {"p": -1}, {"p": True}, {"p": 1.5}, {"p": 10**9}, []])
def test_invalid_groupings_buy_no_priority(grouping: object) -> None:
    assert priority_rate(grouping) == 0


def test_configured_f0_changes_the_wait() -> None:
    rules = MempoolRules(order_wait_ms=500, ms_per_bp=45, max_priority_bps=8)
    assert slot_for(_order_action("Ioc", p=80_000), rules).wait_ms == 140
    assert slot_for(_order_action("Ioc", p=200_000), rules).wait_ms == 140


# --- in-block order --------------------------------------------------------------------


def _entry(name: str, lane: Lane, arrival: float, rate: int = 0, wait: float = 0, seq: int = 0):
    return Admitted(Slot(lane, rate, wait), arrival, seq, name)


def test_cancels_run_before_takers_whatever_their_arrival() -> None:
    entries = [
        _entry("ioc", Lane.TAKERS, 0, 80_000, 0, seq=0),
        _entry("cancel", Lane.FIRST, 30, seq=1),
        _entry("alo", Lane.FIRST, 10, seq=2),
    ]
    assert [e.work for e in execution_order(entries, RULES.top_rate)] == ["alo", "cancel", "ioc"]


def test_takers_run_by_effective_time_and_top_fees_by_fee_in_their_places() -> None:
    entries = [
        _entry("slow-early", Lane.TAKERS, 0, 0, 65, seq=0),  # effective 65
        _entry("8bps", Lane.TAKERS, 20, 80_000, 0, seq=1),  # effective 20
        _entry("20bps", Lane.TAKERS, 40, 200_000, 0, seq=2),  # effective 40
        _entry("4bps", Lane.TAKERS, 10, 40_000, 20, seq=3),  # effective 30
        _entry("8bps-b", Lane.TAKERS, 50, 80_000, 0, seq=4),  # effective 50
    ]
    order = [e.work for e in execution_order(entries, RULES.top_rate)]
    # By effective time: 8bps(20) 4bps(30) 20bps(40) 8bps-b(50) slow-early(65); the >= 8 bps
    # ones hold places 0, 2, 3 and are re-sorted there by fee, then arrival.
    assert order == ["20bps", "4bps", "8bps", "8bps-b", "slow-early"]


@given(
    st.lists(
        st.tuples(
            st.sampled_from([Lane.FIRST, Lane.TAKERS]),
            st.integers(0, 69),
            st.sampled_from([0, 10_000, 40_000, 80_000, 120_000]),
        ),
        max_size=12,
    )
)
def test_execution_order_is_a_permutation_with_every_cancel_first(items: list) -> None:
    entries = [
        Admitted(Slot(lane, rate, RULES.order_wait(rate) if lane else 0), arrival, i, i)
        for i, (lane, arrival, rate) in enumerate(items)
    ]
    ordered = execution_order(entries, RULES.top_rate)
    assert sorted(e.work for e in ordered) == list(range(len(entries)))
    lanes = [e.slot.lane for e in ordered]
    assert lanes == sorted(lanes)
    takers = [e for e in ordered if e.slot.lane is Lane.TAKERS]
    below = [e.effective_ms for e in takers if e.slot.rate < RULES.top_rate]
    assert below == sorted(below)
    top = [(-e.slot.rate, e.arrival_ms) for e in takers if e.slot.rate >= RULES.top_rate]
    assert top == sorted(top)


# --- the sequencer ----------------------------------------------------------------------


class Core:
    """Stands in for the exchange core: records what runs, at which exchange time."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, int]] = []
        self.sequencer: Sequencer | None = None

    def action(self, name: str, *events: object):
        def run() -> str:
            assert self.sequencer is not None
            self.ran.append((name, self.sequencer.clock_ms()))
            for event in events:
                self.sequencer.on_event(event)
            return f"answer:{name}"

        return run


def _sequencer(
    clock: VirtualClock, latency: LatencySpec = NO_LATENCY, **config: object
) -> tuple[Sequencer, Core, list]:
    delivered: list = []
    core = Core()
    sequencer = Sequencer(
        TimingConfig(latency=latency, **config),  # type: ignore[arg-type]
        clock=clock,
        sink=lambda event: delivered.append((clock.now_ms(), event)),
        rng=random.Random(11),
    )
    core.sequencer = sequencer
    return sequencer, core, delivered


def _ioc(p: int = 0) -> Slot:
    return slot_for(_order_action("Ioc", p=p), RULES)


CANCEL = slot_for({"type": "cancel", "cancels": []}, RULES)


def test_a_cancel_sent_after_an_ioc_in_the_same_bucket_executes_first() -> None:
    clock = VirtualClock(7000)
    # No mempool wait for takers: only the lanes order this block.
    sequencer, core, _ = _sequencer(clock, mempool=MempoolRules(order_wait_ms=0))
    ioc = sequencer.slot(_order_action("Ioc"))
    assert sequencer.submit(ioc, core.action("ioc")) == 100
    clock.advance(30)
    assert sequencer.submit(CANCEL, core.action("cancel")) == 100
    clock.advance(100)
    assert core.ran == [("cancel", 7070), ("ioc", 7070)]


def test_priority_buys_an_earlier_block_and_cancels_still_go_first() -> None:
    clock = VirtualClock(7000)
    sequencer, core, _ = _sequencer(clock)
    sequencer.submit(_ioc(0), core.action("no-fee"))  # effective 7360: block 105
    clock.advance(100)
    sequencer.submit(_ioc(80_000), core.action("8bps"))  # effective 7100: block 101
    clock.advance(200)
    sequencer.submit(CANCEL, core.action("late-cancel"))  # 7300: block 104
    clock.advance(1000)
    assert core.ran == [("8bps", 7140), ("late-cancel", 7350), ("no-fee", 7420)]


def test_answers_follow_commit_plus_latency_and_events_follow_their_answer() -> None:
    clock = VirtualClock(7000)
    sequencer, core, delivered = _sequencer(clock, LatencySpec(100, 100))
    answers: list = []
    fill = UserFills("0xa", [{"tid": 1}])
    sequencer.submit(
        CANCEL,
        core.action("cancel", fill, BookChanged("X")),
        lambda result: answers.append((clock.now_ms(), result)),
    )
    clock.advance(69)
    assert core.ran == []
    clock.advance(1)
    assert core.ran == [("cancel", 7070)]
    # Market data leaves when the block executes; the user's fill waits for the answer.
    assert delivered == [(7070, BookChanged("X"))]
    clock.advance(1000)
    assert answers == [(7070 + COMMIT + 100, "answer:cancel")]
    assert delivered[1:] == [(7070 + COMMIT + 100, fill)]


def test_a_user_stream_keeps_execution_order_whatever_the_latency_draws() -> None:
    clock = VirtualClock(0)
    sequencer, core, delivered = _sequencer(clock, LatencySpec(200, 900))
    answers: dict[int, float] = {}
    for i in range(60):
        event = OrderUpdates("0xa", [{"i": i}])
        other = OrderUpdates("0xb", [{"i": i}])

        def reply(_result: object, i: int = i) -> None:
            answers[i] = clock.now_ms()

        sequencer.submit(CANCEL, core.action(f"c{i}", event, other), reply)
        clock.advance(25)
    clock.advance(10_000)
    assert sequencer.pending == 0
    for user in ("0xa", "0xb"):
        stream = [(t, e.orders[0]["i"]) for t, e in delivered if e.user == user]
        assert [i for _, i in stream] == list(range(60))
        # Never before the answer of the action that caused it, never before its commit.
        for t, i in stream:
            assert t >= answers[i]
    draws = sorted(answers[i] - (70 * (i * 25 // 70 + 1) + COMMIT) for i in range(60))
    assert draws[0] >= 0 and draws[-1] > draws[0]  # really drawn, not constant


def test_two_top_fee_iocs_in_one_bucket_run_by_fee_not_arrival() -> None:
    clock = VirtualClock(7000)
    sequencer, core, _ = _sequencer(clock)
    sequencer.submit(_ioc(80_000), core.action("8bps-first"))
    clock.advance(20)
    sequencer.submit(_ioc(150_000), core.action("15bps-later"))
    clock.advance(200)
    assert [name for name, _ in core.ran] == ["15bps-later", "8bps-first"]


class SteppedClock(VirtualClock):
    """A virtual clock whose wall time can step back, as a system clock may."""

    def step_back(self, ms: float) -> None:
        self._now -= ms


def test_an_action_never_joins_a_block_that_already_ran() -> None:
    clock = SteppedClock(7000)
    sequencer, core, _ = _sequencer(clock)
    assert sequencer.submit(CANCEL, core.action("a")) == 100
    clock.advance(70)  # block 100 ran at 7070
    clock.step_back(50)  # the wall clock steps back into bucket 100
    assert sequencer.submit(CANCEL, core.action("b")) == 101
    clock.advance(200)
    assert [name for name, _ in core.ran] == ["a", "b"]


def test_info_waits_a_network_delay_only_or_nothing() -> None:
    clock = VirtualClock(7005)
    sequencer, _, _ = _sequencer(clock, LatencySpec(40, 40))
    got: list = []
    sequencer.answer_info(lambda: "state", lambda r: got.append((clock.now_ms(), r)))
    clock.advance(100)
    assert got == [(7045, "state")]
    quick, _, _ = _sequencer(clock, LatencySpec(40, 40), info_latency=False)
    quick.answer_info(lambda: "now", lambda r: got.append((clock.now_ms(), r)))
    assert got[-1] == (clock.now_ms(), "now")


def test_user_events_outside_a_block_are_delayed_in_order() -> None:
    clock = VirtualClock(1000)
    sequencer, _, delivered = _sequencer(clock, LatencySpec(30, 30))
    first, second = OrderUpdates("0xa", [{"n": 1}]), OrderUpdates("0xa", [{"n": 2}])
    sequencer.on_event(first)
    sequencer.on_event(second)
    sequencer.on_event(BookChanged("X"))
    assert delivered == [(1000, BookChanged("X"))]
    clock.advance(30)
    assert delivered[1:] == [(1030, first), (1030, second)]


def test_a_failing_action_still_gets_an_answer_and_the_block_goes_on() -> None:
    clock = VirtualClock(0)
    sequencer, core, _ = _sequencer(clock)
    answers: list = []

    def broken() -> None:
        raise RuntimeError("bug")

    sequencer.submit(CANCEL, broken, answers.append)
    sequencer.submit(CANCEL, core.action("next"), answers.append)
    clock.advance(1000)
    assert answers == [None, "answer:next"]


def test_timing_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="block_ms"):
        TimingConfig(block_ms=0)
    with pytest.raises(ValueError, match="commit_blocks"):
        TimingConfig(commit_blocks=-1)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 150),  # ms since the previous submission
            st.sampled_from(["cancel", "alo", "ioc", "gtc", "noop"]),
            st.sampled_from([None, 0, 20_000, 80_000, 150_000]),
            st.sampled_from(["0xa", "0xb"]),
        ),
        min_size=1,
        max_size=25,
    ),
    st.integers(0, 2**16),
)
def test_every_action_runs_once_in_a_valid_block_and_streams_keep_their_order(
    submissions: list, seed: int
) -> None:
    clock = VirtualClock(1_000_000 + seed % 70)
    delivered: list = []
    sequencer = Sequencer(
        TimingConfig(latency=LatencySpec(200, 900)),
        clock=clock,
        sink=lambda event: delivered.append((clock.now_ms(), event)),
        rng=random.Random(seed),
    )
    actions = {
        "cancel": {"type": "cancel", "cancels": []},
        "alo": _order_action("Alo"),
        "ioc": _order_action("Ioc"),
        "gtc": _order_action("Gtc"),
        "noop": {"type": "noop"},
    }
    ran: list[tuple[int, int, Slot, float]] = []  # (index, block time, slot, arrival)
    answers: dict[int, float] = {}
    for i, (gap, kind, p, user) in enumerate(submissions):
        clock.advance(gap)
        action = dict(actions[kind])
        if p is not None and kind in ("ioc", "alo"):
            action["grouping"] = {"p": p}
        slot = sequencer.slot(action)
        arrival = clock.now_ms()

        def run(i: int = i, slot: Slot = slot, arrival: float = arrival, user: str = user) -> int:
            ran.append((i, sequencer.clock_ms(), slot, arrival))
            sequencer.on_event(OrderUpdates(user, [{"i": i}]))
            return i

        def reply(result: int) -> None:
            answers[result] = clock.now_ms()

        sequencer.submit(slot, run, reply)
    clock.advance(60_000)
    assert sequencer.pending == 0
    assert sorted(i for i, *_ in ran) == list(range(len(submissions)))
    block_of = {i: block for i, block, _, _ in ran}
    for i, block, slot, arrival in ran:
        assert block % 70 == 0
        assert block > arrival + slot.wait_ms  # the end of its effective bucket, or later
        assert answers[i] >= block + 140
    # Inside each block: the first lane first.
    lanes_by_block: dict[int, list[Lane]] = {}
    for _, block, slot, _ in ran:
        lanes_by_block.setdefault(block, []).append(slot.lane)
    assert all(lanes == sorted(lanes) for lanes in lanes_by_block.values())
    # Each user's events: in execution order, never before their action's answer.
    position = {i: n for n, (i, *_) in enumerate(ran)}
    for user in ("0xa", "0xb"):
        stream = [(t, e.orders[0]["i"]) for t, e in delivered if e.user == user]
        assert [position[i] for _, i in stream] == sorted(position[i] for _, i in stream)
        assert all(t >= answers[i] >= block_of[i] for t, i in stream)


def test_before_block_runs_once_ahead_of_each_block_and_never_for_answers() -> None:
    # A backtest brings its core up to date with the recording there: once per block, before
    # the block's first action, and not when answers or user events leave.
    clock = VirtualClock(7000)
    ran: list = []
    sequencer = Sequencer(
        TimingConfig(latency=NO_LATENCY, mempool=MempoolRules(order_wait_ms=0)),
        clock=clock,
        sink=lambda event: ran.append("event"),
        rng=random.Random(11),
        before_block=lambda: ran.append(("settle", clock.now_ms())),
    )
    answers: list = []
    for name in ("a", "b"):
        sequencer.submit(CANCEL, lambda name=name: ran.append(name), answers.append)
    clock.advance(75)  # the first block (7000-7069) closes at 7070
    sequencer.submit(CANCEL, lambda: ran.append("c"), answers.append)
    clock.advance(500)  # the second block and every answer
    assert ran == [("settle", 7070), "a", "b", ("settle", 7140), "c"]
    assert len(answers) == 3
