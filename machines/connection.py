"""ConnectionMachine: the lifecycle of the one WebSocket, one epoch per connection attempt.

disconnected → connecting → subscribing → reconciling → live; any of those → backoff on a lost
socket, a heartbeat timeout or a handshake timeout; live → backoff when a market-data stream
stayed silent through its resubscribes (`stale_stream`: the socket answers but does not carry
the data); backoff → connecting once the retry time has come; shutdown from anywhere → closing →
closed.

Heartbeats are driven by `tick(now_ms, last_rx_ms, exposed)`: the dispatcher passes the time of
the last inbound frame instead of routing every frame through the machine (a transition costs
~90 µs).

Open exposure (positions or live orders; `exposed=True` on `tick` and `socket_lost`) changes two
things, because then a dead connection costs money rather than data:
- heartbeat: a ping every `exposed_ping_interval_ms` whatever else arrives (inbound market data
  proves the server talks, not that our writes reach it), and `exposed_pong_timeout_ms` for the
  pong, so a half-open socket is found within seconds instead of after the idle ping;
- backoff: a retry is due at most `exposed_backoff_max_ms` (jittered) after the loss, so the
  disconnect-with-exposure HardStop fires only when the exchange is really unreachable, not
  because the exponential delay outgrew it. The attempt count still grows, so the delay is long
  again once flat.

Deliberately ignored events (internal self-transitions, documented here once):
- `tick` when nothing is due (every non-final state);
- `pong` in backoff (a late pong from the socket just abandoned);
- `socket_lost` in backoff (the close we asked for with CloseSocket being reported), and a
  `socket_lost` carrying an `epoch` that is not the current one (a stale report);
- `stale_stream` outside live (only a live epoch's streams are watched; a late verdict on an
  epoch already lost changes nothing);
- everything the old socket may still report while closing.
"""

from __future__ import annotations

import random

from statemachine import Event, State

from .base import HipChart, require_non_negative_int, stay
from .commands import (
    CloseSocket,
    EpochEnded,
    OpenSocket,
    SendPing,
    SendSubscriptions,
    StartReconciliation,
)

HEARTBEAT_TIMEOUT = "heartbeat timeout"
STALE_STREAM = "stale stream"
HANDSHAKE_TIMEOUT = "handshake timeout"
SHUTDOWN = "shutdown"


