"""Stale streams through the delivery layer: a market-data subscription that stops while the
connection lives makes its market stale, is resubscribed (that stream only), and the
connection is replaced when resubscribing does not bring it back; counted per stream."""

from __future__ import annotations

from decimal import Decimal

from tests.runtime.fakes import MARKETS, Harness

QUIET, BUSY = list(MARKETS)


def _live(**overrides) -> Harness:
    h = Harness(exits={"time_stop_s": 600.0, "mark_regression_enabled": False}, **overrides)
    h.bring_up()
    assert h.d.ready.trading(), h.d.ready.describe()
    return h


def _subscription_frames(h: Harness, start: int) -> list[tuple[str, dict]]:
    return [
        (m["method"], m["subscription"])
        for m in h.transport.sent[start:]
        if m.get("method") in ("subscribe", "unsubscribe")
    ]


def _drop_lane(h: Harness, lane: str) -> int:
    """The exchange's frames on `lane` never arrive (the stream is stuck)."""
    dropped = 0
    while True:
        heads = [i for i in h.delivery.deliverable() if h.delivery.frames[i].lane == lane]
        if not heads:
            return dropped
        h.delivery.drop(heads[0])
        dropped += 1


def _oracle_moves(h: Harness, coin: str) -> None:
    """The exchange's oracle for `coin` moves a little and its context reaches the bot."""
    h.clock.advance(100)
    h.oracle[coin] = h.oracle[coin] * Decimal("1.0001")
    h.exchange.set_oracle(coin, h.oracle[coin])
    h.delivery.publish_market_data()
    h.deliver_all()
    h.tick()


def _time_passes(h: Harness, ms: int, *, silent: str) -> None:
    """`ms` pass in steps of a second: the oracle ticks, the exchange answers, and every
    stream flows except the `silent` lane's (what a step's tick asks is answered next step)."""
    for _ in range(ms // 1000):
        h.clock.advance(1000)
        for coin in MARKETS:
            h.exchange.set_oracle(coin, h.oracle[coin])
        h.delivery.publish_market_data()
        _drop_lane(h, silent)
        while h.delivery.requests:
            h.execute()
        h.deliver_all()
        h.tick()


def test_a_silent_context_stream_is_resubscribed_alone_and_its_market_comes_back():
    h = _live()
    d, key = h.d, "activeAssetCtx:" + QUIET
    start = len(h.transport.sent)
    _time_passes(h, 7_000, silent=key)
    assert d.ready.market(QUIET, h.clock.now_ns())  # 7 s: not yet beyond max_ctx_age_s
    assert _subscription_frames(h, start) == []
    _time_passes(h, 1_000, silent=key)
    # silent: the market is stale (entries on it stop), the others trade on
    assert d.ready.stale_markets() == {QUIET: "ctx_stale"}
    assert d.ready.trading() and d.ready.market(BUSY, h.clock.now_ns())
    sub = {"type": "activeAssetCtx", "coin": QUIET}
    assert _subscription_frames(h, start) == [("unsubscribe", sub), ("subscribe", sub)]
    assert d.streams.silent_streams() == {key: 1}
    h.settle()  # the exchange acks both and the new subscription sends its snapshot
    h.tick()
    # the snapshot restates the oracle the bot already had: it proves the stream answers, not
    # that the oracle moved (a stopped oracle would otherwise look fresh after each resubscribe)
    assert not d.ready.market(QUIET, h.clock.now_ns())
    _oracle_moves(h, QUIET)
    assert d.ready.market(QUIET, h.clock.now_ns())
    assert d.streams.silent_streams() == {}
    assert d.conn.state == "live" and d.conn.epoch == 1
    assert d.streams.silence_counts == {key: 1}
    assert d.streams.retry_counts == {key: 1}
    assert d.streams.reconnect_counts == {}


def test_a_stream_that_stays_silent_after_its_resubscribes_replaces_the_connection():
    h = _live()
    d, key = h.d, "activeAssetCtx:" + QUIET
    start = len(h.transport.sent)
    _time_passes(h, 9_000, silent=key)
    assert d.streams.silent_streams() == {key: 1}
    _time_passes(h, 4_000, silent=key)  # freshness.resubscribe_wait_s later: once more
    assert d.streams.silent_streams() == {key: 2}
    assert d.conn.epoch == 1
    _time_passes(h, 5_000, silent=key)  # freshness.max_resubscribes spent: a new connection
    assert d.conn.epoch == 1 and d.conn.state == "backoff"
    assert h.transport.closed[-1] == (1, "stale stream: " + key)
    assert d.counters["epoch_end:stale stream"] == 1
    assert d.streams.reconnect_counts == {key: 1}
    assert d.streams.retry_counts == {key: 2}
    frames = _subscription_frames(h, start)
    assert len(frames) == 4 and {s["coin"] for _, s in frames} == {QUIET}
    h.tick(61_000)
    h.open_socket()
    h.settle()
    h.tick()
    assert d.conn.epoch == 2 and d.ready.trading(), d.ready.describe()
    _oracle_moves(h, QUIET)  # the new connection's snapshot restated it; an update moves it
    assert d.ready.market(QUIET, h.clock.now_ns())


def test_a_book_whose_changes_stop_coming_is_resubscribed():
    h = _live()
    d, key = h.d, "bbo:" + QUIET
    start = len(h.transport.sent)
    # the book moves; its bbo is lost; the context's mid shows the move
    h.clock.advance(1_000)
    h.quote(QUIET, dislocated="sell")
    h.delivery.publish_market_data()
    _drop_lane(h, key)
    h.deliver_lanes("activeAssetCtx:")
    _time_passes(h, 1_000, silent=key)
    assert _subscription_frames(h, start) == []  # within max_bbo_age_s a bbo may still come
    _time_passes(h, 1_000, silent=key)
    assert d.ready.stale_markets() == {QUIET: "bbo_stale"}
    sub = {"type": "bbo", "coin": QUIET}
    assert _subscription_frames(h, start) == [("unsubscribe", sub), ("subscribe", sub)]
    h.settle()  # the new subscription's first bbo is the book as it is now
    h.tick()
    assert d.ready.market(QUIET, h.clock.now_ns()), d.ready.stale_markets()
    assert d.streams.silence_counts == {key: 1}


def test_a_quiet_book_is_not_a_silent_stream():
    h = _live()
    d = h.d
    start = len(h.transport.sent)
    _time_passes(h, 30_000, silent="none")  # the oracle ticks; no book changes for 30 s
    assert d.ready.stale_markets() == {}
    assert _subscription_frames(h, start) == []
    assert d.streams.silence_counts == {}


def test_stream_metrics_are_exported_per_stream():
    from prometheus_client import generate_latest

    from hip3.metrics.exporter import build_registry

    h = _live()
    key = "activeAssetCtx:" + QUIET
    _time_passes(h, 9_000, silent=key)
    text = generate_latest(build_registry(h.d)).decode()
    labels = f'coin="{QUIET}",stream="activeAssetCtx"'
    assert f"hip3_stream_silences_total{{{labels}}} 1.0" in text
    assert f"hip3_stream_resubscribes_total{{{labels}}} 1.0" in text
    assert "hip3_stream_stale_reconnects_total{" not in text
