"""The simulator's exchange core behind one client connection whose frames are delivered on
demand: the same exchange the server runs, without a socket, for tests that must choose the
order in which a client sees things.

Every frame the real server would write is built here from the same pieces the server uses
(the request gateway for post answers, the subscription parser for acks, the core's events for
the user streams, its bbo and context views for market data) and waits in a *lane* until the
test delivers it. Lanes model what a websocket can and cannot reorder:

- one lane per post answer (`post:<id>`): answers of different requests are independent, and
  an info answer is not a barrier: a fill streamed after an answer may have been included in
  it, and one streamed before it may not;
- one lane per user stream (`orderUpdates`, `userFills`, `user`): its ack, then (userFills)
  the snapshot, then what the stream carries, in execution order;
- per market-data subscription, one lane for its ack and one for its data (data may come
  before the ack);
- `error` for the error channel, `pong` for pings.

A test may deliver the head of any lane, duplicate a frame, drop market data, answer posts
with the malformed shapes a client must survive, and cut the connection at any point: between
an order's execution and its answer, too (`disconnect(executed=n)` lets the exchange execute the
next n requests whose answers die with the socket). What was executed while the socket was cut
reaches the next connection the way it reaches a real client: in the userFills snapshot and in
the info answers.

The core is driven only through its public surface: `action`, `info`, the events it emits,
`set_oracle`, `replace_maker_quotes`, `fund`, `positions`, `open_orders`, `user_fills`,
`order_status`, `reject_next_orders`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import msgspec

from hip3.sim.events import BookChanged, CtxChanged, OrderUpdates, UserEvent, UserFills
from hip3.sim.requests import KINDS, RequestGateway, post_error
from hip3.sim.server import PARSE_ERROR, channel_frame, post_answer_frame
from hip3.sim.subscriptions import (
    CHANNEL_OF,
    InvalidSubscription,
    UnparsableSubscription,
    parse_subscription,
)

USER_STREAMS = ("orderUpdates", "userFills", "userEvents")

# How a post's answer can go wrong on the way (the request may or may not have executed).
ANSWER_FAULTS = (
    "lost",  # executed; the answer never comes (the client times out)
    "short",  # executed; the statuses array is shorter than the orders
    "unknown_status",  # executed; each status has a shape the client does not know
    "post_error",  # not executed; a post-level {"type": "error"} answer
    "error_channel",  # not executed; refused on the error channel naming the post id
)
NOT_EXECUTED = frozenset({"post_error", "error_channel"})


@dataclass
class Frame:
    """One frame the server has generated for the client and not yet delivered."""

    seq: int
    connection: int
    lane: str
    data: bytes
    post_id: int | None = None
    tids: tuple[int, ...] = ()

    @property
    def text(self) -> str:
        return self.data.decode()


@dataclass
class _Connection:
    number: int
    subs: dict[str, Any] = field(default_factory=dict)  # canonical key -> Subscription
    user_streams: dict[tuple[str, str], str] = field(default_factory=dict)  # (type, user)->lane
    md: dict[tuple[str, str], str] = field(default_factory=dict)  # (type, coin) -> data lane


class Delivery:
    """The exchange's side of one client connection at a time, frame by frame.

    Wire it like the server: build the exchange with `emit=delivery.on_event`, then
    `attach(exchange)`.
    """

    def __init__(self) -> None:
        self.exchange: Any = None
        self.gateway: RequestGateway | None = None
        self.connection: _Connection | None = None
        self.requests: list[dict[str, Any]] = []  # posts received, not yet executed
        self.frames: list[Frame] = []  # generated, not yet delivered, in generation order
        self.lost: list[Frame] = []  # undelivered when their connection died
        self.delivered_tids: set[int] = set()
        self.executed: dict[int, str] = {}  # post id -> what happened to it
        self._seq = itertools.count(1)
        self._dirty_books: set[str] = set()
        self._dirty_ctxs: set[str] = set()

    def attach(self, exchange: Any) -> None:
        self.exchange = exchange
        self.gateway = RequestGateway(exchange)

    # --- the connection -------------------------------------------------------------------

    def connect(self, number: int) -> None:
        if self.connection is not None:
            raise RuntimeError("a connection is already open; disconnect it first")
        self.connection = _Connection(number)

    def disconnect(self, executed: int = 0) -> None:
        """The socket dies. The exchange had already read the next `executed` requests and
        executes them (their answers die with the socket); the rest never reached it."""
        for _ in range(executed):
            if not self.requests:
                break
            self.execute_next("lost")
        self.requests.clear()
        self.lost.extend(self.frames)
        self.frames.clear()
        self._dirty_books.clear()
        self._dirty_ctxs.clear()
        self.connection = None

    @property
    def is_open(self) -> bool:
        return self.connection is not None

    def subscribed(self, kind: str, target: str) -> bool:
        c = self.connection
        if c is None:
            return False
        if kind in USER_STREAMS:
            return (kind, target) in c.user_streams
        return (kind, target) in c.md

    # --- what the client writes -----------------------------------------------------------

    def receive(self, data: str | bytes) -> None:
        """One text frame from the client."""
        c = self.connection
        if c is None:
            raise RuntimeError("the client wrote on a closed connection")
        message = msgspec.json.decode(data)
        method = message.get("method") if isinstance(message, dict) else None
        if method == "ping":
            self._add("pong", b'{"channel":"pong"}')
        elif method == "subscribe":
            self._subscribe(c, message.get("subscription"))
        elif method == "unsubscribe":
            self._unsubscribe(c, message.get("subscription"))
        elif method == "post":
            self.requests.append(message)
        else:
            self._add(
                "error", channel_frame("error", f"unexpected client frame: {message!r}"[:200])
            )

    def _subscribe(self, c: _Connection, raw: Any) -> None:
        ex = self.exchange
        try:
            sub = parse_subscription(raw, is_coin=ex.universe.is_listed, dexes=self._dexes())
        except UnparsableSubscription:
            text = msgspec.json.encode({"method": "subscribe", "subscription": raw}).decode()
            self._add("error", channel_frame("error", PARSE_ERROR + text))
            return
        except InvalidSubscription as exc:
            self._add("error", channel_frame("error", str(exc)))
            return
        if sub.key in c.subs:
            self._add("error", channel_frame("error", f"Already subscribed: {sub.key}"))
            return
        c.subs[sub.key] = sub
        ack = channel_frame(
            "subscriptionResponse", {"method": "subscribe", "subscription": sub.echo}
        )
        if sub.type in USER_STREAMS:
            lane = CHANNEL_OF[sub.type]
            c.user_streams[(sub.type, sub.target)] = lane
            self._add(lane, ack)
            if sub.type == "userFills":
                fills = ex.user_fills(sub.target)
                snapshot = {"isSnapshot": True, "user": sub.target, "fills": fills}
                self._add(lane, channel_frame("userFills", snapshot), tids=_tids(fills))
            return
        lane = f"{sub.type}:{sub.target}"
        c.md[(sub.type, sub.target)] = lane
        self._add("ack:" + lane, ack)
        if sub.type == "bbo":
            self._add(lane, channel_frame("bbo", ex.bbo(sub.target)))
        elif sub.type == "activeAssetCtx":
            self._add(lane, channel_frame("activeAssetCtx", ex.asset_ctx(sub.target)))

    def _unsubscribe(self, c: _Connection, raw: Any) -> None:
        """The subscription ends: nothing more is queued for it (what is already queued may
        still arrive, as on a socket), then the unsubscribe ack."""
        ex = self.exchange
        try:
            sub = parse_subscription(raw, is_coin=ex.universe.is_listed, dexes=self._dexes())
        except UnparsableSubscription:
            text = msgspec.json.encode({"method": "unsubscribe", "subscription": raw}).decode()
            self._add("error", channel_frame("error", PARSE_ERROR + text))
            return
        except InvalidSubscription as exc:
            self._add("error", channel_frame("error", str(exc)))
            return
        if c.subs.pop(sub.key, None) is None:
            self._add("error", channel_frame("error", f"Already unsubscribed: {sub.key}"))
            return
        ack = channel_frame(
            "subscriptionResponse", {"method": "unsubscribe", "subscription": sub.echo}
        )
        if sub.type in USER_STREAMS:
            self._add(c.user_streams.pop((sub.type, sub.target)), ack)
            return
        lane = c.md.pop((sub.type, sub.target))
        self._add("ack:" + lane, ack)

    def _dexes(self) -> list[str]:
        return [d.name for d in self.exchange.universe.dexes]

    # --- the exchange executes ------------------------------------------------------------

    def execute_next(self, fault: str | None = None) -> int | None:
        """Execute the oldest request and queue its answer (changed by `fault`, one of
        ANSWER_FAULTS); returns its post id."""
        if not self.requests:
            return None
        message = self.requests.pop(0)
        post_id = message["id"]
        request = message.get("request") or {}
        kind, payload = request.get("type"), request.get("payload")
        self.executed[post_id] = fault or "answered"
        if fault == "error_channel":
            self._add(
                "error", channel_frame("error", f"too many pending post requests id={post_id}")
            )
            return post_id
        if fault == "post_error":
            answer = post_error("502 Bad Gateway: the request could not be processed")
            self._add(f"post:{post_id}", post_answer_frame(post_id, answer), post_id=post_id)
            return post_id
        if kind not in KINDS or not isinstance(payload, dict):
            answer = post_error(f"request type must be 'info' or 'action', got {kind!r}")
        else:
            assert self.gateway is not None, "attach an exchange first"
            answer = self.gateway.answer(kind, payload).ws
        self.publish_market_data()  # what the request changed goes out with its answer
        if fault == "lost":
            return post_id
        answer = _mangle(answer, fault)
        tids: tuple[int, ...] = ()
        if kind == "info" and isinstance(payload, dict) and payload.get("type") == "userFills":
            tids = _tids(answer.get("payload", {}).get("data") or [])
        self._add(f"post:{post_id}", post_answer_frame(post_id, answer), post_id=post_id, tids=tids)
        return post_id

    # --- events from the core -------------------------------------------------------------

    def on_event(self, event: object) -> None:
        """The exchange's `emit` sink: user streams are queued at once, in execution order;
        book and context changes are published by `publish_market_data`."""
        c = self.connection
        if isinstance(event, BookChanged):
            self._dirty_books.add(event.coin)
        elif isinstance(event, CtxChanged):
            self._dirty_ctxs.add(event.coin)
        elif c is None:
            return
        elif isinstance(event, OrderUpdates):
            lane = c.user_streams.get(("orderUpdates", event.user.lower()))
            if lane is not None:
                self._add(lane, channel_frame("orderUpdates", event.orders))
        elif isinstance(event, UserFills):
            user = event.user.lower()
            lane = c.user_streams.get(("userFills", user))
            if lane is not None:
                data = {"user": user, "fills": event.fills}
                self._add(lane, channel_frame("userFills", data), tids=_tids(event.fills))
        elif isinstance(event, UserEvent):
            lane = c.user_streams.get(("userEvents", event.user.lower()))
            if lane is not None:
                tids = _tids(event.event.get("fills") or [])
                self._add(lane, channel_frame("user", event.event), tids=tids)

    def publish_market_data(self) -> None:
        """Queue a bbo and a context frame for every changed, subscribed coin."""
        books, self._dirty_books = self._dirty_books, set()
        ctxs, self._dirty_ctxs = self._dirty_ctxs, set()
        c = self.connection
        if c is None:
            return
        for coin in sorted(books):
            lane = c.md.get(("bbo", coin))
            if lane is not None:
                self._add(lane, channel_frame("bbo", self.exchange.bbo(coin)))
        for coin in sorted(ctxs):
            lane = c.md.get(("activeAssetCtx", coin))
            if lane is not None:
                self._add(lane, channel_frame("activeAssetCtx", self.exchange.asset_ctx(coin)))

    # --- delivery -------------------------------------------------------------------------

    def _add(
        self, lane: str, data: bytes, *, post_id: int | None = None, tids: tuple[int, ...] = ()
    ) -> None:
        number = self.connection.number if self.connection is not None else 0
        self.frames.append(Frame(next(self._seq), number, lane, data, post_id, tids))

    def deliverable(self) -> list[int]:
        """Indices (into `frames`) of the frames a socket could deliver next: each lane's head."""
        heads: list[int] = []
        seen: set[str] = set()
        for i, f in enumerate(self.frames):
            if f.lane not in seen:
                seen.add(f.lane)
                heads.append(i)
        return heads

    def take(self, index: int) -> Frame:
        """Deliver frame `index` (a lane head): it leaves the queue."""
        if index not in self.deliverable():
            raise ValueError(f"frame {index} is not at the head of its lane")
        f = self.frames.pop(index)
        self.delivered_tids.update(f.tids)
        return f

    def drop(self, index: int) -> Frame:
        """Lose frame `index` on the way (only market data can be lost without a cut: it is
        a view, the next update replaces it)."""
        f = self.frames[index]
        if not f.lane.startswith(("bbo:", "activeAssetCtx:")):
            raise ValueError(f"only market data may be dropped on a live connection, not {f.lane}")
        return self.frames.pop(index)

    def lanes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.frames:
            out[f.lane] = out.get(f.lane, 0) + 1
        return out


def _tids(fills: list[dict[str, Any]]) -> tuple[int, ...]:
    return tuple(f["tid"] for f in fills if isinstance(f, dict) and "tid" in f)


def _mangle(answer: dict[str, Any], fault: str | None) -> dict[str, Any]:
    """An executed order's answer in a shape a client must survive."""
    if fault not in ("short", "unknown_status"):
        return answer
    payload = answer.get("payload")
    if not isinstance(payload, dict) or payload.get("status") != "ok":
        return answer
    response = payload.get("response")
    data = response.get("data") if isinstance(response, dict) else None
    statuses = data.get("statuses") if isinstance(data, dict) else None
    if not isinstance(statuses, list):
        return answer
    if fault == "short":
        statuses = statuses[:-1]
    else:
        statuses = [{"mystery": {"code": 7}} for _ in statuses]
    return {
        **answer,
        "payload": {**payload, "response": {**response, "data": {**data, "statuses": statuses}}},
    }


__all__ = ["ANSWER_FAULTS", "NOT_EXECUTED", "USER_STREAMS", "Delivery", "Frame"]
