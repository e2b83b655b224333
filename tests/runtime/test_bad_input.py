"""Bad input reaching the dispatcher: counted, logged sparsely, never a crash or a state change."""

from __future__ import annotations

import json
import logging
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.runtime.reconciliation import INFO_RETRY_MIN_MS

from .fakes import Harness


def test_a_flood_of_bad_frames_is_counted_and_changes_nothing(caplog):
    h = Harness()
    h.start()
    h.bring_up()
    d = h.d
    assert d.ready.trading()
    positions_before = d.positions.signed_sizes()
    junk = [
        '{"channel": "bbo", "data": {"coin": 5}}',  # wrong type
        '{"channel": "nope", "data": {}}',  # unknown channel
        '{"data": {}}',  # no channel
        "[1, 2, 3]",  # not an object
        '{"channel": "post", "data": {"id": "x"}}',  # malformed post
    ]
    with caplog.at_level(logging.WARNING, logger="hip3.runtime.dispatcher"):
        for i in range(1000):
            h.frame(junk[i % len(junk)])
    assert sum(d.decode_errors.values()) == 1000
    assert set(d.decode_errors) >= {"invalid", "unknown_channel", "missing_channel", "not_object"}
    warnings = [r for r in caplog.records if "undecodable frame" in r.getMessage()]
    assert 0 < len(warnings) <= 4 * 9  # 1st, 2nd, 4th, ... of each kind, not a thousand lines
    assert d.counters["internal_errors"] == 0
    assert d.hardstop.is_armed and d.ready.trading()
    assert d.positions.signed_sizes() == positions_before


def test_exchange_error_frames_are_counted_and_logged_sparsely(caplog):
    h = Harness()
    h.start()
    h.bring_up()
    with caplog.at_level(logging.WARNING, logger="hip3.runtime.dispatcher"):
        for _ in range(100):
            h.frame(
                '{"channel": "error", "data": "Cannot send more than 2000 messages per minute."}'
            )
    assert h.d.counters["error_frames"] == 100
    logged = [r for r in caplog.records if "exchange error frame" in r.getMessage()]
    assert len(logged) == 7  # 1, 2, 4, 8, 16, 32, 64
    assert h.d.ready.trading()


def test_nothing_is_written_to_an_epoch_that_ended_in_the_same_tick():
    """Found by the deep hypothesis profile: the tick that ends an epoch by handshake timeout
    also expired its reconciliation posts, and their retry was written to the dead socket
    before the epoch's end was executed."""
    h = Harness(websocket={"handshake_timeout_s": 15.0}, outbound={"post_timeout_s": 5.0})
    h.start()
    h.open_socket()
    # acknowledge every subscription so reconciliation posts go out, but answer none of them
    for _ in range(20):
        if h.d.conn.state != "subscribing":
            break
        h.ack(0)
    assert h.d.conn.state == "reconciling"
    assert len(h.d.wire.posts) > 0
    written_after_end: list[str] = []

    def watch(msg: dict) -> None:
        if h.d.conn.state not in ("subscribing", "reconciling", "live"):
            written_after_end.append(f"{msg.get('method')} while {h.d.conn.state}")

    h.transport.watch = watch
    h.tick(16_000)  # past both the post timeout and the handshake timeout
    assert h.d.conn.state == "backoff"
    assert written_after_end == []
    assert len(h.d.wire.posts) == 0


GARBAGE_ANSWERS = {
    # reconciliation step key -> (info type, a garbage answer)
    "perpDexs": ("perpDexs", [None, {"name": "xyz", "deployerFeeScale": None}]),
    "meta:xyz": ("meta", {"universe": [{"name": "xyz:AAA", "szDecimals": "two"}]}),
    "positions:xyz": (
        "clearinghouseState",
        {"assetPositions": [{"position": {"coin": "xyz:AAA", "szi": "NaN", "entryPx": "1"}}]},
    ),
    "open_orders:xyz": (
        "openOrders",
        [{"coin": "xyz:AAA", "limitPx": "1", "oid": "abc", "side": "B", "sz": "x", "timestamp": 1}],
    ),
    "fills": (
        "userFills",
        [{"coin": "xyz:AAA", "px": "1", "sz": "abc", "side": "B", "time": 1, "oid": 1, "tid": 1}],
    ),
    "fees": ("userFees", {"userCrossRate": "NaN"}),
}


