"""Order flow: orderUpdates, fills and post answers drive the live orders and positions.

Events it takes: orderUpdates, userFills, userEvents frames, post answers (`PostFrame`) and
write failures. Each post's answer goes to the post's owner (`post_owners.py`); an order
post's owner hands its statuses, refusal or loss back here (`OrderAnswers`). What it changes:
the order machines (through the registry), the position tracker, the rejection counts of the
risk monitor (a run of rejections trips the HardStop). An order or a fill it cannot place asks
the reconciler to read the exchange's record again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hip3.events import WriteFailed
from hip3.execution.orders import OrderRegistry, classify_update_status
from hip3.execution.positions import FillRecord, PositionTracker
from hip3.execution.risk import RiskMonitor, is_benign_rejection
from hip3.runtime.common import log
from hip3.runtime.post_owners import OrderPost
from hip3.runtime.recorder import Recorder


def _fill_time(f: Any) -> int:
    return f.time


def oldest_first(fills: list) -> list:
    """A snapshot's (or the userFills answer's) fills in the order the exchange made them.

    They are listed newest first (docs/exchange/websocket.md, Snapshots). Times order them
    only across milliseconds: fills of one block share its time, so a list whose first and
    last fill share a millisecond says nothing by its times, and it is reversed like any
    newest-first list (applying it as it stands turned a round trip inside one block, the
    other client's sale then the bot's flatten, into a short the exchange never held).
    Within one coin and millisecond, the fills' `startPosition` chain settles the order
    wherever it can: each fill starts where the one before it ended."""
    if len(fills) < 2:
        return fills
    if fills[0].time >= fills[-1].time:
        fills = fills[::-1]
    fills = sorted(fills, key=_fill_time)
    i = 0
    while i < len(fills):
        j = i + 1
        while j < len(fills) and fills[j].time == fills[i].time:
            j += 1
        if j - i > 1:
            for coin in {f.coin for f in fills[i:j]}:
                slots = [k for k in range(i, j) if fills[k].coin == coin]
                if len(slots) > 1:
                    for k, f in zip(slots, _chained([fills[k] for k in slots]), strict=True):
                        fills[k] = f
        i = j
    return fills


def _chained(group: list) -> list:
    """One coin's fills of one millisecond, each starting where the one before it ended;
    the group as given when it already chains or its chain cannot be told (a round trip
    starts and ends at the same size, so any of its fills could have come first)."""
    if any(f.start_position is None for f in group):
        return group
    start = [Decimal(f.start_position) for f in group]
    size = [Decimal(f.sz) if f.side == "B" else -Decimal(f.sz) for f in group]
    end = [s + d for s, d in zip(start, size, strict=True)]
    if all(start[k] == end[k - 1] for k in range(1, len(group))):
        return group
    heads = [k for k in range(len(group)) if start[k] not in end]
    if len(heads) != 1:
        return group
    order, left = [heads[0]], set(range(len(group))) - {heads[0]}
    while left:
        nxt = [k for k in sorted(left) if start[k] == end[order[-1]]]
        if not nxt:
            return group
        order.append(nxt[0])
        left.discard(nxt[0])
    return [group[k] for k in order]


def fill_record(f: Any) -> FillRecord:
    return FillRecord(
        tid=f.tid,
        coin=f.coin,
        is_buy=f.side == "B",
        px=Decimal(f.px),
        sz=Decimal(f.sz),
        fee=Decimal(f.fee or "0"),
        closed_pnl=Decimal(f.closed_pnl or "0"),
        oid=f.oid,
        cloid=f.cloid,
        time_ms=f.time,
        start_position=None if f.start_position is None else Decimal(f.start_position),
    )


def order_event(kind: str, status: str, bo: Any) -> tuple[str | None, dict]:
    """The order machine's event for an orderUpdates status of the given kind."""
    if kind == "open":
        return "resting", {"oid": bo.oid}
    if kind == "filled":
        return "filled_at_post", {"oid": bo.oid, "total_sz": bo.orig_sz}
    if kind == "cancelled":
        return "cancelled", {"status": status}
    if kind == "rejected":
        return "rejected", {"reason": status}
    return None, {}


class Fills:
    """Fills (streamed, snapshot, or the reconciler's userFills answer) → positions and the
    order machines of the orders they belong to."""

    def __init__(
        self,
        *,
        orders: OrderRegistry,
        positions: PositionTracker,
        recorder: Recorder,
        on_fill: Callable[[Any, str | None], None] | None = None,
    ):
        self.orders = orders
        self.positions = positions
        self.recorder = recorder
        self.on_fill = on_fill  # (fill, cloid of our order or None) for each fill applied

    def apply(self, fills: list, *, snapshot: bool) -> None:
        if snapshot:
            # a fill's size is judged against the fills before it: oldest first
            fills = oldest_first(fills)
        for f in fills:
            self.recorder.fill(f, snapshot=snapshot)
            cloid = self.orders.cloid_for(f.oid, f.cloid)
            known = cloid is not None
            applied = self.positions.apply(fill_record(f), snapshot=snapshot, known_order=known)
            if applied and self.on_fill is not None:
                self.on_fill(f, cloid)
            if applied and known:
                self.orders.send(cloid, "fill", sz=f.sz, tid=f.tid)
            elif known and self.orders.is_live(cloid):
                # a snapshot fill of a live order (e.g. unknown after a disconnect) still informs it
                self.orders.send(cloid, "fill", sz=f.sz, tid=f.tid)


