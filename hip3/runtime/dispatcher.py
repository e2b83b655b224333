"""The dispatcher: one inbox, one consumer.

Every inbound frame, timer tick, post response or timeout, strategy signal and operator
command arrives here as an event and is handled to completion before the next one, by one
asyncio task. Machines decide; the dispatcher executes their commands (I/O, timers, fan-out
between machines). Market data updates plain state and reaches a machine only for lifecycle
facts (first data of a subscription this epoch). Nothing else reads the socket, so reconnect
and resubscribe pass through exactly the same path as live traffic.

`handle()` is synchronous: the property tests drive it directly with generated orderings,
with a recording transport in place of the socket.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import msgspec

from hip3.events import (
    FrameIn,
    OperatorCommand,
    Signal,
    SocketClosed,
    SocketOpened,
    Tick,
    WriteFailed,
)
from hip3.execution.executor import Executor, RiskLimits
from hip3.execution.orders import OrderInfo, OrderRegistry, classify_update_status
from hip3.execution.positions import FillRecord, PositionTracker
from hip3.execution.risk import RiskMonitor, is_benign_rejection
from hip3.market.state import MarketSpec, MarketState
from hip3.protocol import frames as F
from hip3.protocol.actions import cancel_action, cancel_by_cloid_action, schedule_cancel_action
from hip3.protocol.ids import CloidSource
from hip3.protocol.numbers import PriceError, Rounding, SizeError, format_price, format_size
from hip3.runtime.ready import Ready
from hip3.runtime.reconcile import (
    DiscoveryError,
    ReconcilePlan,
    build_specs,
    dexes_of,
    plan_requests,
    positions_from_state,
)
from hip3.runtime.recorder import Recorder
from hip3.runtime.wire import Wire
from hip3.strategy.basic import BasicDetector, DetectorParams
from hip3.strategy.exits import ExitParams, ExitPolicy
from hip3.transport.limits import TokenBucket
from hip3.transport.posts import PendingPost, post_id_in_error
from machines import commands as C
from machines.connection import ConnectionMachine
from machines.flatten import FlattenMachine
from machines.hardstop import HardStopMachine
from machines.readiness import PENDING, ReadinessMachine

log = logging.getLogger(__name__)

_BPS = Decimal(10_000)
# Connection states in which the current epoch's socket is open and its frames count.
_FRAME_STATES = frozenset({"subscribing", "reconciling", "live"})
# HardStop step commands, the state each belongs to, and the method that executes it.
_HARDSTOP_STEPS = {
    C.CancelAllOrders: "cancelling",
    C.FlattenAllPositions: "flattening",
    C.VerifyFlat: "verifying",
}
_HARDSTOP_STEP_METHODS = {
    C.CancelAllOrders: "_cancel_all",
    C.FlattenAllPositions: "_flatten_all",
    C.VerifyFlat: "_verify_flat",
}
_generic = msgspec.json.Decoder()


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _dec(x: float) -> Decimal:
    return Decimal(repr(x))


class Clock:
    """Monotonic time for timeouts, wall time for nonces and exchange timestamps."""

    def now_ms(self) -> int:
        return time.perf_counter_ns() // 1_000_000

    def now_ns(self) -> int:
        return time.perf_counter_ns()

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000


class FatalError(RuntimeError):
    """The bot cannot continue safely (e.g. a configured market does not exist)."""


class Dispatcher:
    def __init__(
        self,
        cfg: Any,
        *,
        transport: Any,
        clock: Any | None = None,
        signer: Any | None = None,
        nonces: Any | None = None,
        user: str | None = None,
        rng: random.Random | None = None,
        cloids: Any | None = None,
        detector: Any | None = None,
        journal: Any | None = None,
        exits: Any | None = None,
        transition_log: Any | None = None,
        latency: Any | None = None,
    ) -> None:
        self.cfg = cfg
        self.clock = clock or Clock()
        self.trading = cfg.mode == "trading"
        if self.trading and not user:
            raise FatalError(
                "trading mode needs the trading account's address: set account.user or provide a "
                "signing key (HIP3_PRIVATE_KEY or account.keystore)"
            )
        if self.trading and signer is None:
            raise FatalError(
                "trading mode needs a signing key (HIP3_PRIVATE_KEY or account.keystore)"
            )
        self.user = user.lower() if user else None
        self.coins: list[str] = list(cfg.coins)
        self.dexes: list[str] = dexes_of(self.coins)
        self.outbox: list = []
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.transport = transport
        now = self.clock.now_ms()
        ws, ob = cfg.websocket, cfg.outbound
        self.wire = Wire(
            transport,
            signer=signer,
            nonces=nonces,
            mainnet=cfg.endpoints.mainnet_signing,
            messages_per_minute=ob.messages_per_minute,
            max_inflight_posts=ob.max_inflight_posts,
            post_timeout_ms=_ms(ob.post_timeout_s),
            now_ms=self.clock.now_ms,
        )
        self.conn = ConnectionMachine(
            backoff_min_ms=_ms(ws.backoff_min_s),
            backoff_max_ms=_ms(ws.backoff_max_s),
            backoff_reset_after_ms=_ms(ws.backoff_reset_after_s),
            ping_after_ms=_ms(ws.ping_after_s),
            pong_timeout_ms=_ms(ws.pong_timeout_s),
            handshake_timeout_ms=_ms(ws.handshake_timeout_s),
            rng=rng or random.Random(),
            outbox=self.outbox,
        )
        self.markets: dict[str, MarketState] = {c: MarketState(c) for c in self.coins}
        self.specs: dict[str, MarketSpec] = {}
        self.ready = Ready(
            max_bbo_age_s=cfg.ready.max_bbo_age_s, max_ctx_age_s=cfg.ready.max_ctx_age_s
        )
        self.ready.connection = self.conn
        self.ready.markets = self.markets
        self.hardstop = HardStopMachine(
            retry_interval_ms=_ms(cfg.flatten.timeout_s), outbox=self.outbox
        )
        self.flatten: dict[str, FlattenMachine] = {}
        self.orders = OrderRegistry(self.outbox)
        self.positions = PositionTracker(session_start_ms=self.clock.wall_ms())
        self.cloids = cloids or CloidSource()
        d = cfg.detector
        self.detector = detector or BasicDetector(
            DetectorParams(
                taker_fee_bps=_dec(d.taker_fee_bps),
                slippage_bps=_dec(d.slippage_bps),
                min_edge_bps=_dec(d.min_edge_bps),
                size_fraction=_dec(d.size_fraction),
                max_order_notional=_dec(d.max_order_notional_usd),
                max_data_age_s=d.max_data_age_s,
                thresholds={
                    m.coin: _dec(m.threshold_bps)
                    for m in cfg.markets
                    if m.threshold_bps is not None
                },
            )
        )
        r = cfg.risk
        self.executor = Executor(
            limits=RiskLimits(
                max_notional_per_market=_dec(r.max_notional_per_market_usd),
                max_total_notional=_dec(r.max_total_notional_usd),
                max_concurrent_positions=r.max_concurrent_positions,
                min_order_notional=_dec(d.min_order_notional_usd),
                slippage_bps=_dec(d.slippage_bps),
                max_slippage_bps=_dec(d.max_slippage_bps),
            ),
            action_budget=TokenBucket(max(1, int(r.max_actions_per_s)), 1.0, now),
            ready=self.ready,
            hardstop=self.hardstop,
            flatten=self.flatten,
            positions=self.positions,
            orders=self.orders,
            markets=self.markets,
            specs=self.specs,
            wire=self.wire,
            cloids=self.cloids,
            trading=self.trading,
        )
        self.risk = RiskMonitor(
            loss_limit=_dec(r.loss_limit_usd),
            max_consecutive_rejections=r.max_consecutive_rejections,
            disconnect_exposure_ms=_ms(r.disconnect_exposure_s),
        )
        self.recorder = Recorder(journal, observation=not self.trading)
        self.executor.journal = journal
        self.transition_log = transition_log
        self.latency = latency  # optional LatencyRecorder: post and pong latencies
        self._ping_sent_ns = 0
        if journal is not None or transition_log is not None:
            self.orders.on_transition = self._order_transition
        if transition_log is not None:
            transition_log.attach(self.conn)
            transition_log.attach(self.hardstop)
        self.exits = exits if exits is not None else ExitPolicy(ExitParams.from_config(cfg.exits))
        self.readiness: ReadinessMachine | None = None
        self._first_data: set[str] = set()
        self._plan: ReconcilePlan | None = None
        self._plan_metas: dict[str, Any] = {}
        self._plan_perp_dexs: Any = None
        self._last_rx_ms = now
        self._epoch_started_ms = now
        self._cancel_posts: set[int] = set()
        self._verify: dict[str, Any] | None = None
        self._flatten_waiting: set[str] = set()
        self._dms_next_ms = 0
        self._shutdown_started_ms: int | None = None
        self.finished = asyncio.Event()
        self.fatal: str | None = None
        # observability
        self.counters: Counter[str] = Counter()
        self.ready_latency_ms: dict[int, int] = {}
        self.reconnects = 0
        self.signals_seen = 0
        self.decode_errors: Counter[str] = Counter()
        self.error_frames: list[str] = []
        self.last_exchange_positions: dict[str, str] | None = None

    # ------------------------------------------------------------------------------------
    # the loop

    def put(self, event: Any) -> None:
        self.inbox.put_nowait(event)

    def start(self) -> None:
        """Begin the first epoch (the socket opens asynchronously)."""
        self.conn.send("start", now_ms=self.clock.now_ms())
        self._run_commands()

    async def run(self, tick_s: float = 0.1) -> None:
        ticker = asyncio.get_running_loop().create_task(self._ticker(tick_s), name="ticker")
        try:
            self.start()
            get = self.inbox.get
            while not self.finished.is_set():
                event = await get()
                self.handle(event)
        finally:
            ticker.cancel()

    async def _ticker(self, tick_s: float) -> None:
        tick = Tick()
        while True:
            await asyncio.sleep(tick_s)
            self.put(tick)

    def handle(self, event: Any) -> None:
        try:
            t = type(event)
            if t is FrameIn:
                self._on_frame(event)
            elif t is Tick:
                self._on_tick()
            elif t is SocketOpened:
                if event.epoch == self.conn.epoch and self.conn.state == "connecting":
                    self.conn.send("socket_open", now_ms=self.clock.now_ms())
                    self._last_rx_ms = self.clock.now_ms()
            elif t is SocketClosed:
                self._on_socket_closed(event)
            elif t is WriteFailed:
                self._on_write_failed(event)
            elif t is OperatorCommand:
                self._on_operator(event)
            elif t is Signal:
                self.executor.on_signal(event, self.clock.now_ms(), self.clock.now_ns())
            else:
                raise TypeError(f"unknown event type {t.__name__}")
            self._run_commands()
        except FatalError as exc:
            self._fail(str(exc))
        except Exception as exc:
            # A bug must not kill the loop, but state may be suspect: fail closed.
            log.exception("dispatcher failed handling %s", type(event).__name__)
            self.counters["internal_errors"] += 1
            self.outbox.clear()
            self._trip(f"internal error: {type(exc).__name__}: {exc}")
            try:
                self._run_commands()
            except Exception:
                log.exception("dispatcher failed while tripping HardStop")

    def _fail(self, message: str) -> None:
        log.error("fatal: %s", message)
        self.fatal = message
        self.outbox.clear()
        if self.conn.state not in ("closing", "closed"):
            self.conn.send("shutdown", now_ms=self.clock.now_ms())
        self._run_commands()
        self.finished.set()

    # ------------------------------------------------------------------------------------
    # frames

    def _on_frame(self, ev: FrameIn) -> None:
        # The epoch number alone is not enough: after a loss or a timeout the connection sits
        # in backoff with the same epoch, and frames already queued behind the loss still
        # arrive. Their epoch has ended; they must not reach its (final) machines.
        if ev.epoch != self.conn.epoch or self.conn.state not in _FRAME_STATES:
            self.counters["stale_frames"] += 1
            return
        now = self.clock.now_ms()
        self._last_rx_ms = now
        f = ev.frame
        t = type(f)
        if t is F.BboFrame:
            self._on_bbo(f.data, ev.recv_ns)
        elif t is F.ActiveAssetCtxFrame:
            self._on_ctx(f.data, ev.recv_ns)
        elif t is F.PostFrame:
            self._on_post(f.data, f, now)
        elif t is F.OrderUpdatesFrame:
            for o in f.data:
                self._on_order_update(o)
        elif t is F.UserFillsFrame:
            self._on_user_fills(f.data)
        elif t is F.UserEventsFrame:
            self._on_user_event(f.data)
        elif t is F.SubscriptionResponse:
            self._on_ack(f.data)
        elif t is F.Pong:
            if self.latency is not None and self._ping_sent_ns:
                self.latency.observe_pong_rtt((ev.recv_ns - self._ping_sent_ns) / 1e9)
            self._ping_sent_ns = 0
            self.conn.send("pong", now_ms=now)
        elif t is F.ErrorFrame:
            self._on_error_frame(f.data, now)
        elif t is F.DecodeError:
            self.decode_errors[f.kind] += 1
            if f.kind != "not_json":
                log.warning("undecodable frame (%s): %s; %s", f.kind, f.detail, f.raw_prefix[:120])
        else:
            self.counters[f"ignored:{t.__name__}"] += 1

    def _first(self, key: str, *, snapshot: bool = False) -> None:
        """First data of a subscription this epoch: the only market-data fact a machine sees."""
        if key in self._first_data:
            return
        if key == "userFills" and not snapshot:
            return
        self._first_data.add(key)
        if self.readiness is not None and key in self.readiness.keys:
            self.readiness.send("data", key=key, snapshot=snapshot)
            self._after_readiness()

    def _on_bbo(self, b: Any, recv_ns: int) -> None:
        st = self.markets.get(b.coin)
        if st is None:
            return
        bid, ask = b.bbo
        st.on_bbo(
            b.time,
            None if bid is None else (bid.px, bid.sz),
            None if ask is None else (ask.px, ask.sz),
            recv_ns,
        )
        self._first("bbo:" + b.coin)
        self._evaluate(st, recv_ns)
        if b.coin in self.positions.positions:
            self._check_exit(b.coin, recv_ns)

    def _on_ctx(self, a: Any, recv_ns: int) -> None:
        st = self.markets.get(a.coin)
        if st is None:
            return
        c = a.ctx
        st.on_ctx(
            c.oracle_px, c.mark_px, c.mid_px, c.funding or "0", c.open_interest or "0", recv_ns
        )
        self._first("activeAssetCtx:" + a.coin)
        self._evaluate(st, recv_ns)

    def _evaluate(self, st: MarketState, now_ns: int) -> None:
        sig = self.detector.evaluate(st, now_ns)
        if sig is not None:
            self.signals_seen += 1
            now_ms = self.clock.now_ms()
            self.executor.on_signal(sig, now_ms, now_ns)
            # recorded after the order (if any) is on the wire
            if self.recorder.enabled:
                self.recorder.signal(
                    sig, st, self.executor.last_outcome, now_ms=now_ms, wall_ms=self.clock.wall_ms()
                )

    def _check_exit(self, coin: str, now_ns: int) -> None:
        """Exit rules for an open position: time stop and mark regression, via the flatten machine."""
        p = self.positions.positions.get(coin)
        if p is None or not p.size or not self.hardstop.is_armed:
            return
        fm = self.flatten.get(coin)
        if fm is not None and fm.state != "idle":
            return
        st = self.markets.get(coin)
        if st is None:
            return
        reason = self.exits.check(
            coin=coin,
            size=p.size,
            entry_px=p.entry_px,
            opened_ms=p.opened_ms,
            now_wall_ms=self.clock.wall_ms(),
            m=st,
            now_ns=now_ns,
        )
        if reason is not None:
            self.counters[f"exit:{reason}"] += 1
            self.request_flatten(coin, reason)

    def _order_transition(self, cloid: str, source: str, target: str, event: str) -> None:
        self.recorder.transition(cloid, source, target, event, wall_ms=self.clock.wall_ms())
        if self.transition_log is not None:
            self.transition_log.order_transition(cloid, source, target, event)

    def _on_ack(self, ack: Any) -> None:
        if ack.method != "subscribe":
            return
        sub = ack.subscription
        typ = sub.get("type")
        key = f"{typ}:{sub.get('coin')}" if typ in ("bbo", "activeAssetCtx") else str(typ)
        m = self.readiness
        if m is None or key not in m.keys:
            self.counters["unexpected_acks"] += 1
            return
        m.send("ack", key=key)
        self._after_readiness()

    def _after_readiness(self) -> None:
        """Move the connection on once every subscription of this epoch is acknowledged."""
        m = self.readiness
        if m is None or self.conn.state != "subscribing":
            return
        if all(status != PENDING for status in m.keys.values()):
            self.conn.send("subscriptions_acked", now_ms=self.clock.now_ms())

    def _on_error_frame(self, text: str, now: int) -> None:
        self.error_frames.append(text[:300])
        del self.error_frames[:-50]
        pid = post_id_in_error(text)
        if pid is not None:
            p = self.wire.posts.resolve(pid)
            if p is not None:
                self._post_failed(p, f"error channel: {text}", now, definite=True)
                return
        log.warning("exchange error frame: %s", text[:300])
        self.counters["error_frames"] += 1

    # ------------------------------------------------------------------------------------
    # orders and fills

    def _on_order_update(self, o: Any) -> None:
        bo = o.order
        cloid = self.orders.cloid_for(bo.oid, bo.cloid)
        kind = classify_update_status(o.status)
        event, kw = self._order_event(kind, o.status, bo)
        if event is None:
            return
        if cloid is None:
            # not (yet) ours: held until an oid becomes known, e.g. a post response in flight
            self.orders.hold(bo.oid, event, kw)
            self.counters["held_updates"] += 1
            return
        self.orders.send(cloid, event, **kw)

    @staticmethod
    def _order_event(kind: str, status: str, bo: Any) -> tuple[str | None, dict]:
        if kind == "open":
            return "resting", {"oid": bo.oid}
        if kind == "filled":
            return "filled_at_post", {"oid": bo.oid, "total_sz": bo.orig_sz}
        if kind == "cancelled":
            return "cancelled", {"status": status}
        if kind == "rejected":
            return "rejected", {"reason": status}
        return None, {}

    def _fill_record(self, f: Any) -> FillRecord:
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
        )

    def _apply_fills(self, fills: list, *, snapshot: bool) -> None:
        for f in fills:
            self.recorder.fill(f, snapshot=snapshot)
            cloid = self.orders.cloid_for(f.oid, f.cloid)
            known = cloid is not None
            if (
                self.positions.apply(self._fill_record(f), snapshot=snapshot, known_order=known)
                and known
            ):
                self.orders.send(cloid, "fill", sz=f.sz, tid=f.tid)
            elif known and self.orders.is_live(cloid):
                # a snapshot fill of a live order (e.g. unknown after a disconnect) still informs it
                self.orders.send(cloid, "fill", sz=f.sz, tid=f.tid)

    def _on_user_fills(self, uf: Any) -> None:
        if self.user is not None and uf.user.lower() != self.user:
            self.counters["foreign_fills"] += 1
            return
        self._apply_fills(uf.fills, snapshot=uf.is_snapshot)
        if uf.is_snapshot:
            self._first("userFills", snapshot=True)
        self._check_flatten_progress()

    def _on_user_event(self, ev: Any) -> None:
        self._first("userEvents")
        if ev.fills:
            self._apply_fills(ev.fills, snapshot=False)
        if ev.non_user_cancel:
            for c in ev.non_user_cancel:
                cloid = self.orders.cloid_for(c.oid, None)
                if cloid is not None:
                    self.orders.send(cloid, "cancelled", status="nonUserCancel")

    # ------------------------------------------------------------------------------------
    # post responses

    def _on_post(self, data: Any, frame: Any, now: int) -> None:
        p = self.wire.posts.resolve(data.id)
        if p is None:
            self.counters["unmatched_post_responses"] += 1
            return
        if self.latency is not None:
            self.latency.observe_post_latency(p.kind, (self.clock.now_ns() - p.sent_ns) / 1e9)
        err = F.action_error(frame)
        kind = p.kind
        if kind == "order":
            if err is not None:
                self._orders_rejected(p.owner, err)
            else:
                self._order_statuses(p.owner, F.order_statuses(frame))
        elif kind == "cancel":
            self._cancel_post_done(p)
        elif kind.startswith("info:"):
            if err is not None:
                self._post_failed(p, err, now, definite=True)
            else:
                self._on_info(p, data.response.payload.data, now)
        elif kind == "schedule_cancel" and err is not None:
            log.warning("dead man's switch refused: %s", err)
            self.counters["dms_refused"] += 1

    def _order_statuses(self, cloids: list[str], statuses: list) -> None:
        if len(statuses) < len(cloids) and len(statuses) == 1 and statuses[0].kind == "error":
            statuses = statuses * len(cloids)  # one pre-validation error for the whole batch
        for i, cloid in enumerate(cloids):
            st = statuses[i] if i < len(statuses) else None
            if st is None:
                self.orders.send(cloid, "lost", reason="no status for this order in the response")
            elif st.kind == "resting":
                self.orders.send(cloid, "resting", oid=st.oid)
            elif st.kind == "filled":
                self.orders.send(cloid, "filled_at_post", oid=st.oid, total_sz=st.total_sz)
            elif st.kind == "error":
                self._order_rejected(cloid, st.error or "error")
            else:
                self.orders.send(cloid, "lost", reason=f"status {st.kind}: {st.error}")

    def _orders_rejected(self, cloids: list[str], text: str) -> None:
        for cloid in cloids:
            self._order_rejected(cloid, text)

    def _order_rejected(self, cloid: str, text: str) -> None:
        info = self.orders.info.get(cloid)
        self.orders.send(cloid, "rejected", reason=text)
        flat = info is not None and self.positions.size(info.coin) == 0
        benign = is_benign_rejection(
            text, reduce_only=bool(info and info.reduce_only), position_flat=flat
        )
        self.counters["rejections_benign" if benign else "rejections"] += 1
        reason = self.risk.on_rejection(text, benign)
        if reason:
            self._trip(reason)

    def _post_failed(self, p: PendingPost, reason: str, now: int, *, definite: bool) -> None:
        """A post ended without a usable response. Definite failures were not executed."""
        if p.kind == "order":
            for cloid in p.owner:
                if definite:
                    self._order_rejected(cloid, reason)
                else:
                    self.orders.send(cloid, "lost", reason=reason)
        elif p.kind == "cancel":
            self._cancel_post_done(p)
        elif p.kind.startswith("info:"):
            self._info_failed(p, reason, now)

    def _on_write_failed(self, ev: WriteFailed) -> None:
        if ev.post_id is None:
            return
        p = self.wire.posts.resolve(ev.post_id)
        if p is not None:
            # the frame may have been partly written: outcome unknown, reconcile
            self._post_failed(p, f"write failed: {ev.reason}", self.clock.now_ms(), definite=False)

    # ------------------------------------------------------------------------------------
    # reconciliation (info posts)

    def _start_reconciliation(self, epoch: int) -> None:
        plan = plan_requests(epoch, user=self.user if self.trading else None, dexes=self.dexes)
        self._plan, self._plan_metas, self._plan_perp_dexs = plan, {}, None
        for key, payload in plan.outstanding.items():
            self._post_info(payload, key)
        for info, m in self.orders.unknown_orders():
            self._query_order(info, m.oid)

    def _post_info(self, payload: dict, key: str) -> None:
        if self.wire.post_info(payload, kind=f"info:{key}", owner=(self.conn.epoch, key)) is None:
            self.counters["info_refused"] += 1

    def _query_order(self, info: OrderInfo, oid: int | None) -> None:
        payload = {
            "type": "orderStatus",
            "user": self.user,
            "oid": oid if oid is not None else info.cloid,
        }
        self._post_info(payload, f"orderStatus:{info.cloid}")

    def _on_info(self, p: PendingPost, raw: Any, now: int) -> None:
        epoch, key = p.owner
        data = _generic.decode(raw) if raw else None
        if key.startswith("orderStatus:"):
            self._resolve_order_status(key.split(":", 1)[1], data)
            return
        if key.startswith("verify:"):
            self._on_verify(key, data)
            return
        plan = self._plan
        if plan is None or epoch != plan.epoch or key not in plan.outstanding:
            self.counters["stale_info"] += 1
            return
        del plan.outstanding[key]
        if key == "perpDexs":
            self._plan_perp_dexs = data
        elif key.startswith("meta:"):
            self._plan_metas[key.split(":", 1)[1]] = data
        elif key.startswith("positions:"):
            dex = key.split(":", 1)[1]
            scope = {c for c, s in self.specs.items() if s.dex == dex} | {
                c for c in self.coins if dexes_of([c]) == [dex]
            }
            diffs = self.positions.reconcile(
                positions_from_state(data), scope | set(positions_from_state(data))
            )
            for d in diffs:
                log.warning("position reconciled to exchange: %s", d)
        elif key.startswith("open_orders:"):
            self._reconcile_open_orders(data or [])
        elif key == "fills":
            self._apply_fills(msgspec.convert(data or [], list[F.WsFill]), snapshot=True)
        self._after_info(plan, key, now)

    def _after_info(self, plan: ReconcilePlan, key: str, now: int) -> None:
        if (
            self._plan_perp_dexs is not None
            and len(self._plan_metas) == len(self.dexes)
            and not self.specs
        ):
            try:
                self.specs.update(build_specs(self._plan_perp_dexs, self._plan_metas, self.coins))
            except DiscoveryError as exc:
                raise FatalError(str(exc)) from exc
        m = self.readiness
        if m is not None and m.epoch == plan.epoch and self.trading:
            for part in ("positions", "open_orders"):
                if (
                    not any(k.startswith(part + ":") for k in plan.outstanding)
                    and part not in m.reconciled_parts
                ):
                    m.send("reconciled", part=part)
            if "fills" not in plan.outstanding and "fills" not in m.reconciled_parts:
                m.send("reconciled", part="fills")
        if plan.complete() and self.conn.state == "reconciling" and plan.epoch == self.conn.epoch:
            self.conn.send("reconciled", now_ms=now)
            if self.readiness is not None:
                self.readiness.send("connection_live")
            self.ready_latency_ms[plan.epoch] = now - self._epoch_started_ms
            log.info("epoch %d live after %d ms", plan.epoch, now - self._epoch_started_ms)

    def _info_failed(self, p: PendingPost, reason: str, now: int) -> None:
        epoch, key = p.owner
        log.warning("info request %s failed: %s", key, reason)
        if key.startswith("orderStatus:"):
            return  # the order stays unknown; the next epoch's reconciliation asks again
        if key.startswith("verify:"):
            self._verify = None  # the HardStop tick asks again
            return
        plan = self._plan
        if plan is not None and epoch == plan.epoch == self.conn.epoch and key in plan.outstanding:
            self._post_info(plan.outstanding[key], key)  # retry within the handshake deadline

    def _reconcile_open_orders(self, rows: list) -> None:
        listed: set[str] = set()
        for row in rows:
            oid, cloid = row.get("oid"), row.get("cloid")
            known = self.orders.cloid_for(oid, cloid)
            if known is None:
                # resting on the exchange but not ours this session: adopt it so cancel-all covers it
                key = cloid or f"oid:{oid}"
                info = OrderInfo(
                    cloid=key,
                    coin=row.get("coin", "?"),
                    asset=self.specs[row["coin"]].asset if row.get("coin") in self.specs else -1,
                    is_buy=row.get("side") == "B",
                    size=Decimal(row.get("origSz") or row.get("sz") or "0") or Decimal(1),
                    px=str(row.get("limitPx", "0")),
                    reduce_only=bool(row.get("reduceOnly")),
                    purpose="adopted",
                    created_ms=self.clock.now_ms(),
                )
                if not self.orders.is_live(key) and self.orders.was_terminal(key) is None:
                    self.orders.add(info)
                    self.orders.send(key, "sent", post_id=0, epoch=self.conn.epoch)
                    self.orders.send(key, "resting", oid=oid)
                    self.counters["adopted_orders"] += 1
                listed.add(key)
            else:
                listed.add(known)
                m = self.orders.machines.get(known)
                if m is not None and m.state == "unknown":
                    self.orders.send(known, "resolve", outcome="resting", oid=oid)
        # live orders the exchange no longer lists are filled or cancelled: ask about each
        for info, m in self.orders.live_orders():
            if info.cloid not in listed and m.state in ("resting", "partially_filled", "unknown"):
                self._query_order(info, m.oid)

    def _resolve_order_status(self, cloid: str, data: Any) -> None:
        m = self.orders.machines.get(cloid)
        if m is None:
            return
        if not isinstance(data, dict) or data.get("status") != "order":
            outcome, oid = "absent", None
        else:
            inner = data.get("order", {})
            kind = classify_update_status(str(inner.get("status", "")))
            oid = inner.get("order", {}).get("oid")
            outcome = {
                "open": "resting",
                "filled": "filled",
                "cancelled": "cancelled",
                "rejected": "rejected",
            }.get(kind, "absent")
        if m.state != "unknown":
            # resting orders the exchange no longer lists: settle from the status
            if outcome == "filled":
                self.orders.send(
                    cloid,
                    "filled_at_post",
                    oid=oid or m.oid,
                    total_sz=str(self.orders.info[cloid].size),
                )
            elif outcome in ("cancelled", "absent"):
                self.orders.send(cloid, "cancelled", status=outcome)
            return
        self.orders.send(cloid, "resolve", outcome=outcome, oid=oid)

    # ------------------------------------------------------------------------------------
    # connection lifecycle

    def _on_socket_closed(self, ev: SocketClosed) -> None:
        if ev.epoch != self.conn.epoch:
            return
        now = self.clock.now_ms()
        if self.conn.state == "closing":
            self.conn.send("closed", now_ms=now)
            self.finished.set()
            return
        if self.conn.state in ("connecting", "subscribing", "reconciling", "live"):
            log.warning("epoch %d: socket lost: %s", ev.epoch, ev.reason)
            self.conn.send("socket_lost", now_ms=now, reason=ev.reason, epoch=ev.epoch)

    def _end_epoch(self, epoch: int, reason: str) -> None:
        self.reconnects += 1 if reason != "shutdown" else 0
        self.counters[f"epoch_end:{reason.split(':')[0]}"] += 1
        if self.readiness is not None and not self.readiness.is_final:
            self.readiness.send("end")
        for p in self.wire.posts.drop_all():
            self._post_failed(p, f"connection lost ({reason})", self.clock.now_ms(), definite=False)
        self._plan = None
        self._verify = None
        self._cancel_posts.clear()

    def _begin_epoch(self, epoch: int) -> None:
        now = self.clock.now_ms()
        self._epoch_started_ms = now
        self._first_data = set()
        self.wire.epoch = epoch
        self.readiness = ReadinessMachine(
            epoch=epoch,
            markets=self.coins,
            trading=self.trading,
            first_data_timeout_ms=_ms(self.cfg.ready.first_data_timeout_s),
            exclude_on_timeout=self.cfg.ready.exclude_on_timeout,
            started_ms=now,
            hardstop_is_armed=self.hardstop.is_armed,
            outbox=self.outbox,
        )
        self.ready.machine = self.readiness
        if self.transition_log is not None:
            self.transition_log.attach(self.readiness)

    def _send_subscriptions(self) -> None:
        for coin in self.coins:
            self.wire.subscribe({"type": "bbo", "coin": coin})
            self.wire.subscribe({"type": "activeAssetCtx", "coin": coin})
        if self.trading:
            for typ in ("orderUpdates", "userFills", "userEvents"):
                self.wire.subscribe({"type": typ, "user": self.user})

    # ------------------------------------------------------------------------------------
    # commands

    def _run_commands(self) -> None:
        out = self.outbox
        while out:
            cmd = out.pop(0)
            self._execute(cmd)

    def _execute(self, cmd: Any) -> None:
        t = type(cmd)
        if t is C.OpenSocket:
            self._begin_epoch(cmd.epoch)
            self.transport.open(cmd.epoch)
        elif t is C.CloseSocket:
            self.transport.close(cmd.epoch, cmd.reason)
            if cmd.reason == "shutdown":
                self.conn.send("closed", now_ms=self.clock.now_ms())
                self.finished.set()
        elif t is C.SendSubscriptions:
            self._send_subscriptions()
        elif t is C.StartReconciliation:
            self._start_reconciliation(cmd.epoch)
        elif t is C.SendPing:
            self._ping_sent_ns = self.clock.now_ns()
            self.wire.ping()
        elif t is C.EpochEnded:
            self._end_epoch(cmd.epoch, cmd.reason)
        elif t is C.ReadyChanged:
            log.info(
                "epoch %d READY-TRADING=%s md=%s", cmd.epoch, cmd.trading, sorted(cmd.md_ready)
            )
        elif t is C.MarketExcluded:
            log.warning("epoch %d: market %s excluded: %s", cmd.epoch, cmd.market, cmd.reason)
            self.counters["market_excluded"] += 1
        elif t is C.ReconcileOrder:
            pass  # unknown orders are queried at the next reconciliation (or now, if live)
        elif t is C.OrderTerminal:
            self._order_terminal(cmd.cloid, cmd.state)
        elif t is C.BlockEntries:
            log.error("HardStop: entries blocked: %s", cmd.reason)
            self.recorder.hardstop("tripped", cmd.reason, wall_ms=self.clock.wall_ms())
            if self.readiness is not None and not self.readiness.is_final:
                self.readiness.send("hardstop_armed", armed=False)
        elif t in _HARDSTOP_STEPS:
            # A step command can be overtaken inside one event: a tick re-emits it, then
            # the same tick's progress check moves HardStop on. Run only the current step.
            if self.hardstop.state == _HARDSTOP_STEPS[t]:
                getattr(self, _HARDSTOP_STEP_METHODS[t])()
            else:
                self.counters["hardstop_stale_step"] += 1
        elif t is C.HardStopHalted:
            log.error("HardStop halted: %s", "; ".join(cmd.reasons))
            self.recorder.hardstop("halted", "; ".join(cmd.reasons), wall_ms=self.clock.wall_ms())
        elif t is C.HardStopRearmed:
            self.recorder.hardstop("armed", "operator reset", wall_ms=self.clock.wall_ms())
            if self.readiness is not None and not self.readiness.is_final:
                self.readiness.send("hardstop_armed", armed=True)
        elif t is C.SendFlattenOrder:
            self._send_flatten(cmd.market)
        elif t is C.FlattenFailed:
            self._trip(f"flatten failed {cmd.failures} times on {cmd.market}")
        else:
            raise TypeError(f"no executor for command {t.__name__}")

    def _order_terminal(self, cloid: str, state: str) -> None:
        # the machine has just been retired by the registry; its info is gone with it
        for coin, fm in self.flatten.items():
            if fm.inflight_cloid == cloid:
                fm.send(
                    "done",
                    outcome=state,
                    now_ms=self.clock.now_ms(),
                    flat=self.positions.size(coin) == 0,
                )

    # ------------------------------------------------------------------------------------
    # HardStop and flatten

    def _trip(self, reason: str) -> None:
        if self.hardstop.is_armed:
            log.error("HardStop tripped: %s", reason)
        self.hardstop.send("trip", reason=reason, now_ms=self.clock.now_ms())

    def _flatten_machine(self, coin: str) -> FlattenMachine:
        fm = self.flatten.get(coin)
        if fm is None:
            fc = self.cfg.flatten
            fm = self.flatten[coin] = FlattenMachine(
                market=coin,
                timeout_ms=_ms(fc.timeout_s),
                backoff_ms=_ms(fc.retry_backoff_s),
                backoff_max_ms=_ms(fc.retry_backoff_max_s),
                max_attempts=fc.max_attempts,
                outbox=self.outbox,
            )
            if self.transition_log is not None:
                self.transition_log.attach(fm)
        return fm

    def request_flatten(self, coin: str, reason: str) -> None:
        fm = self._flatten_machine(coin)
        if fm.state != "idle":
            self.counters["flatten_request_while_busy"] += 1
        # a busy machine records the request; it never sends a second order
        fm.send("request", reason=reason, now_ms=self.clock.now_ms())

    def _send_flatten(self, coin: str) -> None:
        fm = self._flatten_machine(coin)
        size = self.positions.size(coin)
        if size == 0:
            fm.send("cancel_request")
            return
        spec = self.specs.get(coin)
        st = self.markets.get(coin)
        ref = st.reference_px() if st is not None else None
        if spec is None or ref is None or not self.ready.can_reduce() or not self.wire.can_post():
            self._flatten_waiting.add(coin)  # retried on the next tick
            return
        self._flatten_waiting.discard(coin)
        is_buy = size < 0
        slip = _dec(self.cfg.exits.slippage_bps) / _BPS
        limit = ref * (1 + slip) if is_buy else ref * (1 - slip)
        try:
            px = format_price(
                limit, sz_decimals=spec.sz_decimals, is_buy=is_buy, rounding=Rounding.PASSIVE
            )
            sz = format_size(abs(size), sz_decimals=spec.sz_decimals)
        except (PriceError, SizeError) as exc:
            log.error("cannot build flatten order for %s: %s", coin, exc)
            fm.send("cancel_request")
            self._trip(f"flatten impossible on {coin}: {exc}")
            return
        cloid = self.executor.send_order(
            spec,
            is_buy=is_buy,
            px=px,
            sz=sz,
            reduce_only=True,
            purpose="flatten",
            now_ms=self.clock.now_ms(),
        )
        if cloid is None:
            self._flatten_waiting.add(coin)
            return
        fm.send("sent", cloid=cloid, now_ms=self.clock.now_ms())

    def _check_flatten_progress(self) -> None:
        if (
            self.hardstop.state == "flattening"
            and not self.positions.open_coins()
            and all(fm.state == "idle" for fm in self.flatten.values())
        ):
            self.hardstop.send("positions_flat")

    def _cancel_all(self) -> None:
        if not self.ready.can_reduce():
            return  # HardStop's tick re-issues CancelAllOrders once a socket is open
        by_asset_oid: list[tuple[int, int]] = []
        by_cloid: list[tuple[int, str]] = []
        for info, m in self.orders.open_orders():
            if info.asset < 0:
                continue
            if m.oid is not None:
                by_asset_oid.append((info.asset, m.oid))
            elif not info.cloid.startswith("oid:"):
                by_cloid.append((info.asset, info.cloid))
        if not by_asset_oid and not by_cloid:
            self.hardstop.send("orders_cancelled")
            return
        for action in ([cancel_action(by_asset_oid)] if by_asset_oid else []) + (
            [cancel_by_cloid_action(by_cloid)] if by_cloid else []
        ):
            p = self.wire.post_action(action, kind="cancel", owner=None)
            if p is not None:
                self._cancel_posts.add(p.post_id)

    def _cancel_post_done(self, p: PendingPost) -> None:
        self._cancel_posts.discard(p.post_id)
        if not self._cancel_posts and self.hardstop.state == "cancelling":
            self.hardstop.send("orders_cancelled")

    def _flatten_all(self) -> None:
        coins = self.positions.open_coins()
        if not coins:
            self.hardstop.send("positions_flat")
            return
        for coin in coins:
            self.request_flatten(coin, "hardstop")

    def _verify_flat(self) -> None:
        if not self.ready.can_reduce() or self.user is None:
            return
        self._verify = {"outstanding": set(), "positions": {}, "open_orders": 0}
        for dex in self.dexes:
            for key, payload in (
                (
                    f"verify:positions:{dex}",
                    {"type": "clearinghouseState", "user": self.user, "dex": dex},
                ),
                (
                    f"verify:open_orders:{dex}",
                    {"type": "openOrders", "user": self.user, "dex": dex},
                ),
            ):
                self._verify["outstanding"].add(key)
                self._post_info(payload, key)

    def _on_verify(self, key: str, data: Any) -> None:
        v = self._verify
        if v is None or key not in v["outstanding"]:
            return
        v["outstanding"].discard(key)
        if key.startswith("verify:positions:"):
            sizes = positions_from_state(data)
            v["positions"].update({c: s for c, (s, _e) in sizes.items() if s != 0})
            self.positions.reconcile(
                sizes,
                set(sizes)
                | {
                    c
                    for c in self.positions.open_coins()
                    if self.specs.get(c) and self.specs[c].dex == key.rsplit(":", 1)[1]
                },
            )
        else:
            v["open_orders"] += len(data or [])
        if not v["outstanding"]:
            flat = not v["positions"] and v["open_orders"] == 0
            self.last_exchange_positions = {c: str(s) for c, s in v["positions"].items()}
            self._verify = None
            if self.hardstop.state == "verifying":
                self.hardstop.send("verified", flat=flat)

    # ------------------------------------------------------------------------------------
    # timer

    def _on_tick(self) -> None:
        now = self.clock.now_ms()
        self.conn.send("tick", now_ms=now, last_rx_ms=self._last_rx_ms)
        if self.readiness is not None and not self.readiness.is_final:
            self.readiness.send("tick", now_ms=now)
        for p in self.wire.posts.expired(now):
            self._post_failed(p, "post timed out", now, definite=False)
        if self.conn.state == "live":
            for info, m in self.orders.unknown_orders():
                if not any(
                    q.kind == f"info:orderStatus:{info.cloid}" for q in self.wire.posts.pending()
                ):
                    self._query_order(info, m.oid)
        if not self.hardstop.is_final:
            self.hardstop.send("tick", now_ms=now)
        for fm in list(self.flatten.values()):
            if fm.state != "idle":
                fm.send("tick", now_ms=now)
        for coin in list(self._flatten_waiting):
            if self.flatten[coin].state == "requested":
                self._send_flatten(coin)
            else:
                self._flatten_waiting.discard(coin)
        self._check_flatten_progress()
        self.orders.prewarm(target=16, budget=4)
        now_ns = self.clock.now_ns()
        for coin in self.positions.open_coins():
            self._check_exit(coin, now_ns)
        self._check_risk(now)
        self._dead_mans_switch(now)
        self.recorder.tick(
            now_ms=now, wall_ms=self.clock.wall_ms(), markets=self.markets, positions=self.positions
        )
        self._shutdown_progress(now)

    def _check_risk(self, now: int) -> None:
        if not self.hardstop.is_armed:
            return
        unrealized = Decimal(0)
        for coin, p in self.positions.positions.items():
            if p.size:
                st = self.markets.get(coin)
                ref = st.reference_px() if st is not None else None
                if ref is not None:
                    unrealized += p.unrealized(ref)
        pnl = self.positions.realized() - self.positions.total_fees() + unrealized
        exposed = bool(self.positions.open_coins()) or bool(self.orders.open_orders())
        reason = self.risk.check(
            now_ms=now, pnl=pnl, connected=self.ready.can_reduce(), exposed=exposed
        )
        if reason:
            self._trip(reason)

    def _dead_mans_switch(self, now: int) -> None:
        dms = self.cfg.dead_mans_switch
        if (
            not dms.enabled
            or not self.trading
            or self.conn.state != "live"
            or now < self._dms_next_ms
        ):
            return
        self._dms_next_ms = now + _ms(dms.interval_s)
        deadline = self.clock.wall_ms() + _ms(dms.lead_s)
        self.wire.post_action(schedule_cancel_action(deadline), kind="schedule_cancel")

    # ------------------------------------------------------------------------------------
    # operator

    def _on_operator(self, ev: OperatorCommand) -> None:
        if ev.kind == "hardstop":
            self._trip(f"operator: {ev.detail or 'manual'}")
        elif ev.kind == "reset":
            if self.hardstop.state != "halted":
                log.error("operator reset refused: HardStop is %s, not halted", self.hardstop.state)
                self.counters["reset_refused"] += 1
                return
            self.hardstop.send("operator_reset")
        elif ev.kind == "shutdown":
            self._begin_shutdown(flatten=self.cfg.shutdown.flatten_on_exit and self.trading)
        else:
            log.error("unknown operator command %r", ev.kind)

    def _begin_shutdown(self, *, flatten: bool) -> None:
        if self._shutdown_started_ms is not None:
            return
        self._shutdown_started_ms = self.clock.now_ms()
        log.info("shutting down (flatten=%s)", flatten)
        if self.trading and (flatten or self.cfg.shutdown.cancel_on_exit):
            self._shutdown_flatten = flatten
            if flatten:
                self._trip("shutdown with flatten")
            else:
                self._cancel_all_on_exit()
        self._shutdown_progress(self.clock.now_ms())

    _shutdown_flatten = False

    def _cancel_all_on_exit(self) -> None:
        if not self.ready.can_reduce():
            log.error("shutdown: no open connection, open orders cannot be cancelled now")
            return
        for action in self._exit_cancels():
            self.wire.post_action(action, kind="cancel")

    def _exit_cancels(self) -> list[dict]:
        by_oid = [
            (i.asset, m.oid)
            for i, m in self.orders.open_orders()
            if m.oid is not None and i.asset >= 0
        ]
        return [cancel_action(by_oid)] if by_oid else []

    def _shutdown_progress(self, now: int) -> None:
        if self._shutdown_started_ms is None or self.conn.state in ("closing", "closed"):
            return
        timed_out = now - self._shutdown_started_ms > _ms(self.cfg.shutdown.timeout_s)
        if self._shutdown_flatten:
            done = self.hardstop.state == "halted"
        else:
            done = not self.orders.open_orders() and not self.wire.posts.pending()
        if not self.trading or done or timed_out:
            if timed_out:
                log.error(
                    "shutdown timed out after %.1f s; closing anyway", self.cfg.shutdown.timeout_s
                )
            self.conn.send("shutdown", now_ms=now)