@pytest.mark.parametrize("step", sorted(GARBAGE_ANSWERS))
def test_a_garbage_reconciliation_answer_fails_its_step_which_asks_again(step: str, caplog):
    """The first answer to one reconciliation request is garbage: it is counted, nothing of it
    is adopted, the request goes out again, and the epoch becomes READY on the real answer."""
    info_type, garbage = GARBAGE_ANSWERS[step]
    h = Harness()
    h.start()
    h.open_socket()
    while h.acks():
        h.ack(0)
    (post,) = [p for p in h.d.wire.posts.pending() if p.kind == f"info:{step}"]
    answer = {"type": "info", "payload": {"type": info_type, "data": garbage}}
    with caplog.at_level(logging.WARNING, logger="hip3.runtime"):
        h.frame(json.dumps({"channel": "post", "data": {"id": post.post_id, "response": answer}}))
    assert h.d.decode_errors["bad_answer"] == 1
    assert any(info_type in r.getMessage() for r in caplog.records)
    assert [p for p in h.d.wire.posts.pending() if p.kind == f"info:{step}"] == []
    h.tick(INFO_RETRY_MIN_MS)  # asked again after the backoff, not at once
    asked_again = [p for p in h.d.wire.posts.pending() if p.kind == f"info:{step}"]
    assert len(asked_again) == 1 and asked_again[0].post_id != post.post_id
    assert h.d.counters["internal_errors"] == 0 and h.d.hardstop.is_armed
    assert h.d.positions.signed_sizes() == {} and list(h.d.orders.live_orders()) == []
    h.bring_up()
    assert h.d.ready.trading()
    assert h.d.hardstop.is_armed and h.d.fatal is None
    assert h.d.counters["internal_errors"] == 0
    assert h.d.decode_errors["bad_answer"] == 1
    assert h.bot_positions() == h.true_positions()


_NASTY = ["NaN", "-1", "0", "1e5", "inf", "abc", "", "1|1", None, -1, 2**70, 1.5, [], {}]


def _fill(coin: str, user_oid: int) -> dict:
    return {
        "coin": coin,
        "px": "100.5",
        "sz": "0.2",
        "side": "B",
        "time": 1_764_000_000_000,
        "oid": user_oid,
        "tid": 777,
        "fee": "0.01",
        "closedPnl": "0",
        "startPosition": "0",
        "crossed": True,
    }


def _templates(h: Harness) -> list[dict]:
    coin = next(iter(h.d.markets))
    ctx = {"oraclePx": "100", "markPx": "100", "midPx": "100", "funding": "0", "openInterest": "1"}
    level = {"px": "100", "sz": "1", "n": 1}
    order = {
        "coin": coin,
        "side": "B",
        "limitPx": "100",
        "sz": "0",
        "oid": 4242,
        "timestamp": 1,
        "origSz": "1",
    }
    return [
        {"channel": "bbo", "data": {"coin": coin, "time": 1, "bbo": [level, dict(level)]}},
        {"channel": "activeAssetCtx", "data": {"coin": coin, "ctx": ctx}},
        {"channel": "userFills", "data": {"user": h.user, "fills": [_fill(coin, 4242)]}},
        {"channel": "user", "data": {"fills": [_fill(coin, 4243)]}},
        {"channel": "user", "data": {"nonUserCancel": [{"coin": coin, "oid": 4242}]}},
        {
            "channel": "orderUpdates",
            "data": [{"order": order, "status": "open", "statusTimestamp": 1}],
        },
        {"channel": "error", "data": "too many pending post requests id=1"},
    ]


def _leaves(value, path=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    else:
        yield path


def _with(value, path, new):
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: _with(v, rest, new) if k == head else v for k, v in value.items()}
    return [_with(v, rest, new) if i == head else v for i, v in enumerate(value)]


@given(st.data())
def test_garbage_in_any_field_never_raises_inside_the_dispatcher(data) -> None:
    """Frames of every channel the bot reads, with any field replaced by garbage: each is
    either refused at decode or is a well-formed frame; the dispatcher never fails handling
    one (an internal error would trip the HardStop)."""
    h = Harness()
    h.bring_up()
    templates = _templates(h)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        frame = data.draw(st.sampled_from(templates))
        path = data.draw(st.sampled_from(list(_leaves(frame))))
        frame = _with(frame, path, data.draw(st.sampled_from(_NASTY) | st.text(max_size=6)))
        h.frame(json.dumps(frame))
        h.tick(100)
    assert h.d.counters["internal_errors"] == 0


# Malformed, not merely inconsistent: a well-formed total larger than the order is a question
# for the order's machine, not for the decoder.
_malformed_text = st.text(max_size=6).filter(lambda t: not re.fullmatch(r"-?[0-9.]+", t))


def _order_answer(oid: int, cloid: str) -> dict:
    statuses = [{"filled": {"totalSz": "0.5", "avgPx": "99.7", "oid": oid, "cloid": cloid}}]
    return {
        "type": "action",
        "payload": {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}},
    }


@given(st.data())
def test_a_garbage_answer_to_an_order_post_never_raises_inside_the_dispatcher(data) -> None:
    """The answer to an entry order with any field replaced by malformed garbage: the order
    ends up settled or unknown (to be reconciled), never an internal error."""
    h = Harness()
    h.bring_up()
    cloid = h.entry()
    (post,) = [p for p in h.d.wire.posts.pending() if p.kind == "order"]
    answer = _order_answer(9_000_001, cloid)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(list(_leaves(answer))))
        answer = _with(answer, path, data.draw(st.sampled_from(_NASTY) | _malformed_text))
    h.frame(json.dumps({"channel": "post", "data": {"id": post.post_id, "response": answer}}))
    h.tick(100)
    h.settle()
    h.tick(100)
    assert h.d.counters["internal_errors"] == 0