class ConnectionMachine(HipChart):
    """WebSocket lifecycle with epochs, jittered exponential backoff and heartbeats."""

    disconnected = State(initial=True)
    connecting = State()
    subscribing = State()
    reconciling = State()
    live = State()
    backoff = State()
    closing = State()
    closed = State(final=True)

    start = disconnected.to(connecting)
    socket_open = connecting.to(subscribing) | stay(closing)
    subscriptions_acked = subscribing.to(reconciling) | stay(closing)
    reconciled = reconciling.to(live) | stay(closing)

    socket_lost = (
        stay(connecting, subscribing, reconciling, live, cond="stale_epoch")
        | connecting.to(backoff, on="record_loss")
        | subscribing.to(backoff, on="record_loss")
        | reconciling.to(backoff, on="record_loss")
        | live.to(backoff, on="record_loss")
        | stay(backoff, closing)
    )

    tick = (
        connecting.to(backoff, cond="handshake_expired", on="lost_by_timeout")
        | subscribing.to(backoff, cond="handshake_or_heartbeat_expired", on="lost_by_timeout")
        | reconciling.to(backoff, cond="handshake_or_heartbeat_expired", on="lost_by_timeout")
        | live.to(backoff, cond="pong_overdue", on="lost_by_timeout")
        | backoff.to(connecting, cond="retry_due")
        | stay(subscribing, reconciling, live, on="maybe_ping")
        | stay(disconnected, connecting, backoff, closing)
    )

    pong = stay(subscribing, reconciling, live, on="clear_ping") | stay(backoff, closing)

    stale_stream = live.to(backoff, on="lost_by_stale_stream") | stay(
        disconnected, connecting, subscribing, reconciling, backoff, closing
    )

    shutdown = (
        disconnected.to(closing)
        | connecting.to(closing)
        | subscribing.to(closing)
        | reconciling.to(closing)
        | live.to(closing)
        | backoff.to(closing)
        | stay(closing)
    )
    # The event shares its name with the final state, so it is declared under another
    # attribute; `send("closed", ...)` is how it is delivered.
    closed_event = Event(closing.to(closed), id="closed", name="Closed")

    def __init__(
        self,
        *,
        backoff_min_ms: int,
        backoff_max_ms: int,
        backoff_reset_after_ms: int,
        ping_after_ms: int,
        pong_timeout_ms: int,
        handshake_timeout_ms: int,
        rng: random.Random,
        exposed_backoff_max_ms: int | None = None,
        exposed_ping_interval_ms: int | None = None,
        exposed_pong_timeout_ms: int | None = None,
        outbox: list | None = None,
    ) -> None:
        # Without explicit exposed values the machine behaves the same exposed or flat.
        if exposed_backoff_max_ms is None:
            exposed_backoff_max_ms = backoff_max_ms
        if exposed_ping_interval_ms is None:
            exposed_ping_interval_ms = ping_after_ms
        if exposed_pong_timeout_ms is None:
            exposed_pong_timeout_ms = pong_timeout_ms
        for name, value in (
            ("backoff_min_ms", backoff_min_ms),
            ("backoff_max_ms", backoff_max_ms),
            ("backoff_reset_after_ms", backoff_reset_after_ms),
            ("ping_after_ms", ping_after_ms),
            ("pong_timeout_ms", pong_timeout_ms),
            ("handshake_timeout_ms", handshake_timeout_ms),
            ("exposed_backoff_max_ms", exposed_backoff_max_ms),
            ("exposed_ping_interval_ms", exposed_ping_interval_ms),
            ("exposed_pong_timeout_ms", exposed_pong_timeout_ms),
        ):
            require_non_negative_int(value, name)
        if backoff_min_ms < 1:
            raise ValueError(f"backoff_min_ms must be >= 1, got {backoff_min_ms}")
        if backoff_max_ms < backoff_min_ms:
            raise ValueError(
                f"backoff_max_ms ({backoff_max_ms}) must be >= backoff_min_ms ({backoff_min_ms})"
            )
        if exposed_backoff_max_ms < 1:
            raise ValueError(f"exposed_backoff_max_ms must be >= 1, got {exposed_backoff_max_ms}")
        if not isinstance(rng, random.Random):
            raise ValueError("rng must be a random.Random (seeded, for reproducible jitter)")
        self.backoff_min_ms = backoff_min_ms
        self.backoff_max_ms = backoff_max_ms
        self.backoff_reset_after_ms = backoff_reset_after_ms
        self.ping_after_ms = ping_after_ms
        self.pong_timeout_ms = pong_timeout_ms
        self.handshake_timeout_ms = handshake_timeout_ms
        self.exposed_backoff_max_ms = exposed_backoff_max_ms
        self.exposed_ping_interval_ms = exposed_ping_interval_ms
        self.exposed_pong_timeout_ms = exposed_pong_timeout_ms
        self._rng = rng
        self.epoch = 0
        self.attempt = 0
        self.retry_at_ms: int | None = None
        # when the retry is due instead while exposure is open (never later than retry_at_ms)
        self.exposed_retry_at_ms: int | None = None
        self.last_reason: str | None = None
        self._connecting_since_ms: int | None = None
        self._live_since_ms: int | None = None
        self._ping_sent_ms: int | None = None
        self._last_ping_ms: int | None = None
        super().__init__(outbox=outbox)

    @property
    def is_live(self) -> bool:
        return self.state == "live"

    @property
    def ping_outstanding(self) -> bool:
        return self._ping_sent_ms is not None

    # --- guards ------------------------------------------------------------------------------

    def stale_epoch(self, epoch: int | None = None) -> bool:
        return epoch is not None and epoch != self.epoch

    def handshake_expired(self, now_ms: int) -> bool:
        assert self._connecting_since_ms is not None
        return now_ms - self._connecting_since_ms > self.handshake_timeout_ms

    def pong_overdue(self, now_ms: int, exposed: bool = False) -> bool:
        sent = self._ping_sent_ms
        limit = self.exposed_pong_timeout_ms if exposed else self.pong_timeout_ms
        return sent is not None and now_ms - sent > limit

    def handshake_or_heartbeat_expired(self, now_ms: int, exposed: bool = False) -> bool:
        return self.handshake_expired(now_ms) or self.pong_overdue(now_ms, exposed)

    def retry_due(self, now_ms: int, exposed: bool = False) -> bool:
        due = self.exposed_retry_at_ms if exposed else self.retry_at_ms
        return due is not None and now_ms >= due

    def tick_due(self, now_ms: int, last_rx_ms: int, exposed: bool = False) -> bool:
        """Whether `tick` with these arguments would do anything: False only where it would be
        one of the ignored self-transitions (no state change, no command, nothing recorded).
        The runtime asks this before every timer tick and sends `tick` only when it is due,
        so an idle connection costs a few comparisons instead of a transition (~90 µs). It
        reads the same guards the transitions use."""
        state = self.state
        if state == "live":
            return self.pong_overdue(now_ms, exposed) or self.ping_due(now_ms, last_rx_ms, exposed)
        if state in ("subscribing", "reconciling"):
            return self.handshake_or_heartbeat_expired(now_ms, exposed) or self.ping_due(
                now_ms, last_rx_ms, exposed
            )
        if state == "connecting":
            return self.handshake_expired(now_ms)
        if state == "backoff":
            return self.retry_due(now_ms, exposed)
        return state not in ("disconnected", "closing")  # closed: the send raises, as before

    # --- actions -----------------------------------------------------------------------------

    def on_enter_connecting(self, now_ms: int) -> None:
        self.epoch += 1
        self.retry_at_ms = None
        self.exposed_retry_at_ms = None
        self._connecting_since_ms = now_ms
        self._live_since_ms = None
        self._ping_sent_ms = None
        self._last_ping_ms = None
        self.emit(OpenSocket(self.epoch))

    def on_enter_subscribing(self) -> None:
        self.emit(SendSubscriptions(self.epoch))

    def on_enter_reconciling(self) -> None:
        self.emit(StartReconciliation(self.epoch))

    def on_enter_live(self, now_ms: int) -> None:
        self._live_since_ms = now_ms

    def record_loss(self, reason: str) -> None:
        self.last_reason = reason

    def lost_by_timeout(self, now_ms: int) -> None:
        in_handshake = self.state != "live"
        expired = in_handshake and self.handshake_expired(now_ms)
        reason = HANDSHAKE_TIMEOUT if expired else HEARTBEAT_TIMEOUT
        self.last_reason = reason
        # The socket may still be open: the runtime must close it before the next epoch.
        self.emit(CloseSocket(self.epoch, reason))

    def lost_by_stale_stream(self, stream: str) -> None:
        self.last_reason = f"{STALE_STREAM}: {stream}"
        # The socket is open and answering: it must be closed before the next epoch.
        self.emit(CloseSocket(self.epoch, self.last_reason))

    def on_enter_backoff(self, now_ms: int) -> None:
        reason = self.last_reason or "socket lost"
        self.emit(EpochEnded(self.epoch, reason))
        # A connection that stayed up long enough proves the endpoint healthy again; without
        # this reset one flap a day would eventually pin every reconnect to the maximum delay.
        live_since = self._live_since_ms
        if live_since is not None and now_ms - live_since >= self.backoff_reset_after_ms:
            self.attempt = 0
        self.attempt += 1
        delay = self.retry_delay_ms(self.attempt)
        self.retry_at_ms = now_ms + delay
        cap = self.exposed_backoff_max_ms
        # jittered below the cap too, so clients cut off together still spread out
        exposed_delay = delay if delay <= cap else self._rng.randint(cap // 2, cap)
        self.exposed_retry_at_ms = now_ms + exposed_delay
        self._connecting_since_ms = None
        self._live_since_ms = None
        self._ping_sent_ms = None
        self._last_ping_ms = None

    def retry_delay_ms(self, attempt: int) -> int:
        """min * 2^(attempt-1) capped at max, then jittered into [cap/2, cap] so that many
        clients cut off together do not reconnect in lockstep."""
        exponent = min(attempt - 1, 62)
        capped = min(self.backoff_max_ms, self.backoff_min_ms * (1 << exponent))
        return self._rng.randint(capped // 2, capped)

    def ping_due(self, now_ms: int, last_rx_ms: int, exposed: bool = False) -> bool:
        if self._ping_sent_ms is not None:
            return False
        if exposed:
            # the round trip itself is what is checked, so inbound traffic does not defer it
            since = self._last_ping_ms
            if since is None:
                since = self._connecting_since_ms if self._connecting_since_ms is not None else 0
            return now_ms - since >= self.exposed_ping_interval_ms
        return now_ms - last_rx_ms >= self.ping_after_ms

    def maybe_ping(self, now_ms: int, last_rx_ms: int, exposed: bool = False) -> None:
        if self.ping_due(now_ms, last_rx_ms, exposed):
            self._ping_sent_ms = now_ms
            self._last_ping_ms = now_ms
            self.emit(SendPing(self.epoch))

    def clear_ping(self) -> None:
        self._ping_sent_ms = None

    def on_shutdown(self) -> None:
        if self.state == "closing":
            return
        in_epoch = self.state in ("connecting", "subscribing", "reconciling", "live")
        # Always ask for a close, even with no socket: the runtime then has one uniform
        # contract (execute CloseSocket, then send `closed`).
        self.emit(CloseSocket(self.epoch, SHUTDOWN))
        if in_epoch:
            self.emit(EpochEnded(self.epoch, SHUTDOWN))
