"""The dispatcher: one inbox, one consumer.

Every inbound frame, timer tick, post response or timeout, strategy signal and operator
command arrives here as an event and is handled to completion before the next one. `put`
appends to the inbox and, unless an event is already being handled, drains it at once: a
frame is handled inside the socket's read callback, without waiting for another event-loop
turn, and an event put while another is handled (a write failure, say) waits its turn. Machines decide; the dispatcher executes their commands (I/O, timers, fan-out
between machines). Market data updates plain state and reaches a machine only for lifecycle
facts (first data of a subscription this epoch). Nothing else reads the socket, so reconnect
and resubscribe pass through exactly the same path as live traffic.

`handle()` is synchronous: the property tests drive it directly with generated orderings,
with a recording transport in place of the socket.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from collections import Counter
from functools import partial
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
from hip3.execution.entry_guards import EntryGuards
from hip3.execution.executor import Executor, RiskLimits
from hip3.execution.orders import OrderRegistry
from hip3.execution.positions import PositionTracker
from hip3.execution.risk import RiskMonitor
from hip3.machines import commands as C
from hip3.machines.connection import ConnectionMachine
from hip3.machines.flatten import FlattenMachine
from hip3.machines.hardstop import HardStopMachine
from hip3.machines.readiness import PENDING, READY, ReadinessMachine
from hip3.market.gates import GateParams, MarketGates
from hip3.market.spread import SpreadEwma
from hip3.market.state import Freshness, MarketSpec, MarketState
from hip3.protocol import frames as F
from hip3.protocol.ids import CloidSource
from hip3.protocol.nesting import within_depth
from hip3.runtime.account_check import AccountCheck
from hip3.runtime.common import FatalError, log
from hip3.runtime.common import dec as _dec
from hip3.runtime.common import ms as _ms
from hip3.runtime.order_flow import OrderFlowSteps
from hip3.runtime.post_owners import CancelPost
from hip3.runtime.price_lookup import PriceLookup
from hip3.runtime.ready import Ready
from hip3.runtime.reconciliation import (
    ReconcilePlan,
    ReconciliationSteps,
    dexes_of,
    order_status_key,
)
from hip3.runtime.recorder import Recorder
from hip3.runtime.safety import STOP_REASON, SafetySteps
from hip3.runtime.wire import Wire
from hip3.strategy.basic import BasicDetector, DetectorParams
from hip3.strategy.detector import Detector
from hip3.strategy.detector import DetectorParams as FullDetectorParams
from hip3.strategy.exits import ExitParams, ExitPolicy
from hip3.strategy.fees import FeeTable
from hip3.transport.limits import TokenBucket
from hip3.transport.posts import post_id_in_error

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


def _subscription_coin(text: str) -> str | None:
    """The coin named by an error text such as 'Invalid subscription {"type":"bbo","coin":"X"}'."""
    brace = text.find("{")
    if brace < 0 or not within_depth(text[brace:]):  # a decoder would recurse on a deep one
        return None
    try:
        sub = msgspec.json.decode(text[brace:])
    except msgspec.DecodeError:
        return None
    coin = sub.get("coin") if isinstance(sub, dict) else None
    return coin if isinstance(coin, str) else None


class Clock:
    """Monotonic time for timeouts, wall time for nonces and exchange timestamps."""

    def now_ms(self) -> int:
        return time.perf_counter_ns() // 1_000_000

    def now_ns(self) -> int:
        return time.perf_counter_ns()

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000


class Dispatcher(OrderFlowSteps, ReconciliationSteps, SafetySteps):
    """The one consumer of the inbox. Its steps live in modules by concern: order flow
    (`order_flow.py`), reconciliation (`reconciliation.py`), HardStop/flatten/risk/operator
    (`safety.py`); this module holds the loop, frame routing, the epoch lifecycle, command
    execution and the timer."""

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
        account_check: AccountCheck | None = None,
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
        self.inbox: collections.deque = collections.deque()
        self._draining = False
        self._running = False  # between run()'s start and its end
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
            is_open=lambda: self.conn.state in _FRAME_STATES,
        )
        self.conn = ConnectionMachine(
            backoff_min_ms=_ms(ws.backoff_min_s),
            backoff_max_ms=_ms(ws.backoff_max_s),
            backoff_reset_after_ms=_ms(ws.backoff_reset_after_s),
            ping_after_ms=_ms(ws.ping_after_s),
            pong_timeout_ms=_ms(ws.pong_timeout_s),
            handshake_timeout_ms=_ms(ws.handshake_timeout_s),
            exposed_backoff_max_ms=_ms(ws.exposed_backoff_max_s),
            exposed_ping_interval_ms=_ms(ws.exposed_ping_interval_s),
            exposed_pong_timeout_ms=_ms(ws.exposed_pong_timeout_s),
            rng=rng or random.Random(),
            outbox=self.outbox,
        )
        # May this key trade this account? Asked every epoch before READY-TRADING; until the
        # first check passes no action is sent at all. None: the caller vouches (tests).
        self.account_check = account_check if self.trading else None
        self.account_refused: str | None = None
        if self.account_check is not None:
            self.wire.signer_verified = False
        freshness = Freshness.from_config(cfg.freshness)
        self.markets: dict[str, MarketState] = {
            c: MarketState(c, freshness, SpreadEwma(cfg.gates.spread_ewma_alpha))
            for c in self.coins
        }
        self.specs: dict[str, MarketSpec] = {}
        self.ready = Ready(now_ns=self.clock.now_ns)
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
        self.gates = {c: MarketGates(c, GateParams.from_config(cfg.gates)) for c in self.coins}
        self.fees = FeeTable(_dec(d.taker_fee_bps))
        self.detector = detector or self._make_detector(cfg)
        r = cfg.risk
        self.entry_guards = EntryGuards.from_config(cfg.entry_guards, positions=self.positions)
        self.executor = Executor(
            limits=RiskLimits(
                max_notional_per_market=_dec(r.max_notional_per_market_usd),
                max_total_notional=_dec(r.max_total_notional_usd),
                max_concurrent_positions=r.max_concurrent_positions,
                min_order_notional=_dec(d.min_order_notional_usd),
                slippage_bps=_dec(d.slippage_bps),
                max_slippage_bps=_dec(d.max_slippage_bps),
                risk_per_market=_dec(r.risk_per_market) if r.dynamic_sizing else None,
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
            order_post=self._order_post,
            guards=self.entry_guards,
            wall_ms=self.clock.wall_ms,
        )
        self.risk = RiskMonitor(
            loss_limit=_dec(r.loss_limit_usd),
            max_consecutive_rejections=r.max_consecutive_rejections,
            disconnect_exposure_ms=_ms(r.disconnect_exposure_s),
            max_flatten_failures=r.max_flatten_failures,
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
        self.exits = (
            exits
            if exits is not None
            else ExitPolicy(
                ExitParams.from_config(cfg.exits, cfg.oracle_exit),
                entry_edge=self.entry_guards.entry_edge,
            )
        )
        self.readiness: ReadinessMachine | None = None
        self._plan: ReconcilePlan | None = None
        self._plan_metas: dict[str, Any] = {}
        self._plan_perp_dexs: Any = None
        # dexes whose open-order list must be read again: the read in flight may predate a
        # stranger's order that appeared since, or the read failed
        self._open_orders_reask: set[str] = set()
        self._last_rx_ms = now
        self._epoch_started_ms = now
        self._cancel_posts: set[CancelPost] = set()
        self._verify: dict[str, Any] | None = None
        self._dms_next_ms = 0
        self._oi_next_ms = 0
        self._shutdown_started_ms: int | None = None
        self.finished = asyncio.Event()
        self.fatal: str | None = None
        # observability
        self.counters: Counter[str] = Counter()
        # a price for a position in a coin the bot does not stream (HardStop flattens it too)
        self.price_lookup = PriceLookup(
            ask=self._post_info,
            can_ask=self.ready.can_reduce,
            now_ms=self.clock.now_ms,
            counters=self.counters,
        )
        self.ready_latency_ms: dict[int, int] = {}
        self.reconnects = 0
        self.signals_seen = 0
        self.decode_errors: Counter[str] = Counter()
        self.error_frames: list[str] = []
        self.last_exchange_positions: dict[str, str] | None = None

    def _make_detector(self, cfg: Any) -> Any:
        d = cfg.detector
        if d.kind == "basic":
            return BasicDetector(
                DetectorParams(
                    taker_fee_bps=_dec(d.taker_fee_bps),
                    slippage_bps=_dec(d.slippage_bps),
                    min_edge_bps=_dec(d.min_edge_bps),
                    size_fraction=_dec(d.size_fraction),
                    max_order_notional=_dec(d.max_order_notional_usd),
                    thresholds={
                        m.coin: _dec(m.threshold_bps)
                        for m in cfg.markets
                        if m.threshold_bps is not None
                    },
                )
            )
        return Detector(
            FullDetectorParams.from_config(d, cfg.markets),
            fee_bps=self.fees,
            gates=self.gates,
            specs=self.specs,
        )

    # ------------------------------------------------------------------------------------
    # the loop

    def put(self, event: Any) -> None:
        self.inbox.append(event)
        if self._running and not self._draining:
            self._drain()

    def _drain(self) -> None:
        self._draining = True
        try:
            inbox, handle, finished = self.inbox, self.handle, self.finished
            while inbox and not finished.is_set():
                handle(inbox.popleft())
        finally:
            self._draining = False

    def start(self) -> None:
        """Begin the first epoch (the socket opens asynchronously)."""
        self.conn.send("start", now_ms=self.clock.now_ms())
        self._run_commands()

    async def run(self, tick_s: float = 0.1) -> None:
        ticker = asyncio.get_running_loop().create_task(self._ticker(tick_s), name="ticker")
        try:
            self._running = True
            self._draining = True  # a put during start() waits its turn like any other
            try:
                self.start()
            finally:
                self._draining = False
            self._drain()  # whatever was put before the loop ran
            await self.finished.wait()
        finally:
            self._running = False
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

    def abort(self, message: str) -> None:
        """End the run at once on something its owner decided outside the loop (a start-up
        deadline, a forced exit): logged and reported as the run's fatal error."""
        self._fail(message)

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
            n = self.decode_errors[f.kind] = self.decode_errors[f.kind] + 1
            # every one is counted; the log gets the 1st, 2nd, 4th, 8th ... so a flood of bad
            # frames cannot drown the log (or the loop) in warnings
            if f.kind != "not_json" and n & (n - 1) == 0:
                log.warning(
                    "undecodable frame #%d (%s): %s; %s", n, f.kind, f.detail, f.raw_prefix[:120]
                )
        else:
            self.counters[f"ignored:{t.__name__}"] += 1

    def _first(self, key: str, *, snapshot: bool = False) -> None:
        """First data of a subscription this epoch: the only market-data fact a machine sees.
        The epoch's ReadinessMachine holds each subscription's status; data for one it already
        counts as ready (or does not wait for) tells it nothing."""
        m = self.readiness
        if m is None or m.keys.get(key, READY) == READY:
            return
        if key == "userFills" and not snapshot:
            return
        m.send("data", key=key, snapshot=snapshot)
        self._after_readiness()

    def _on_bbo(self, b: Any, recv_ns: int) -> None:
        st = self.markets.get(b.coin)
        if st is None:
            return
        bid, ask = b.bbo
        if not st.on_bbo(
            b.time,
            None if bid is None else (bid.px, bid.sz),
            None if ask is None else (ask.px, ask.sz),
            recv_ns,
            wall_ms=self.clock.wall_ms(),
        ):
            return  # refused (stamped ahead of our clock, or older than the book we have)
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
        if a.coin in self.positions.positions:
            self._check_exit(a.coin, recv_ns)  # the oracle exit counts every oracle move

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
        """Exit rules for an open position (`hip3.strategy.exits`), via the flatten machine."""
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
        if text.startswith("Invalid subscription"):
            coin = _subscription_coin(text)
            if coin in self.markets:
                # a configured market the exchange does not know: no epoch can ever be ready
                raise FatalError(
                    f"market {coin} does not exist on the exchange (it refused the "
                    f"subscription: {text[:200]}); fix [[markets]] in the configuration"
                )
        n = self.counters["error_frames"] = self.counters["error_frames"] + 1
        if n & (n - 1) == 0:  # 1st, 2nd, 4th, ...: counted always, logged sparsely
            log.warning("exchange error frame #%d: %s", n, text[:300])

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
            self.conn.send(
                "socket_lost", now_ms=now, reason=ev.reason, epoch=ev.epoch, exposed=self._exposed()
            )

    def _exposed(self) -> bool:
        """Positions or live orders (what a dead connection would leave unmanaged), or a stop
        in progress. The connection machine pings and reconnects faster while this holds."""
        return (
            bool(self.orders.machines)
            or bool(self.positions.open_coins())
            # a stop needs a connection to cancel, flatten and verify before its deadline
            or self._shutdown_started_ms is not None
        )

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

    def _start_account_check(self, epoch: int) -> None:
        """The account check's requests join the epoch's reconciliation plan, so the epoch
        cannot go live (nor READY-TRADING hold) before every answer is in and judged."""
        check, plan = self.account_check, self._plan
        if check is None or plan is None:
            return
        for key, payload in check.begin(epoch).items():
            plan.add(key, payload, partial(self._on_account_answer, epoch, key))
            self._ask_plan_part(plan, key)

    def _on_account_answer(self, epoch: int, key: str, data: Any, now: int) -> None:
        check = self.account_check
        if check is None or not check.answer(epoch, key, data):
            return
        problem = check.verdict(self.clock.wall_ms())
        if problem is None:
            if not self.wire.signer_verified:
                log.info("account check passed: %s may trade %s", check.signer, check.user)
            self.wire.signer_verified = True
            return
        self.account_refused = problem
        raise FatalError(f"account check failed: {problem}")

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
            self._start_account_check(cmd.epoch)
        elif t is C.SendPing:
            self._ping_sent_ns = self.clock.now_ns()
            self.counters["pings_sent"] += 1
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
            self._reconcile_order(cmd.cloid, cmd.oid)
        elif t is C.OrderTerminal:
            self._flatten_order_ended(cmd.cloid, cmd.state, cmd.reason)
        elif t is C.BlockEntries:
            if cmd.reason == STOP_REASON:
                log.info("stopping: entries blocked")
            else:
                log.error("HardStop: entries blocked: %s", cmd.reason)
            self.recorder.hardstop("tripped", cmd.reason, wall_ms=self.clock.wall_ms())
            if self.readiness is not None and not self.readiness.is_final:
                self.readiness.send("hardstop_armed", armed=False)
        elif t in _HARDSTOP_STEPS:
            # A step command can be overtaken inside one event: a tick re-emits it, then
            # the same tick's progress check moves HardStop on. Run only the current step.
            if self.hardstop.state == _HARDSTOP_STEPS[t]:
                getattr(self, _HARDSTOP_STEP_METHODS[t])(cmd.attempt)
            else:
                self.counters["hardstop_stale_step"] += 1
        elif t is C.HardStopHalted:
            if list(cmd.reasons) == [STOP_REASON]:
                log.info("stopped: orders cancelled, positions flattened and verified")
            else:
                log.error("HardStop halted: %s", "; ".join(cmd.reasons))
            if self.hardstop.given_up:
                log.error(
                    "HardStop: flatten gave up on %s; positions adopted from the exchange: %s",
                    ", ".join(self.hardstop.given_up),
                    self.last_exchange_positions,
                )
            self.recorder.hardstop("halted", "; ".join(cmd.reasons), wall_ms=self.clock.wall_ms())
        elif t is C.HardStopRearmed:
            self.recorder.hardstop("armed", "operator reset", wall_ms=self.clock.wall_ms())
            self.risk.reset()
            if self.readiness is not None and not self.readiness.is_final:
                self.readiness.send("hardstop_armed", armed=True)
        elif t is C.SendFlattenOrder:
            self._send_flatten(cmd.market)
        elif t is C.FlattenAttemptFailed:
            self._flatten_attempt_failed(cmd.market, cmd.failures, cmd.outcome)
        elif t is C.FlattenFailed:
            self._flatten_gave_up(cmd.market, cmd.failures, cmd.outcome)
        else:
            raise TypeError(f"no executor for command {t.__name__}")

    # ------------------------------------------------------------------------------------
    # timer

    def _on_tick(self) -> None:
        now = self.clock.now_ms()
        self.conn.send("tick", now_ms=now, last_rx_ms=self._last_rx_ms, exposed=self._exposed())
        if self.readiness is not None and not self.readiness.is_final:
            self.readiness.send("tick", now_ms=now)
        for p in self.wire.posts.expired(now):
            self._post_failed(p, "post timed out", now, definite=False)
        self._retry_due_info(now)
        if self.conn.state == "live":
            for info, m in self.orders.unknown_orders():
                if not self._asking(order_status_key(info.cloid)):
                    self._query_order(info, m.oid)
            if self.positions.needs_state:
                self._read_positions_again()
            if self._open_orders_reask:
                self._reask_open_orders()
        if not self.hardstop.is_final:
            self.hardstop.send("tick", now_ms=now)
        for fm in list(self.flatten.values()):
            if fm.state != "idle":
                fm.send("tick", now_ms=now)
        self._check_flatten_progress()
        self.orders.prewarm(target=16, budget=4)
        self._poll_oi_caps(now)
        now_ns = self.clock.now_ns()
        for coin in self.positions.open_coins():
            self._check_exit(coin, now_ns)
        self._check_risk(now)
        self._dead_mans_switch(now)
        self.recorder.tick(
            now_ms=now, wall_ms=self.clock.wall_ms(), markets=self.markets, positions=self.positions
        )
        self._shutdown_progress(now)
