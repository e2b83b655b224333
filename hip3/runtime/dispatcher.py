"""The dispatcher: one inbox, one consumer, a router.

Every inbound frame, timer tick, post response or timeout, strategy signal and operator
command arrives here as an event and is handled to completion before the next one. `put`
appends to the inbox and, unless an event is already being handled, drains it at once: a
frame is handled inside the socket's read callback, without waiting for another event-loop
turn, and an event put while another is handled (a write failure, say) waits its turn.

The dispatcher decides nothing itself. It routes each event to the component that owns it,
and runs each command the machines emit (into the shared outbox) by the component that
executes it:

- `ConnectionEpoch` (epoch.py): the socket's life, readiness, subscriptions, health, account
  check;
- `Reconciler` (reconciliation.py): the epoch's reconciliation plan and every info request;
- `OrderFlow` and `Fills` (order_flow.py): order updates, fills, post answers;
- `Flattening` (flatten.py) and `Safety` (safety.py): flatten orders, HardStop steps, risk,
  dead man's switch, operator commands, the graceful stop;
- `StrategyHost` (strategy_host.py): market data → the strategy (hip3/strategy/api.py), and
  the strategy's actions → the executor's gates; the built-in strategy is the dislocation
  taker (hip3/strategy/taker.py).

Machines decide; components execute their commands. Market data updates plain state and
reaches a machine only for lifecycle facts (first data of a subscription this epoch). Nothing
else reads the socket, so reconnect and resubscribe pass through exactly the same path as live
traffic.

`handle()` is synchronous: the property tests drive it directly with generated orderings,
with a recording transport in place of the socket.

This file answers "where does an event go"; "what is the runtime made of, and who holds
whom" is assembly.py's, which builds every component in dependency order.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from collections import Counter
from functools import partial
from typing import Any

from hip3.events import (
    FrameIn,
    OperatorCommand,
    Signal,
    SocketClosed,
    SocketOpened,
    Tick,
    WriteFailed,
)
from hip3.machines import commands as C
from hip3.machines.readiness import ReadinessMachine
from hip3.protocol import frames as F
from hip3.runtime.account_check import AccountCheck
from hip3.runtime.assembly import assemble
from hip3.runtime.common import FatalError, log
from hip3.runtime.reconciliation import dexes_of

__all__ = ["Clock", "Dispatcher", "FatalError"]


class Clock:
    """Monotonic time for timeouts, wall time for nonces and exchange timestamps."""

    def now_ms(self) -> int:
        return time.perf_counter_ns() // 1_000_000

    def now_ns(self) -> int:
        return time.perf_counter_ns()

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000


class Dispatcher:
    """The one consumer of the inbox: has the components built (assembly.py), routes events to
    them and runs the machines' commands through them."""

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
        strategy: Any | None = None,
        whole_dexes: tuple[Any, ...] = (),
        journal_flush_every_ms: int = 0,
    ) -> None:
        """`strategy`: a Strategy class (given `cfg.strategy.params`) or a callable building
        the strategy from its Context; None runs the one `cfg.strategy` names, or the built-in
        taker (with `detector` and `exits` in place of the configured ones when given).
        `whole_dexes`: the configuration's "dex:*" entries as written (`cfg` holds their
        markets as discovery expanded them), which rediscovery follows during the run.
        `journal_flush_every_ms`: see `Recorder` (0, the live bot's: every tick)."""
        self.cfg = cfg
        self.clock = clock = clock or Clock()
        self.trading = trading = cfg.mode == "trading"
        if trading and not user:
            raise FatalError(
                "trading mode needs the trading account's address: set account.user or provide a "
                "signing key (HIP3_PRIVATE_KEY or account.keystore)"
            )
        if trading and signer is None:
            raise FatalError(
                "trading mode needs a signing key (HIP3_PRIVATE_KEY or account.keystore)"
            )
        self.user = user = user.lower() if user else None
        self.coins: list[str] = list(cfg.coins)
        self.dexes: list[str] = dexes_of(self.coins)
        # the machines' commands, run in order after each event (`run_commands`)
        self.outbox: list = []
        self.inbox: collections.deque = collections.deque()
        self._draining = False
        self._running = False  # between run()'s start and its end
        self.finished = asyncio.Event()
        self.fatal: str | None = None
        self.transport = transport
        self.transition_log = transition_log
        self.latency = latency  # optional LatencyRecorder: post and pong latencies
        # observability
        self.counters: Counter[str] = Counter()
        self.decode_errors: Counter[str] = Counter()
        # the order transitions go to the journal and transition log only when one is kept
        self._record_transitions = journal is not None or transition_log is not None

        # every component, built in dependency order (assembly.py)
        rt = assemble(
            cfg,
            trading=trading,
            user=user,
            coins=self.coins,
            dexes=self.dexes,
            transport=transport,
            clock=clock,
            signer=signer,
            nonces=nonces,
            rng=rng,
            cloids=cloids,
            detector=detector,
            exits=exits,
            journal=journal,
            transition_log=transition_log,
            latency=latency,
            account_check=account_check,
            strategy=strategy,
            whole_dexes=whole_dexes,
            journal_flush_every_ms=journal_flush_every_ms,
            outbox=self.outbox,
            counters=self.counters,
            decode_errors=self.decode_errors,
            account_value=self._account_value_reported,
            margin_state=self._margin_state_reported,
            fill_applied=self._fill_applied,
            order_transition=self._order_transition,
        )
        # The same names as the assembly's (status, metrics, the summary, the dashboard, the
        # backtest and tests read them here), and plain attributes: the routing below reads
        # them on every event.
        self.conn = rt.conn
        self.wire = rt.wire
        self.markets = rt.markets
        self.specs = rt.specs
        self.dead_mans_switch = rt.dead_mans_switch
        self.ready = rt.ready
        self.hardstop = rt.hardstop
        self.flatten = rt.flatten
        self.orders = rt.orders
        self.positions = rt.positions
        self.cloids = rt.cloids
        self.gates = rt.gates
        self.fees = rt.fees
        self.priority = rt.priority
        self.risk = rt.risk
        self.recorder = rt.recorder
        self.trip = rt.trip
        self.epoch = rt.epoch
        self.reconciler = rt.reconciler
        self.leverage = rt.leverage
        self.order_flow = rt.order_flow
        self.entry_guards = rt.entry_guards
        self.liq_buffer = rt.liq_buffer
        self.executor = rt.executor
        self.price_lookup = rt.price_lookup
        self.flattening = rt.flattening
        self.safety = rt.safety
        self.host = rt.host
        self.streams = rt.streams
        self.strategy = rt.strategy
        self.detector = rt.detector
        self.exits = rt.exits
        self.market_join = rt.market_join
        self.rediscovery = rt.rediscovery
        # command type -> what runs it (public: a test checks that no command lacks one)
        self.command_runners = self._command_runners()

    # ------------------------------------------------------------------------------------
    # facts one component passes to another built after it (assemble()'s routes)

    def _account_value_reported(self, dex: str, value: Any) -> None:
        # The reconciler reads it, the executor sizes with it; the executor is built after the
        # reconciler (its order answers go to the order flow, which asks the reconciler to read
        # again), so the fact passes through here.
        self.executor.set_account_value(dex, value)

    def _margin_state_reported(self, dex: str, state: Any) -> None:
        # the reconciler reads it, the liquidation-buffer gate judges entries by it
        self.liq_buffer.note_state(dex, state)

    def _order_transition(self, cloid: str, source: str, target: str, event: str) -> None:
        if self._record_transitions:
            self.order_flow.order_transition(cloid, source, target, event)
        self.host.order_transition(cloid, source, target, event)

    def _fill_applied(self, fill: Any, cloid: str | None) -> None:
        self.host.fill(fill, cloid)

    def _command_runners(self) -> dict[type, Any]:
        """Which component runs each command the machines emit; the dispatcher's own few fan a
        command out to two components."""
        epoch, safety, flattening, reconciler = (
            self.epoch,
            self.safety,
            self.flattening,
            self.reconciler,
        )
        return {
            C.OpenSocket: epoch.open,
            C.CloseSocket: self._close_socket,
            C.SendSubscriptions: epoch.send_subscriptions,
            C.StartReconciliation: self._start_reconciliation,
            C.SendPing: epoch.ping,
            C.EpochEnded: self._end_epoch,
            C.ReadyChanged: self._ready_changed,
            C.MarketExcluded: epoch.market_excluded,
            C.ReconcileOrder: reconciler.reconcile_order,
            C.OrderTerminal: flattening.order_ended,
            C.BlockEntries: self._entries_blocked,
            C.CancelAllOrders: safety.run_step,
            C.FlattenAllPositions: safety.run_step,
            C.VerifyFlat: safety.run_step,
            C.HardStopHalted: safety.halted,
            C.HardStopRearmed: self._hardstop_rearmed,
            C.SendFlattenOrder: flattening.send_order,
            C.FlattenAttemptFailed: flattening.attempt_failed,
            C.FlattenFailed: flattening.gave_up,
        }

    # ------------------------------------------------------------------------------------
    # the public read surface (metrics, status, the run summary, tests)

    @property
    def readiness(self) -> ReadinessMachine | None:
        """The current epoch's ReadinessMachine."""
        return self.epoch.readiness

    @property
    def ready_latency_ms(self) -> dict[int, int]:
        return self.epoch.ready_latency_ms

    @property
    def reconnects(self) -> int:
        return self.epoch.reconnects

    @property
    def error_frames(self) -> list[str]:
        return self.epoch.error_frames

    @property
    def account_check(self) -> AccountCheck | None:
        return self.epoch.account_check

    @property
    def account_refused(self) -> str | None:
        return self.epoch.account_refused

    @property
    def signals_seen(self) -> int:
        return self.host.signals_seen

    @property
    def last_exchange_positions(self) -> dict[str, str] | None:
        return self.safety.last_exchange_positions

    @property
    def shutdown_timed_out(self) -> bool:
        return self.safety.shutdown_timed_out

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
        self.run_commands()
        self.start_strategy()

    def start_strategy(self) -> None:
        """The strategy's on_start (its timers), run like an event: a failure trips the
        HardStop, and what it asks for is carried out before the next event."""
        self._guarded("strategy start", self._strategy_started)

    def _strategy_started(self) -> None:
        self.host.start()
        self.run_commands()
        self._deliver()

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
        self._guarded(type(event).__name__, self._handle, event)

    def _guarded(self, what: str, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except FatalError as exc:
            self._fail(str(exc))
        except Exception as exc:
            # A bug must not kill the loop, but state may be suspect: fail closed.
            log.exception("dispatcher failed handling %s", what)
            self.counters["internal_errors"] += 1
            self.outbox.clear()
            self.trip(f"internal error: {type(exc).__name__}: {exc}")
            try:
                self.run_commands()
            except Exception:
                log.exception("dispatcher failed while tripping HardStop")

    def _deliver(self) -> None:
        """The strategy's queued callbacks, then whatever its actions made the machines say."""
        host = self.host
        while host.pending:
            host.deliver()
            self.run_commands()

    def _handle(self, event: Any) -> None:
        t = type(event)
        if t is FrameIn:
            self._on_frame(event)
        elif t is Tick:
            self._on_tick()
        elif t is SocketOpened:
            self.epoch.socket_opened(event)
        elif t is SocketClosed:
            if self.epoch.socket_closed(event, exposed=self._exposed()):
                self.finished.set()
        elif t is WriteFailed:
            self.order_flow.write_failed(event)
        elif t is OperatorCommand:
            self.safety.operator(event)
        elif t is Signal:
            self.host.signal(event)
        else:
            raise TypeError(f"unknown event type {t.__name__}")
        if self.outbox:  # market data seldom makes a machine speak: skip the call then
            self.run_commands()
        if self.host.pending:
            self._deliver()

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
        self.run_commands()
        self.finished.set()

    def _exposed(self) -> bool:
        """Positions or live orders (what a dead connection would leave unmanaged), or a stop
        in progress. The connection machine pings and reconnects faster while this holds."""
        return (
            bool(self.orders.machines)
            or bool(self.positions.open_coins())
            # a stop needs a connection to cancel, flatten and verify before its deadline
            or self.safety.stopping
        )

    # ------------------------------------------------------------------------------------
    # frames

    def _on_frame(self, ev: FrameIn) -> None:
        now = self.clock.now_ms()
        if not self.epoch.received(ev, now):
            return
        f = ev.frame
        t = type(f)
        if t is F.BboFrame:
            self.host.bbo(f.data, ev.recv_ns)
        elif t is F.ActiveAssetCtxFrame:
            self.host.ctx(f.data, ev.recv_ns)
        elif t is F.PostFrame:
            self.order_flow.post_answered(f.data, f, now)
        elif t is F.L2BookFrame:
            self.host.book(f.data)
        elif t is F.OrderUpdatesFrame:
            for o in f.data:
                self.order_flow.order_update(o)
        elif t is F.UserFillsFrame:
            if self.order_flow.user_fills(f.data):
                self.flattening.check_progress()  # the fills may have closed the last position
        elif t is F.UserEventsFrame:
            self.order_flow.user_event(f.data)
        elif t is F.SubscriptionResponse:
            self.epoch.ack(f.data)
        elif t is F.Pong:
            self.epoch.pong(ev.recv_ns, now)
        elif t is F.ErrorFrame:
            self.epoch.error_frame(f.data, now)
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

    # ------------------------------------------------------------------------------------
    # commands: each to the component that executes it; a few fan out to two

    def run_commands(self) -> None:
        out, runners = self.outbox, self.command_runners
        while out:
            cmd = out.pop(0)
            run = runners.get(type(cmd))
            if run is None:
                raise TypeError(f"no executor for command {type(cmd).__name__}")
            run(cmd)

    def _close_socket(self, cmd: C.CloseSocket) -> None:
        if self.epoch.close(cmd):
            self.finished.set()

    def _start_reconciliation(self, cmd: C.StartReconciliation) -> None:
        self.reconciler.start(cmd)
        # the account check's answers gate READY-TRADING like the plan's own
        for key, payload in self.epoch.account_requests(cmd.epoch).items():
            self.reconciler.add_to_plan(
                key, payload, partial(self.epoch.account_answer, cmd.epoch, key)
            )

    def _end_epoch(self, cmd: C.EpochEnded) -> None:
        self.epoch.end(cmd)  # posts in flight fail first: their owners see the epoch's state
        self.reconciler.end_epoch()
        self.safety.end_epoch()

    def _ready_changed(self, cmd: C.ReadyChanged) -> None:
        self.epoch.ready_changed(cmd)
        self.host.ready_changed(cmd)

    def _entries_blocked(self, cmd: C.BlockEntries) -> None:
        self.safety.entries_blocked(cmd)
        self.epoch.hardstop_armed(False)

    def _hardstop_rearmed(self, cmd: C.HardStopRearmed) -> None:
        self.safety.rearmed(cmd)
        self.epoch.hardstop_armed(True)

    # ------------------------------------------------------------------------------------
    # timer

    def _on_tick(self) -> None:
        """Every component with a timeout or a periodic duty is asked on every tick, in this
        order. Most ticks find nothing due, so each answers that cheaply from what it keeps:
        a machine's `tick_due`, the post book's earliest deadline, the strategy's earliest
        timer, the realized PnL as of the last fill, a next-poll time (never late for it:
        tests/runtime/test_tick_due.py, tests/transport/test_posts.py)."""
        now = self.clock.now_ms()
        self.epoch.tick(now, exposed=self._exposed())
        for p in self.wire.posts.expired(now):
            p.owner.failed("post timed out", now, definite=False)
        self.reconciler.retry_due(now)
        self.reconciler.resync()
        self.leverage.tick(now)
        self.safety.tick(now)
        self.orders.prewarm(target=16, budget=4)
        self.reconciler.poll_oi_caps(now)
        self.rediscovery.tick(now)
        self.host.tick(now)  # the strategy's timers (the built-in taker's exits)
        self.safety.check_risk(now)
        self.dead_mans_switch.tick(now)
        self.streams.tick(self.clock.now_ns())
        self.recorder.tick(
            now_ms=now, wall_ms=self.clock.wall_ms(), markets=self.markets, positions=self.positions
        )
        self.safety.shutdown_progress(now)
