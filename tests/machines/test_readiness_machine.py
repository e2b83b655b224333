"""ReadinessMachine: per-key table, aggregate transitions, timeout policy, and a hypothesis check
that READY-TRADING holds iff every requirement holds, whatever the arrival order."""

from __future__ import annotations

import pytest
from hip3.machines.commands import MarketExcluded, ReadyChanged
from hip3.machines.readiness import RECONCILIATION_PARTS, ReadinessMachine
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from statemachine.exceptions import TransitionNotAllowed

MARKETS = ["xyz:AAA", "xyz:BBB"]


def make(trading: bool = True, exclude: bool = True, **kw) -> ReadinessMachine:
    return ReadinessMachine(
        epoch=kw.pop("epoch", 3),
        markets=kw.pop("markets", MARKETS),
        trading=trading,
        first_data_timeout_ms=1_000,
        exclude_on_timeout=exclude,
        started_ms=0,
        **kw,
    )


def feed_md(sm: ReadinessMachine, coin: str) -> None:
    for prefix in ("bbo", "activeAssetCtx"):
        sm.send("ack", key=f"{prefix}:{coin}")
        sm.send("data", key=f"{prefix}:{coin}")


def feed_trading(sm: ReadinessMachine) -> None:
    sm.send("ack", key="orderUpdates")
    sm.send("ack", key="userEvents")
    sm.send("ack", key="userFills")
    sm.send("data", key="userFills", snapshot=True)
    for part in RECONCILIATION_PARTS:
        sm.send("reconciled", part=part)
    sm.send("connection_live")
    sm.send("hardstop_armed", armed=True)


def test_md_ready_then_trading_ready_with_announcements() -> None:
    sm = make()
    feed_md(sm, "xyz:AAA")
    assert sm.state == "not_ready" and sm.market_ready("xyz:AAA")
    feed_md(sm, "xyz:BBB")
    assert sm.state == "md_ready" and sm.is_md_ready and not sm.trading_ready
    assert sm.outbox == [ReadyChanged(3, False, frozenset(MARKETS))]
    feed_trading(sm)
    assert sm.trading_ready and sm.missing() == []
    assert sm.outbox[-1] == ReadyChanged(3, True, frozenset(MARKETS))


def test_data_before_ack_counts_and_late_ack_is_recorded_no_op() -> None:
    sm = make(trading=False)
    sm.send("data", key="bbo:xyz:AAA")
    assert sm.keys["bbo:xyz:AAA"] == "ready"
    sm.send("ack", key="bbo:xyz:AAA")
    assert sm.keys["bbo:xyz:AAA"] == "ready"
    assert sm.ignored[("bbo:xyz:AAA", "ack")] == 1


def test_key_table_pending_acked_ready() -> None:
    sm = make()
    key = "activeAssetCtx:xyz:BBB"
    assert sm.keys[key] == "pending"
    sm.send("ack", key=key)
    sm.send("ack", key=key)
    assert sm.keys[key] == "acked" and sm.ignored[(key, "ack")] == 1
    sm.send("data", key=key)
    sm.send("data", key=key)
    assert sm.keys[key] == "ready" and sm.ignored[(key, "data")] == 1


def test_user_fills_needs_the_snapshot_and_ack_only_channels_need_only_the_ack() -> None:
    sm = make()
    sm.send("ack", key="userFills")
    sm.send("data", key="userFills")  # a streamed fill is not the snapshot
    assert sm.keys["userFills"] == "acked"
    sm.send("data", key="userFills", snapshot=True)
    assert sm.keys["userFills"] == "ready"
    sm.send("ack", key="orderUpdates")
    assert sm.keys["orderUpdates"] == "ready"
    sm.send("data", key="userEvents")  # data before its ack also counts
    assert sm.keys["userEvents"] == "ready"


def test_trading_ready_needs_the_connection_live_and_falls_back_on_hardstop() -> None:
    sm = make()
    feed_md(sm, "xyz:AAA")
    feed_md(sm, "xyz:BBB")
    feed_trading(sm)
    assert sm.trading_ready
    sm.send("hardstop_armed", armed=False)
    assert sm.state == "md_ready" and sm.outbox[-1] == ReadyChanged(3, False, frozenset(MARKETS))
    assert sm.missing() == ["hardstop armed"]
    sm.send("hardstop_armed", armed=True)
    assert sm.trading_ready


