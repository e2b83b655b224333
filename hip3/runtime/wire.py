"""Everything the bot writes goes through here: one budget, one post book, one writer.

Subscribe, ping and post share the exchange's 2000-messages-per-minute budget; posts also
count against the 100-in-flight limit and get a correlation id and a deadline. A message the
budget refuses is not sent and the caller is told (it returns None) — nothing queues silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hip3.protocol import frames
from hip3.runtime.post_owners import PostOwner
from hip3.transport.limits import InflightLimit, TokenBucket
from hip3.transport.posts import PendingPost, PostBook

log = logging.getLogger(__name__)


class Wire:
    def __init__(
        self,
        transport: Any,
        *,
        signer: Any | None,
        nonces: Any | None,
        mainnet: bool,
        messages_per_minute: int,
        max_inflight_posts: int,
        post_timeout_ms: int,
        now_ms: Callable[[], int],
        is_open: Callable[[], bool] = lambda: True,
    ) -> None:
        self.transport = transport
        # Whether the epoch's connection is open: after a loss or a timeout the socket may not
        # be closed yet, but nothing may be written to an epoch that has ended.
        self.is_open = is_open
        self.signer = signer
        self.nonces = nonces
        self.mainnet = mainnet
        self._now_ms = now_ms
        self.bucket = TokenBucket(messages_per_minute, 60.0, now_ms())
        self.posts = PostBook(InflightLimit(max_inflight_posts), post_timeout_ms)
        self.epoch = 0
        self.sent = 0
        self.actions_sent = 0
        self.refused: dict[str, int] = {}
        # False until the exchange confirmed the key may trade the account (AccountCheck):
        # before that no action is signed and sent, not even a cancel.
        self.signer_verified = True

    def _refuse(self, what: str) -> None:
        self.refused[what] = self.refused.get(what, 0) + 1

    def send_plain(self, data: bytes | str, what: str) -> bool:
        if not self.is_open():
            self._refuse(f"{what}:closed")
            return False
        if not self.bucket.try_take(self._now_ms()):
            self._refuse(f"{what}:rate")
            return False
        self.transport.send(data)
        self.sent += 1
        return True

    def subscribe(self, subscription: dict) -> bool:
        return self.send_plain(frames.encode_subscribe(subscription), "subscribe")

    def unsubscribe(self, subscription: dict) -> bool:
        return self.send_plain(frames.encode_unsubscribe(subscription), "unsubscribe")

    def ping(self) -> bool:
        return self.send_plain(frames.encode_ping(), "ping")

    def can_post(self) -> bool:
        return (
            self.is_open() and self.posts.can_send() and self.bucket.available(self._now_ms()) >= 1
        )

    def _admit(self, kind: str, now: int) -> bool:
        """A post may go out: an open connection, a free inflight slot and a message token
        (taken here)."""
        if not self.is_open():
            self._refuse(f"{kind}:closed")
            return False
        if not self.posts.can_send():
            self._refuse(f"{kind}:inflight")
            return False
        if not self.bucket.try_take(now):
            self._refuse(f"{kind}:rate")
            return False
        return True

    def post_info(self, payload: dict, *, kind: str, owner: PostOwner) -> PendingPost | None:
        now = self._now_ms()
        if not self._admit(kind, now):
            return None
        pid = self.posts.new_id()
        p = self.posts.register(pid, epoch=self.epoch, kind=kind, owner=owner, now_ms=now)
        self.transport.send(frames.encode_post_info(pid, payload), pid)
        self.sent += 1
        return p

    def post_action(self, action: dict, *, kind: str, owner: PostOwner) -> PendingPost | None:
        """Sign and send one action; the nonce is taken only when the budget allows the send.
        `owner` handles the answer and the failure (`kind` is only a label, for metrics and
        the refusal counts)."""
        now = self._now_ms()
        if self.signer is None or self.nonces is None:
            raise RuntimeError("no signing key configured: cannot send actions (observation mode?)")
        if not self.signer_verified:
            self._refuse(f"{kind}:unverified")
            return None
        if not self._admit(kind, now):
            return None
        nonce = self.nonces.next()
        signature = self.signer.sign_l1(action, nonce, mainnet=self.mainnet)
        pid = self.posts.new_id()
        data = frames.encode_post_action(pid, action=action, nonce=nonce, signature=signature)
        self.transport.send(data, pid)
        self.sent += 1
        self.actions_sent += 1
        # registered after the write is queued: nothing on the critical path waits for bookkeeping
        return self.posts.register(
            pid, epoch=self.epoch, kind=kind, owner=owner, now_ms=now, meta={"nonce": nonce}
        )
