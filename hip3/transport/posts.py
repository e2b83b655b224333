"""Correlates `post` requests with their responses, per epoch, with deadlines.

A post has exactly one end: a response, an error-channel failure naming its id, a timeout,
or the loss of its connection. The last two are *unknown* outcomes — the action may have been
committed — and the owner must reconcile rather than resend.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from hip3.transport.limits import InflightLimit

# Post ids are ours, small and non-negative; a longer digit run names no post of ours (and
# int() of thousands of digits would raise instead of answering).
_ID_IN_ERROR = re.compile(r"\bid=([0-9]{1,18})\b")

# A deadline after every real one: nothing is pending.
_NEVER = float("inf")


def post_id_in_error(text: str) -> int | None:
    """The post id an error-channel text names, e.g. 'too many pending post requests id=12'."""
    m = _ID_IN_ERROR.search(text)
    return int(m.group(1)) if m else None


@dataclass(slots=True)
class PendingPost:
    post_id: int
    epoch: int
    kind: str  # "order", "cancel", "flatten", "info:<type>", "schedule_cancel", ...
    owner: Any  # what the response belongs to (cloids, a reconciliation part, ...)
    sent_ms: int
    deadline_ms: int
    meta: dict = field(default_factory=dict)
    sent_ns: int = field(default_factory=time.perf_counter_ns)  # for latency, not deadlines


class PostBook:
    """Pending posts of the current connection."""

    def __init__(self, inflight: InflightLimit, timeout_ms: int) -> None:
        self._pending: dict[int, PendingPost] = {}
        self._next_id = 1
        self.inflight = inflight
        self.timeout_ms = timeout_ms
        self.timeouts = 0
        # No pending post's deadline is before this (the earliest deadline, or earlier when
        # that post was answered since): `expired`, asked on every timer tick, is one
        # comparison until then instead of a pass over every pending post.
        self._no_deadline_before_ms = _NEVER

    def __len__(self) -> int:
        return len(self._pending)

    def new_id(self) -> int:
        pid = self._next_id
        self._next_id += 1
        return pid

    def can_send(self) -> bool:
        return self.inflight.can_send()

    def register(
        self,
        post_id: int,
        *,
        epoch: int,
        kind: str,
        owner: Any,
        now_ms: int,
        meta: dict | None = None,
    ) -> PendingPost:
        if not self.inflight.acquire():
            raise OverflowError(f"inflight post limit {self.inflight.limit} reached")
        p = PendingPost(post_id, epoch, kind, owner, now_ms, now_ms + self.timeout_ms, meta or {})
        self._pending[post_id] = p
        if p.deadline_ms < self._no_deadline_before_ms:
            self._no_deadline_before_ms = p.deadline_ms
        return p

    def resolve(self, post_id: int) -> PendingPost | None:
        """The response (or an id-bearing error) arrived; None if it is not ours (late or foreign)."""
        p = self._pending.pop(post_id, None)
        if p is not None:
            self.inflight.release()
        return p

    def expired(self, now_ms: int) -> list[PendingPost]:
        """The posts whose deadline has come (taken off the book), in the order they were
        sent."""
        if now_ms < self._no_deadline_before_ms:
            return []
        out = [p for p in self._pending.values() if p.deadline_ms <= now_ms]
        for p in out:
            del self._pending[p.post_id]
            self.inflight.release()
        self.timeouts += len(out)
        self._no_deadline_before_ms = min(
            (p.deadline_ms for p in self._pending.values()), default=_NEVER
        )
        return out

    def drop_all(self) -> list[PendingPost]:
        """The connection is gone: every pending post has an unknown outcome."""
        out = list(self._pending.values())
        self._pending.clear()
        self._no_deadline_before_ms = _NEVER
        self.inflight.reset()
        return out

    def pending(self) -> list[PendingPost]:
        return list(self._pending.values())