class OrderFlow:
    """Post answers, orderUpdates and fills → order machines, positions, rejection counts."""

    def __init__(
        self,
        *,
        orders: OrderRegistry,
        positions: PositionTracker,
        fills: Fills,
        risk: RiskMonitor,
        reconciler: Any,
        first_data: Callable[..., None],
        trip: Callable[[str], None],
        wire: Any,
        recorder: Recorder,
        user: str | None,
        clock: Any,
        counters: Any,
        latency: Any | None,
        transition_log: Any | None,
    ) -> None:
        self.orders = orders
        self.positions = positions
        self.fills = fills
        self.risk = risk
        self.reconciler = reconciler  # reads the exchange's record of what it cannot place
        self.first_data = first_data  # the epoch's first-data-of-a-subscription fact
        self.trip = trip
        self.wire = wire
        self.recorder = recorder
        self.user = user
        self.clock = clock
        self.counters = counters
        self.latency = latency  # optional LatencyRecorder: post latencies
        self.transition_log = transition_log

    # ------------------------------------------------------------------------------------
    # orders and fills

    def order_update(self, o: Any) -> None:
        bo = o.order
        cloid = self.orders.cloid_for(bo.oid, bo.cloid)
        kind = classify_update_status(o.status)
        event, kw = order_event(kind, o.status, bo)
        if event is None:
            return
        if cloid is None:
            # not (yet) ours: held until an oid becomes known, e.g. a post response in flight
            self.orders.hold(bo.oid, event, kw)
            self.counters["held_updates"] += 1
            if kind == "open":
                self.reconciler.read_open_orders_again(bo.coin)
            return
        self.orders.send(cloid, event, **kw)

    def _apply_fills(self, fills: list, *, snapshot: bool) -> None:
        self.fills.apply(fills, snapshot=snapshot)
        if self.positions.needs_state:
            self.reconciler.read_positions_again()

    def user_fills(self, uf: Any) -> bool:
        """False for another account's fills (counted, not applied)."""
        if self.user is not None and uf.user.lower() != self.user:
            self.counters["foreign_fills"] += 1
            return False
        self._apply_fills(uf.fills, snapshot=uf.is_snapshot)
        if uf.is_snapshot:
            self.first_data("userFills", snapshot=True)
        return True

    def user_event(self, ev: Any) -> None:
        self.first_data("userEvents")
        if ev.fills:
            self._apply_fills(ev.fills, snapshot=False)
        if ev.non_user_cancel:
            for c in ev.non_user_cancel:
                cloid = self.orders.cloid_for(c.oid, None)
                if cloid is not None:
                    self.orders.send(cloid, "cancelled", status="nonUserCancel")

    def order_transition(self, cloid: str, source: str, target: str, event: str) -> None:
        """Every order machine transition: to the journal and the transition log."""
        self.recorder.transition(cloid, source, target, event, wall_ms=self.clock.wall_ms())
        if self.transition_log is not None:
            self.transition_log.order_transition(cloid, source, target, event)

    # ------------------------------------------------------------------------------------
    # post answers

    def post_answered(self, data: Any, frame: Any, now: int) -> None:
        p = self.wire.posts.resolve(data.id)
        if p is None:
            self.counters["unmatched_post_responses"] += 1
            return
        if self.latency is not None:
            self.latency.observe_post_latency(p.kind, (self.clock.now_ns() - p.sent_ns) / 1e9)
        p.owner.answered(frame, now)  # the post's owner handles its answer

    def write_failed(self, ev: WriteFailed) -> None:
        if ev.post_id is None:
            return
        p = self.wire.posts.resolve(ev.post_id)
        if p is not None:
            # the frame may have been partly written: outcome unknown, reconcile
            p.owner.failed(f"write failed: {ev.reason}", self.clock.now_ms(), definite=False)

    def order_post(self, cloids: list[str]) -> OrderPost:
        """The owner of an order post (the executor makes one per order it sends)."""
        return OrderPost(cloids, self)

    # OrderAnswers: what an order post's owner hands back

    def order_statuses(self, cloids: list[str], statuses: list) -> None:
        if len(statuses) < len(cloids) and len(statuses) == 1 and statuses[0].kind == "error":
            statuses = statuses * len(cloids)  # one pre-validation error for the whole batch
        for i, cloid in enumerate(cloids):
            st = statuses[i] if i < len(statuses) else None
            if st is None:
                self.orders.send(cloid, "lost", reason="no status for this order in the response")
            elif st.kind == "resting":
                self.risk.on_accepted()
                self.orders.send(cloid, "resting", oid=st.oid)
            elif st.kind == "filled":
                self.risk.on_accepted()
                self.orders.send(cloid, "filled_at_post", oid=st.oid, total_sz=st.total_sz)
            elif st.kind == "error":
                self._order_rejected(cloid, st.error or "error")
            else:
                self.orders.send(cloid, "lost", reason=f"status {st.kind}: {st.error}")

    def orders_rejected(self, cloids: list[str], text: str) -> None:
        for cloid in cloids:
            self._order_rejected(cloid, text)

    def orders_lost(self, cloids: list[str], reason: str) -> None:
        for cloid in cloids:
            self.orders.send(cloid, "lost", reason=reason)

    def _order_rejected(self, cloid: str, text: str) -> None:
        info = self.orders.describe(cloid)
        self.orders.send(cloid, "rejected", reason=text)
        flat = info is not None and self.positions.size(info.coin) == 0
        benign = is_benign_rejection(
            text, reduce_only=bool(info and info.reduce_only), position_flat=flat
        )
        self.counters["rejections_benign" if benign else "rejections"] += 1
        coin = info.coin if info is not None else "?"
        log.log(
            logging.INFO if benign else logging.WARNING,
            "order %s on %s rejected%s: %s",
            cloid,
            coin,
            " (benign)" if benign else "",
            text,
        )
        self.recorder.rejection(cloid, coin, text, benign=benign, wall_ms=self.clock.wall_ms())
        reason = self.risk.on_rejection(text, benign)
        if reason:
            self.trip(reason)
