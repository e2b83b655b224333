"""The connection epoch: one socket's life, from open to loss, and what READY needs of it.

Owns the epoch's ReadinessMachine (created when the ConnectionMachine opens a socket, ended
with the epoch), the subscriptions and their acks, the first data of each subscription (the
only market-data fact a machine sees), the connection's health (frames received, ping and
pong), the error channel, and the account check whose answers gate READY-TRADING. The
ConnectionMachine decides when to open, ping, reconcile, back off and close; this component
carries out those commands and tells the machines what happened.

Events it takes: SocketOpened, SocketClosed, subscription acks, pongs, error frames, the
first data of a subscription (from order flow and the strategy host), ticks. Commands it
executes: OpenSocket, CloseSocket, SendSubscriptions, SendPing, EpochEnded, ReadyChanged,
MarketExcluded, and the readiness side of BlockEntries / HardStopRearmed.
"""

from __future__ import annotations

from typing import Any

import msgspec

from hip3.events import FrameIn, SocketClosed, SocketOpened
from hip3.machines import commands as C
from hip3.machines.connection import ConnectionMachine
from hip3.machines.readiness import READY, ReadinessMachine
from hip3.protocol.nesting import within_depth
from hip3.runtime.account_check import AccountCheck
from hip3.runtime.common import FatalError, log, ms
from hip3.runtime.ready import Ready
from hip3.runtime.wire import Wire
from hip3.transport.posts import post_id_in_error

# Connection states in which the current epoch's socket is open and its frames count.
FRAME_STATES = frozenset({"subscribing", "reconciling", "live"})


def subscription_coin(text: str) -> str | None:
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


