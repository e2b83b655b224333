"""A reconciliation request whose answer is always refused is asked again after a bounded
backoff, never at once: an answer that can never pass its schema must not turn into a flood of
requests that spends the exchange's message budget."""

from __future__ import annotations

import json
from itertools import pairwise

from hip3.runtime.reconciliation import INFO_RETRY_MAX_MS, INFO_RETRY_MIN_MS

from .fakes import Harness

GARBAGE_FEES = {"type": "info", "payload": {"type": "userFees", "data": {"userCrossRate": "NaN"}}}


def _reconciling() -> Harness:
    h = Harness()
    h.start()
    h.open_socket()
    while h.acks():
        h.ack(0)
    assert h.d.conn.state == "reconciling"
    return h


def _pending_fees(h: Harness) -> list:
    return [p for p in h.d.wire.posts.pending() if p.kind == "info:fees"]


def _answer_garbage(h: Harness, post_id: int) -> None:
    h.frame(json.dumps({"channel": "post", "data": {"id": post_id, "response": GARBAGE_FEES}}))


def test_an_always_refused_answer_is_asked_again_with_a_bounded_backoff() -> None:
    h = _reconciling()
    asked_at: list[int] = []
    # 14 s of 50 ms ticks (inside the handshake deadline), every fees question answered with
    # garbage as soon as it is seen; at most 100 answers per tick, so the unfixed code (which
    # asks again at once) ends instead of spinning.
    for _ in range(280):
        for _answered in range(100):
            pending = _pending_fees(h)
            if not pending:
                break
            asked_at.append(h.clock.now_ms())
            _answer_garbage(h, pending[0].post_id)
        h.tick(50)
    assert h.d.conn.state == "reconciling"  # never ready on garbage
    gaps = [b - a for a, b in pairwise(asked_at)]
    assert len(asked_at) >= 6, asked_at  # it keeps asking
    assert all(g >= INFO_RETRY_MIN_MS for g in gaps), gaps  # never at once
    assert gaps == sorted(gaps), gaps  # the delay grows ...
    assert max(gaps) <= INFO_RETRY_MAX_MS + 50, gaps  # ... up to its bound (one tick late)
    # every ask after the first is a counted retry (the unanswered requests beside it time
    # out and are retried too)
    assert h.d.counters["info_retries"] >= len(asked_at) - 1
    assert h.d.decode_errors["bad_answer"] == len(asked_at)
    assert h.d.hardstop.is_armed and h.d.counters["internal_errors"] == 0


def test_a_good_answer_after_refused_ones_completes_the_epoch() -> None:
    h = _reconciling()
    for failures in range(3):
        (post,) = _pending_fees(h)
        _answer_garbage(h, post.post_id)
        assert _pending_fees(h) == []  # not asked at once
        h.tick(INFO_RETRY_MIN_MS << failures)  # 250, 500, 1000 ms: before the post timeout
    assert len(_pending_fees(h)) == 1
    h.bring_up()  # the exchange answers the question for real
    assert h.d.ready.trading()
    assert h.d.counters["info_retries"] == 3
    assert h.bot_positions() == h.true_positions()


def test_a_retry_is_not_sent_into_the_next_epoch() -> None:
    """A retry waiting on its backoff belongs to its epoch's plan: a new epoch asks afresh."""
    h = _reconciling()
    (post,) = _pending_fees(h)
    _answer_garbage(h, post.post_id)
    h.drop_socket()
    h.tick(INFO_RETRY_MAX_MS)
    assert h.d.conn.state in ("backoff", "connecting")
    assert h.d.counters["info_retries"] == 0
    h.bring_up()
    assert h.d.ready.trading()
    assert h.d.counters["info_retries"] == 0


def test_a_request_the_wire_refuses_at_send_is_asked_again_after_the_backoff() -> None:
    """A refusal at send time (no outbound room, no message token) is a failure like any
    other: the part is asked again after the backoff, not left to the handshake deadline."""
    h = _reconciling()
    (post,) = _pending_fees(h)
    _answer_garbage(h, post.post_id)
    real_post_info = h.d.wire.post_info
    refused: list[int] = []

    def refuse_the_next_fees_question(payload, *, kind, owner):
        if kind == "info:fees" and not refused:
            refused.append(h.clock.now_ms())
            return None  # what the wire answers when it has no room
        return real_post_info(payload, kind=kind, owner=owner)

    h.d.wire.post_info = refuse_the_next_fees_question
    h.tick(INFO_RETRY_MIN_MS)  # the retry is due, and the wire refuses it
    assert refused and _pending_fees(h) == []
    for _ in range(40):  # 2 s, far inside the 15 s handshake deadline
        h.tick(50)
        if _pending_fees(h):
            break
    assert len(_pending_fees(h)) == 1
    assert h.d.counters["info_refused"] == 1
    h.bring_up()
    assert h.d.ready.trading()
    assert h.bot_positions() == h.true_positions()
