"""ConnectionMachine with open exposure: the backoff stays under the exposed cap (so the
disconnect-with-exposure HardStop is reached only when the exchange is really unreachable),
a ping goes out on the short interval whatever else arrives, and a missing pong ends the
epoch within the short timeout. Flat, the machine behaves as before."""

from __future__ import annotations

import random

from hip3.machines.commands import CloseSocket, EpochEnded, OpenSocket, SendPing
from hip3.machines.connection import HEARTBEAT_TIMEOUT, ConnectionMachine
from hypothesis import given
from hypothesis import strategies as st

PARAMS = dict(
    backoff_min_ms=1_000,
    backoff_max_ms=60_000,
    backoff_reset_after_ms=30_000,
    ping_after_ms=45_000,
    pong_timeout_ms=10_000,
    handshake_timeout_ms=15_000,
    exposed_backoff_max_ms=2_000,
    exposed_ping_interval_ms=2_000,
    exposed_pong_timeout_ms=3_000,
)


def make(seed: int = 7, **overrides) -> ConnectionMachine:
    return ConnectionMachine(**{**PARAMS, **overrides}, rng=random.Random(seed))


def to_live(sm: ConnectionMachine, now: int) -> None:
    sm.send("start" if sm.state == "disconnected" else "tick", now_ms=now, last_rx_ms=now)
    sm.send("socket_open", now_ms=now + 1)
    sm.send("subscriptions_acked", now_ms=now + 2)
    sm.send("reconciled", now_ms=now + 3)


def reconnect_delays(sm: ConnectionMachine, drops: int, *, exposed: bool) -> list[int]:
    """Drop the connection right after each handshake, `drops` times; the wait before each
    new epoch, as the dispatcher's 100 ms ticks would see it."""
    now = 0
    to_live(sm, now)
    delays = []
    for _ in range(drops):
        now += 10
        sm.send("socket_lost", now_ms=now, reason="reset", exposed=exposed)
        lost_at = now
        while sm.state == "backoff":
            now += 100
            sm.send("tick", now_ms=now, last_rx_ms=lost_at, exposed=exposed)
        delays.append(now - lost_at)
        sm.send("socket_open", now_ms=now + 1)
        sm.send("subscriptions_acked", now_ms=now + 2)
        sm.send("reconciled", now_ms=now + 3)
    return delays


def test_repeated_drops_while_exposed_never_wait_past_the_exposed_cap() -> None:
    """Flat, ten drops in a row grow the wait towards a minute (past the 30 s exposure
    trigger); exposed, every wait stays within the 2 s cap plus one tick."""
    flat = reconnect_delays(make(), 10, exposed=False)
    assert max(flat) > 30_000, flat  # the flat backoff still grows
    exposed = reconnect_delays(make(), 10, exposed=True)
    assert max(exposed) <= 2_000 + 100, exposed
    assert min(exposed) >= 500  # jittered, not a hot loop: at least min/2


def test_exposure_that_appears_during_backoff_shortens_the_wait() -> None:
    """The retry time is judged at each tick: a wait begun flat (attempt 8: up to 60 s) is cut
    to the cap once the dispatcher reports exposure."""
    sm = make()
    sm.attempt = 7
    to_live(sm, 0)
    sm.send("socket_lost", now_ms=10, reason="reset", exposed=False)
    assert sm.retry_at_ms - 10 >= 30_000
    sm.send("tick", now_ms=2_500, last_rx_ms=0, exposed=False)
    assert sm.state == "backoff"
    sm.outbox.clear()
    sm.send("tick", now_ms=2_600, last_rx_ms=0, exposed=True)
    assert sm.state == "connecting" and sm.outbox == [OpenSocket(2)]


def test_exposed_pings_on_the_short_interval_despite_traffic() -> None:
    sm = make()
    to_live(sm, 0)
    sm.outbox.clear()
    # data keeps arriving (last_rx = now): flat, no ping for 45 s of that
    for now in range(100, 10_000, 100):
        sm.send("tick", now_ms=now, last_rx_ms=now, exposed=False)
    assert sm.outbox == []
    # exposed: a ping at once (the last one is older than the interval), then every 2 s
    pings = []
    for now in range(10_000, 16_100, 100):
        sm.send("tick", now_ms=now, last_rx_ms=now, exposed=True)
        if sm.outbox:
            assert sm.outbox == [SendPing(1)]
            sm.outbox.clear()
            pings.append(now)
            sm.send("pong", now_ms=now + 50)
    assert pings == [10_000, 12_000, 14_000, 16_000]


def test_exposed_missing_pong_ends_the_epoch_within_seconds() -> None:
    """A half-open socket while exposed: nothing arrives, the ping gets no pong; the epoch
    ends within interval + pong timeout (+ one tick), not after 45 + 10 s."""
    sm = make()
    to_live(sm, 0)
    sm.outbox.clear()
    now = 3
    while sm.state == "live":
        now += 100
        sm.send("tick", now_ms=now, last_rx_ms=3, exposed=True)
    assert now <= 2_000 + 3_000 + 200
    assert sm.last_reason == HEARTBEAT_TIMEOUT
    assert sm.outbox == [
        SendPing(1),
        CloseSocket(1, HEARTBEAT_TIMEOUT),
        EpochEnded(1, HEARTBEAT_TIMEOUT),
    ]


def test_flat_heartbeat_is_unchanged() -> None:
    sm = make()
    to_live(sm, 0)
    sm.outbox.clear()
    sm.send("tick", now_ms=44_999, last_rx_ms=0)
    assert sm.outbox == []
    sm.send("tick", now_ms=45_000, last_rx_ms=0)
    assert sm.outbox == [SendPing(1)]
    sm.send("tick", now_ms=55_000, last_rx_ms=0)
    assert sm.state == "live"  # 10 s is the flat pong timeout: not overdue yet
    sm.send("tick", now_ms=55_001, last_rx_ms=0)
    assert sm.state == "backoff"


@given(
    seed=st.integers(0, 2**16),
    attempts=st.integers(0, 40),
    cap=st.integers(1, 5_000),
)
def test_exposed_retry_never_later_than_cap_nor_later_than_flat(
    seed: int, attempts: int, cap: int
) -> None:
    sm = make(seed, exposed_backoff_max_ms=cap)
    sm.attempt = attempts
    to_live(sm, 0)
    sm.send("socket_lost", now_ms=100, reason="x")
    assert sm.exposed_retry_at_ms - 100 <= cap
    assert sm.exposed_retry_at_ms <= sm.retry_at_ms
    assert sm.exposed_retry_at_ms - 100 >= min(cap // 2, sm.retry_at_ms - 100)
