"""Post correlation: which post an error-channel text names, and when a post times out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.transport.limits import InflightLimit
from hip3.transport.posts import PostBook, post_id_in_error


@pytest.mark.parametrize(
    ("text", "post_id"),
    [
        ("too many pending post requests id=1234", 1234),
        ("id=7 rejected", 7),
        ("no id here", None),
        ("uuid=12", None),  # not the word id
        ("id=" + "9" * 5000, None),  # no post of ours; int() of it would raise
        ("id=" + "9" * 19, None),
        ("id=123456789012345678", 123456789012345678),
    ],
)
def test_the_post_id_an_error_text_names(text: str, post_id: int | None) -> None:
    assert post_id_in_error(text) == post_id


# --- deadlines: `expired` skips its pass over the pending posts until the earliest deadline
# can have come; it must still hand over every post on the first call at or after its deadline

# One timer tick: posts sent (their timeouts, on the tick grid so that deadlines fall on ticks
# exactly), a post answered (by send order), the connection dropped (rarely), then time passes
# (a whole tick, or just short of or past one) and `expired` is asked.
_steps = st.lists(
    st.tuples(
        st.lists(st.sampled_from([0, 100, 200, 300, 1_000]), max_size=2),
        st.none() | st.integers(0, 40),
        st.sampled_from([False] * 9 + [True]),
        st.sampled_from([0, 1, 99, 100, 100, 100, 200]),
    ),
    max_size=40,
)


@given(_steps)
def test_a_post_expires_on_the_first_call_at_or_after_its_deadline(steps: list) -> None:
    book = PostBook(InflightLimit(1_000), timeout_ms=1_000)
    now = 0
    pending: dict[int, int] = {}  # the reference: post id -> deadline, in send order
    sent: list[int] = []
    for timeouts, answer, drop, advance in steps:
        for timeout in timeouts:
            book.timeout_ms = timeout  # deadlines need not come in the order posts were sent
            pid = book.new_id()
            book.register(pid, epoch=1, kind="info", owner=None, now_ms=now)
            pending[pid] = now + timeout
            sent.append(pid)
        if answer is not None and sent:
            pid = sent[answer % len(sent)]
            assert (book.resolve(pid) is not None) == (pending.pop(pid, None) is not None)
        if drop:
            assert [p.post_id for p in book.drop_all()] == list(pending)
            pending.clear()
        now += advance
        due = [pid for pid, deadline in pending.items() if deadline <= now]
        assert [p.post_id for p in book.expired(now)] == due
        for pid in due:
            del pending[pid]
        assert len(book) == len(pending) == book.inflight.count