class ConnectionEpoch:
    def __init__(
        self,
        *,
        cfg: Any,
        conn: ConnectionMachine,
        wire: Wire,
        transport: Any,
        ready: Ready,
        coins: list[str],
        retired: set[str],
        markets: dict[str, Any],
        trading: bool,
        user: str | None,
        hardstop: Any,
        outbox: list,
        clock: Any,
        counters: Any,
        transition_log: Any | None,
        latency: Any | None,
        account_check: AccountCheck | None,
        trip: Any,
    ) -> None:
        self.cfg = cfg
        self.conn = conn
        self.wire = wire
        self.transport = transport
        self.ready = ready
        self.coins = coins
        self.retired = retired  # delisted markets: neither subscribed nor awaited
        self.markets = markets
        self.trading = trading
        self.user = user
        self.hardstop = hardstop
        self.outbox = outbox
        self.clock = clock
        self.counters = counters
        self.transition_log = transition_log
        self.latency = latency  # optional LatencyRecorder: pong round trips
        # May this key trade this account? Asked every epoch before READY-TRADING; until the
        # first check passes no action is sent at all. None: the caller vouches (tests).
        self.account_check = account_check
        self.trip = trip  # the HardStop: a mode change mid-run stops entries through it
        self.account_refused: str | None = None
        self.readiness: ReadinessMachine | None = None
        now = clock.now_ms()
        self.last_rx_ms = now  # the last frame of this epoch (the connection's health)
        self.started_ms = now
        self.ready_latency_ms: dict[int, int] = {}  # epoch -> ms from open to live
        self.reconnects = 0
        self.error_frames: list[str] = []
        self._ping_sent_ns = 0

    # ------------------------------------------------------------------------------------
    # socket events

    def socket_opened(self, ev: SocketOpened) -> None:
        if ev.epoch == self.conn.epoch and self.conn.state == "connecting":
            self.conn.send("socket_open", now_ms=self.clock.now_ms())
            self.last_rx_ms = self.clock.now_ms()

    def socket_closed(self, ev: SocketClosed, *, exposed: bool) -> bool:
        """A socket closed; True when it was the stop's own close (the run is over)."""
        if ev.epoch != self.conn.epoch:
            return False
        now = self.clock.now_ms()
        if self.conn.state == "closing":
            self.conn.send("closed", now_ms=now)
            return True
        if self.conn.state in ("connecting", "subscribing", "reconciling", "live"):
            log.warning("epoch %d: socket lost: %s", ev.epoch, ev.reason)
            self.conn.send(
                "socket_lost", now_ms=now, reason=ev.reason, epoch=ev.epoch, exposed=exposed
            )
        return False

    def received(self, ev: FrameIn, now: int) -> bool:
        """A frame of the current epoch's open socket (stamped as the connection's last sign
        of life); False for one that must not reach state. The epoch number alone is not
        enough: after a loss or a timeout the connection sits in backoff with the same epoch,
        and frames already queued behind the loss still arrive. Their epoch has ended; they
        must not reach its (final) machines."""
        if ev.epoch != self.conn.epoch or self.conn.state not in FRAME_STATES:
            self.counters["stale_frames"] += 1
            return False
        self.last_rx_ms = now
        return True

    def tick(self, now: int, *, exposed: bool) -> None:
        # Each machine is told only when its tick is due: most ticks find nothing to do, and
        # a `tick` transition that changes nothing costs ~90 µs (docs/statemachine.md#cost).
        conn = self.conn
        if conn.tick_due(now, self.last_rx_ms, exposed):
            conn.send("tick", now_ms=now, last_rx_ms=self.last_rx_ms, exposed=exposed)
        readiness = self.readiness
        if readiness is not None and readiness.tick_due(now):
            readiness.send("tick", now_ms=now)

    # ------------------------------------------------------------------------------------
    # commands

    def open(self, cmd: C.OpenSocket) -> None:
        now = self.clock.now_ms()
        epoch = cmd.epoch
        self.started_ms = now
        self.wire.epoch = epoch
        self.readiness = ReadinessMachine(
            epoch=epoch,
            markets=self.live_coins(),
            trading=self.trading,
            first_data_timeout_ms=ms(self.cfg.ready.first_data_timeout_s),
            exclude_on_timeout=self.cfg.ready.exclude_on_timeout,
            started_ms=now,
            hardstop_is_armed=self.hardstop.is_armed,
            outbox=self.outbox,
        )
        self.ready.machine = self.readiness
        if self.transition_log is not None:
            self.transition_log.attach(self.readiness)
        self.transport.open(epoch)

    def close(self, cmd: C.CloseSocket) -> bool:
        """Close the epoch's socket; True when it is the stop's close (the run is over)."""
        self.transport.close(cmd.epoch, cmd.reason)
        if cmd.reason == "shutdown":
            self.conn.send("closed", now_ms=self.clock.now_ms())
            return True
        return False

    def live_coins(self) -> list[str]:
        """The markets this epoch subscribes and waits for: every one not delisted."""
        return [c for c in self.coins if c not in self.retired]

    def _market_streams(self, coin: str) -> list[dict]:
        streams = [{"type": "bbo", "coin": coin}, {"type": "activeAssetCtx", "coin": coin}]
        if self.cfg.strategy.book:
            streams.append({"type": "l2Book", "coin": coin})
        return streams

    def send_subscriptions(self, cmd: C.SendSubscriptions) -> None:
        for coin in self.live_coins():
            self.wire.subscribe({"type": "bbo", "coin": coin})
            self.wire.subscribe({"type": "activeAssetCtx", "coin": coin})
        if self.cfg.strategy.book:
            # the strategy's optional data: READY never waits for it
            for coin in self.live_coins():
                self.wire.subscribe({"type": "l2Book", "coin": coin})
        if self.trading:
            for typ in ("orderUpdates", "userFills", "userEvents"):
                self.wire.subscribe({"type": typ, "user": self.user})

    def ping(self, cmd: C.SendPing) -> None:
        self._ping_sent_ns = self.clock.now_ns()
        self.counters["pings_sent"] += 1
        self.wire.ping()

    def end(self, cmd: C.EpochEnded) -> None:
        """The epoch is over: its readiness ends, and every post still in flight fails with an
        unknown outcome (its owner reconciles it in the next epoch)."""
        reason = cmd.reason
        self.reconnects += 1 if reason != "shutdown" else 0
        self.counters[f"epoch_end:{reason.split(':')[0]}"] += 1
        if self.readiness is not None and not self.readiness.is_final:
            self.readiness.send("end")
        now = self.clock.now_ms()
        for p in self.wire.posts.drop_all():
            p.owner.failed(f"connection lost ({reason})", now, definite=False)

    def ready_changed(self, cmd: C.ReadyChanged) -> None:
        log.info("epoch %d READY-TRADING=%s md=%s", cmd.epoch, cmd.trading, sorted(cmd.md_ready))

    def market_excluded(self, cmd: C.MarketExcluded) -> None:
        log.warning("epoch %d: market %s excluded: %s", cmd.epoch, cmd.market, cmd.reason)
        self.counters["market_excluded"] += 1

    def stream_stale(self, stream: str) -> None:
        """A market-data stream stayed silent through its resubscribes: the socket answers
        but does not carry the data, so the connection is replaced (hip3/runtime/streams.py)."""
        self.conn.send("stale_stream", stream=stream, now_ms=self.clock.now_ms())

    def market_retired(self, coin: str, reason: str) -> None:
        """Discovery lists `coin` as delisted: this epoch's readiness stops waiting for it and
        its streams are unsubscribed (later epochs neither subscribe nor wait, see
        `live_coins`)."""
        m = self.readiness
        if m is not None and not m.is_final and coin in m.markets:
            m.send("retire", market=coin, reason=reason)
            if self.conn.state in FRAME_STATES:
                for sub in self._market_streams(coin):
                    self.wire.unsubscribe(sub)

    def market_joined(self, coin: str) -> None:
        """A market listed since the epoch began (rediscovery of a whole dex): this epoch's
        readiness takes it (READY-MD on its own first data, never holding the others back)
        and it is subscribed now; later epochs treat it like every other market."""
        m = self.readiness
        if m is None or m.is_final or coin in m.markets:
            return
        m.send("join", market=coin)
        if self.conn.state in FRAME_STATES:
            for sub in self._market_streams(coin):
                self.wire.subscribe(sub)

    def hardstop_armed(self, armed: bool) -> None:
        """READY-TRADING needs an armed HardStop: the epoch's readiness learns each change."""
        if self.readiness is not None and not self.readiness.is_final:
            self.readiness.send("hardstop_armed", armed=armed)

    # ------------------------------------------------------------------------------------
    # frames about the connection

    def first(self, key: str, *, snapshot: bool = False) -> None:
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

    def ack(self, ack: Any) -> None:
        if ack.method != "subscribe":
            return
        sub = ack.subscription
        typ = sub.get("type")
        if typ == "l2Book" and self.cfg.strategy.book:
            return  # the strategy's books: not part of READY
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
        if m.all_answered:
            self.conn.send("subscriptions_acked", now_ms=self.clock.now_ms())

    def pong(self, recv_ns: int, now: int) -> None:
        if self.latency is not None and self._ping_sent_ns:
            self.latency.observe_pong_rtt((recv_ns - self._ping_sent_ns) / 1e9)
        self._ping_sent_ns = 0
        self.conn.send("pong", now_ms=now)

    def error_frame(self, text: str, now: int) -> None:
        self.error_frames.append(text[:300])
        del self.error_frames[:-50]
        pid = post_id_in_error(text)
        if pid is not None:
            p = self.wire.posts.resolve(pid)
            if p is not None:
                p.owner.failed(f"error channel: {text}", now, definite=True)
                return
        if text.startswith("Invalid subscription"):
            coin = subscription_coin(text)
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
    # reconciliation's verdicts on this epoch

    def reconciliation_progress(self, plan: Any, now: int) -> None:
        """The epoch's reconciliation plan moved on: each READY-TRADING part it settles is
        told to the readiness, and the connection goes live once every answer is in."""
        m = self.readiness
        if m is not None and m.epoch == plan.epoch and self.trading:
            for part in ("positions", "open_orders", "fills"):
                if plan.part_done(part) and part not in m.reconciled_parts:
                    m.send("reconciled", part=part)
        if plan.complete() and self.conn.state == "reconciling" and plan.epoch == self.conn.epoch:
            self.conn.send("reconciled", now_ms=now)
            if self.readiness is not None:
                self.readiness.send("connection_live")
            self.ready_latency_ms[plan.epoch] = now - self.started_ms
            log.info("epoch %d live after %d ms", plan.epoch, now - self.started_ms)

    def account_requests(self, epoch: int) -> dict[str, dict]:
        """The account check's requests of this epoch, by key (none without a check). They
        join the epoch's reconciliation plan, so the epoch cannot go live (nor READY-TRADING
        hold) before every answer is in and judged."""
        if self.account_check is None:
            return {}
        return self.account_check.begin(epoch)

    def account_answer(self, epoch: int, key: str, data: Any, now: int) -> None:
        check = self.account_check
        if check is None or not check.answer(epoch, key, data):
            return
        problem = check.verdict(self.clock.wall_ms())
        if problem is None:
            if not self.wire.signer_verified:
                log.info("account check passed: %s may trade %s", check.signer, check.user)
            self.wire.signer_verified = True
            return
        if check.passed_once and check.mode_refused():
            # The account changed mode while the bot ran (the switch needs no position and no
            # order open, but one may have opened since): entries stop, and the HardStop
            # cancels, flattens and verifies with the key that may still trade the account.
            log.error("account check failed mid-run: %s", problem)
            self.trip(f"account mode changed: {problem}")
            return
        self.account_refused = problem
        raise FatalError(f"account check failed: {problem}")