def test_no_connection_down_event_the_epoch_ends_instead() -> None:
    # leaving `live` always ends the epoch; the machine has no way back from "live" but `end`
    sm = make()
    feed_md(sm, "xyz:AAA")
    feed_md(sm, "xyz:BBB")
    feed_trading(sm)
    assert "connection_down" not in {e.id for e in type(sm).events}
    sm.send("end")
    assert sm.is_final and sm.outbox[-1] == ReadyChanged(3, False, frozenset())


def test_timeout_excludes_a_silent_market_and_md_ready_still_holds() -> None:
    sm = make()
    feed_md(sm, "xyz:AAA")
    sm.send("data", key="bbo:xyz:BBB")
    sm.send("tick", now_ms=999)
    assert sm.excluded == {} and sm.state == "not_ready"
    sm.send("tick", now_ms=1_000)
    assert list(sm.excluded) == ["xyz:BBB"]
    assert sm.outbox[0] == MarketExcluded(3, "xyz:BBB", sm.excluded["xyz:BBB"])
    assert "activeAssetCtx:xyz:BBB" in sm.excluded["xyz:BBB"]
    assert sm.state == "md_ready" and not sm.market_ready("xyz:BBB")
    sm.send("tick", now_ms=5_000)
    assert len([c for c in sm.outbox if isinstance(c, MarketExcluded)]) == 1
    # data that turns up late lifts the exclusion: the market was slow, not absent
    sm.send("data", key="activeAssetCtx:xyz:BBB")
    assert sm.market_ready("xyz:BBB") and sm.excluded == {}
    # ... and is announced: the epoch was already md_ready, so no state entry would say it
    assert sm.outbox[-1] == ReadyChanged(3, False, frozenset(MARKETS))


def test_a_lifted_exclusion_while_trading_is_announced_once() -> None:
    """Found by the model below: a market excluded, then its late data, left the last
    ReadyChanged naming the smaller market set."""
    sm = make()
    feed_md(sm, "xyz:AAA")
    feed_trading(sm)
    sm.send("tick", now_ms=1_000)
    assert sm.trading_ready and list(sm.excluded) == ["xyz:BBB"]
    before = len(sm.outbox)
    feed_md(sm, "xyz:BBB")
    changes = [c for c in sm.outbox[before:] if isinstance(c, ReadyChanged)]
    assert changes == [ReadyChanged(3, True, frozenset(MARKETS))]


def test_every_market_excluded_then_data_arrives_reaches_ready() -> None:
    """All first data slower than the timeout must not leave the epoch unready for good."""
    sm = make()
    sm.send("tick", now_ms=10_000)
    assert set(sm.excluded) == set(MARKETS) and sm.state == "not_ready"
    for coin in MARKETS:
        feed_md(sm, coin)
    assert sm.excluded == {} and sm.state == "md_ready"


def test_no_exclusion_without_the_policy_and_never_all_excluded_ready() -> None:
    sm = make(exclude=False)
    sm.send("tick", now_ms=10_000)
    assert sm.excluded == {} and sm.state == "not_ready"
    sm2 = make()
    sm2.send("tick", now_ms=10_000)
    assert set(sm2.excluded) == set(MARKETS)
    assert sm2.state == "not_ready"  # all markets excluded is not "ready"
    assert "at least one market (all excluded)" in sm2.missing()


def test_non_trading_mode_never_reaches_trading_ready() -> None:
    sm = make(trading=False)
    feed_md(sm, "xyz:AAA")
    feed_md(sm, "xyz:BBB")
    sm.send("connection_live")
    sm.send("hardstop_armed", armed=True)
    assert sm.state == "md_ready" and sm.missing() == []
    with pytest.raises(ValueError, match="orderUpdates"):
        sm.send("ack", key="orderUpdates")


def test_end_is_final_and_announces_loss_of_readiness() -> None:
    sm = make(trading=False)
    feed_md(sm, "xyz:AAA")
    feed_md(sm, "xyz:BBB")
    sm.send("end")
    assert sm.state == "ended" and sm.is_final
    assert sm.outbox[-1] == ReadyChanged(3, False, frozenset())
    with pytest.raises(TransitionNotAllowed):
        sm.send("data", key="bbo:xyz:AAA")
    quiet = make()
    quiet.send("end")
    assert quiet.outbox == []


