"""Who a pending post belongs to. Every post the bot sends carries an owner object that handles
its answer and its failure, so the post book never decides by the text of a post's kind:

- `OrderPost`: the cloids of an order action; its statuses or its refusal reach their order
  machines, and a post that ended without an answer leaves them for reconciliation.
- `CancelPost`: one cancel action of a cancel-everything; answered or failed, it is done.
- `ScheduleCancelPost`: the dead man's switch; its acceptance or refusal goes to the switch.
- `SettingPost`: an account setting (updateLeverage); its refusal is the owner's to judge.
- `InfoQuery`: one info request with its continuation: the answer, once its checked schema
  accepts it, goes to `on_answer`; a refused, malformed, timed-out or lost one to `on_failure`.

A failure is `definite` when the exchange answered that it did not execute the post, and not
definite when the outcome is unknown (a timeout, a lost connection, a partial write).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from hip3.protocol import frames as F
from hip3.protocol.info_answers import BadAnswer, check_info_answer
from hip3.runtime.common import log

# (decoded answer, now ms) and (reason, now ms)
AnswerHandler = Callable[[Any, int], None]
FailureHandler = Callable[[str, int], None]


class PostOwner(Protocol):
    def answered(self, frame: Any, now: int) -> None: ...

    def failed(self, reason: str, now: int, *, definite: bool) -> None: ...


class OrderAnswers(Protocol):
    """What an order post's answer or failure is handed to (the order flow)."""

    def order_statuses(self, cloids: list[str], statuses: list) -> None: ...

    def orders_rejected(self, cloids: list[str], text: str) -> None: ...

    def orders_lost(self, cloids: list[str], reason: str) -> None: ...


class OrderPost:
    __slots__ = ("cloids", "flow")

    def __init__(self, cloids: list[str], flow: OrderAnswers) -> None:
        self.cloids = cloids
        self.flow = flow

    def answered(self, frame: Any, now: int) -> None:
        err = F.action_error(frame)
        if err is not None:
            self.flow.orders_rejected(self.cloids, err)
        else:
            self.flow.order_statuses(self.cloids, F.order_statuses(frame))

    def failed(self, reason: str, now: int, *, definite: bool) -> None:
        if definite:  # the exchange did not execute it
            self.flow.orders_rejected(self.cloids, reason)
        else:
            self.flow.orders_lost(self.cloids, reason)


class CancelPost:
    __slots__ = ("done",)

    def __init__(self, done: Callable[[CancelPost], None]) -> None:
        self.done = done

    def answered(self, frame: Any, now: int) -> None:
        self.done(self)

    def failed(self, reason: str, now: int, *, definite: bool) -> None:
        self.done(self)


class ScheduleCancelPost:
    __slots__ = ("accepted", "refused")

    def __init__(self, *, accepted: Callable[[], None], refused: Callable[[str], None]) -> None:
        self.accepted = accepted
        self.refused = refused

    def answered(self, frame: Any, now: int) -> None:
        err = F.action_error(frame)
        if err is None:
            self.accepted()
        else:
            self.refused(err)

    def failed(self, reason: str, now: int, *, definite: bool) -> None:
        pass  # the next interval schedules it again


class SettingPost:
    """An account setting (updateLeverage): its answer or refusal goes to `done` as the
    exchange's error text or None; a post that ended without an answer is asked again by its
    owner (`failed`)."""

    __slots__ = ("done", "lost")

    def __init__(
        self, done: Callable[[str | None, int], None], lost: Callable[[str, int], None]
    ) -> None:
        self.done = done
        self.lost = lost

    def answered(self, frame: Any, now: int) -> None:
        self.done(F.action_error(frame), now)

    def failed(self, reason: str, now: int, *, definite: bool) -> None:
        if definite:
            self.done(reason, now)
        else:
            self.lost(reason, now)


def _ignore_failure(reason: str, now: int) -> None:
    pass


class InfoQuery:
    """One info request: `key` names it (in logs, and to see whether it is already asked),
    `info_type` picks the checked schema its answer must pass."""

    __slots__ = ("epoch", "info_type", "key", "on_answer", "on_failure", "report_bad")

    def __init__(
        self,
        key: str,
        info_type: str,
        epoch: int,
        *,
        on_answer: AnswerHandler,
        on_failure: FailureHandler | None,
        report_bad: Callable[[InfoQuery, BadAnswer], None],
    ) -> None:
        self.key = key
        self.info_type = info_type
        self.epoch = epoch
        self.on_answer = on_answer
        self.on_failure = on_failure or _ignore_failure
        self.report_bad = report_bad

    def answered(self, frame: Any, now: int) -> None:
        err = F.action_error(frame)
        if err is not None:
            self.failed(err, now, definite=True)
            return
        data = check_info_answer(self.info_type, frame.data.response.payload.data)
        if isinstance(data, BadAnswer):
            # never adopted: the request fails as if the post had failed
            self.report_bad(self, data)
            self.on_failure(data.reason, now)
            return
        self.on_answer(data, now)

    def failed(self, reason: str, now: int, *, definite: bool) -> None:
        log.warning("info request %s failed: %s", self.key, reason)
        self.on_failure(reason, now)