@pytest.mark.parametrize(
    ("event", "kwargs", "message"),
    [
        ("ack", {"key": "bbo:NOPE"}, "unknown subscription key"),
        ("data", {"key": "l2Book:xyz:AAA"}, "unknown subscription key"),
        ("data", {"key": "userFills", "snapshot": "yes"}, "snapshot must be a bool"),
        ("reconciled", {"part": "balances"}, "unknown reconciliation part"),
        ("hardstop_armed", {"armed": 1}, "armed must be a bool"),
        ("tick", {"now_ms": -1}, "now_ms"),
    ],
)
def test_bad_input_is_named_and_changes_nothing(event: str, kwargs: dict, message: str) -> None:
    sm = make()
    before = dict(sm.keys)
    with pytest.raises(ValueError, match=message):
        sm.send(event, **kwargs)
    assert sm.keys == before and sm.state == "not_ready"


@pytest.mark.parametrize(
    "kwargs",
    [{"markets": []}, {"markets": ["A", "A"]}, {"markets": [""]}, {"epoch": -1}],
)
def test_bad_construction(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        make(**kwargs)


def test_market_ready_rejects_unknown_market() -> None:
    with pytest.raises(ValueError, match="unknown market"):
        make().market_ready("xyz:ZZZ")


# --- stateful: READY-TRADING iff all requirements, in any arrival order --------------------------

KEYS = [f"{p}:{c}" for c in MARKETS for p in ("bbo", "activeAssetCtx")] + [
    "orderUpdates",
    "userFills",
    "userEvents",
]


class ReadinessModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sm = make()
        self.now = 0
        # the reference model: plain sets, no machinery
        self.acked: set[str] = set()
        self.data: set[str] = set()
        self.snapshot = False
        self.parts: set[str] = set()
        self.live = False
        self.armed = False
        self.excluded: set[str] = set()

    @rule(key=st.sampled_from(KEYS))
    def ack(self, key: str) -> None:
        self.sm.send("ack", key=key)
        self.acked.add(key)

    @rule(key=st.sampled_from(KEYS), snapshot=st.booleans())
    def data_msg(self, key: str, snapshot: bool) -> None:
        self.sm.send("data", key=key, snapshot=snapshot)
        self.data.add(key)
        if key == "userFills" and snapshot:
            self.snapshot = True
        coin = key.partition(":")[2]
        if all(f"{p}:{coin}" in self.data for p in ("bbo", "activeAssetCtx")):
            self.excluded.discard(coin)  # late first data lifts a timeout exclusion

    @rule(part=st.sampled_from(RECONCILIATION_PARTS))
    def reconciled(self, part: str) -> None:
        self.sm.send("reconciled", part=part)
        self.parts.add(part)

    @rule()
    def connection(self) -> None:
        self.sm.send("connection_live")
        self.live = True

    @rule(armed=st.booleans())
    def hardstop(self, armed: bool) -> None:
        self.sm.send("hardstop_armed", armed=armed)
        self.armed = armed

    @rule(advance=st.integers(0, 600))
    def tick(self, advance: int) -> None:
        self.now += advance
        self.sm.send("tick", now_ms=self.now)
        if self.now >= 1_000:
            self.excluded |= {c for c in MARKETS if not self._market_ok(c)}

    def _market_ok(self, coin: str) -> bool:
        return coin not in self.excluded and all(
            f"{p}:{coin}" in self.data for p in ("bbo", "activeAssetCtx")
        )

    def _expected(self) -> bool:
        md = all(self._market_ok(c) or c in self.excluded for c in MARKETS) and any(
            self._market_ok(c) for c in MARKETS
        )
        channels = (
            ("orderUpdates" in self.acked or "orderUpdates" in self.data)
            and ("userEvents" in self.acked or "userEvents" in self.data)
            and self.snapshot
        )
        return (
            md and channels and self.parts == set(RECONCILIATION_PARTS) and self.live and self.armed
        )

    @invariant()
    def trading_ready_iff_every_requirement(self) -> None:
        assert self.sm.trading_ready == self._expected(), self.sm.missing()
        assert self.sm.trading_ready == (self.sm.missing() == [])

    @invariant()
    def every_announcement_matches_the_state_it_announced(self) -> None:
        changes = [c for c in self.sm.outbox if isinstance(c, ReadyChanged)]
        if changes:
            assert changes[-1].trading == self.sm.trading_ready
            assert changes[-1].md_ready == self.sm.ready_markets()

    @invariant()
    def exclusions_match_the_model(self) -> None:
        assert set(self.sm.excluded) == self.excluded


TestReadinessModel = ReadinessModel.TestCase
