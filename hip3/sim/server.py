"""The simulator's front: ws://HOST:PORT/ws spoken like the exchange, and HTTP beside it.

Every accepted connection starts at `hip3.sim.http.FrontDoor`, which serves `POST /info` and
`POST /exchange` itself and hands a `GET /ws` over to a websocket connection.

Each connection is a `WsConnection` (websockets' sans-I/O protocol on a plain asyncio
transport): a client frame is handled inside the transport's read callback, with no reader
task and no queue in between. Everything the server sends goes out through
`ClientSession.send`, which applies the injected faults (delay, duplicate, drop).
Market data is fanned out cheaply: a change is encoded once and the same bytes are written
to every subscriber. Book and context changes are coalesced per event-loop turn (the
exchange's "block"), so a burst of fills publishes one book, not one per fill.

Nothing here knows how matching works: the exchange core reports changes as events
(`hip3.sim.events`) and answers info/action payloads; the server only routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import msgspec
from websockets.http11 import SERVER, Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from hip3.sim.events import (
    AccountChanged,
    BookChanged,
    CtxChanged,
    LedgerUpdate,
    Notification,
    OrderUpdates,
    Trades,
    UserEvent,
    UserFills,
)
from hip3.sim.faults import FaultController
from hip3.sim.http import FrontDoor
from hip3.sim.ip_limits import DEFAULT_WEIGHT_PER_WINDOW, DEFAULT_WINDOW_S, IpLimiter
from hip3.sim.market import aggregate_book
from hip3.sim.requests import KINDS, Answer, RequestGateway, post_error
from hip3.sim.state_feeds import STATE_TYPES, StateFeeds
from hip3.sim.subscriptions import (
    CHANNEL_OF,
    REFUSED_TYPES,
    InvalidSubscription,
    Subscription,
    UnparsableSubscription,
    encode_compact,
    parse_subscription,
)
from hip3.transport.wsconn import WsConnection

log = logging.getLogger(__name__)

WS_PATH = "/ws"
PARSE_ERROR = "Error parsing JSON into valid websocket request: "
_PONG = b'{"channel":"pong"}'
_encode = msgspec.json.encode
_decode = msgspec.json.decode
_OPEN = State.OPEN
# A TCP connection that has not completed the opening handshake by then is cut (as
# websockets' own server does with its open_timeout).
OPEN_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ConnectionLimits:
    """Per-connection rules of the exchange (its websocket docs: heartbeat, limits); small values
    in tests."""

    idle_timeout_s: float = 60.0  # close a connection that has sent nothing for this long
    messages_per_window: int = 2000
    window_s: float = 60.0
    max_inflight_posts: int = 100
    max_frame_bytes: int = 1 << 20  # larger client frames get an error frame
    # Beyond this the websocket layer itself closes the connection (1009): a hard memory cap.
    max_transport_bytes: int = 16 << 20
    # A client that lets this much pile up unread is dropped rather than buffered forever.
    max_write_buffer_bytes: int = 64 << 20
    # HTTP (/info, /exchange): request weight per client IP per window (429 beyond), and how
    # long a keep-alive connection may sit without a request.
    http_weight_per_window: int = DEFAULT_WEIGHT_PER_WINDOW
    http_window_s: float = DEFAULT_WINDOW_S
    http_idle_timeout_s: float = 60.0


def channel_frame(channel: str, data: Any) -> bytes:
    return _encode({"channel": channel, "data": data})


def _error_frame(text: str) -> bytes:
    return channel_frame("error", text)


def _text_header(size: int) -> bytes:
    """RFC 6455 header of one unmasked, final text frame carrying `size` payload bytes."""
    if size < 126:
        return bytes((0x81, size))
    if size < 1 << 16:
        return b"\x81\x7e" + size.to_bytes(2, "big")
    return b"\x81\x7f" + size.to_bytes(8, "big")


class ClientSession:
    """One client connection: its subscriptions, limits and outbound fault pipeline."""

    def __init__(self, server: SimServer) -> None:
        self.server = server
        self.conn: WsConnection = None  # type: ignore[assignment]  # set by the factory
        self.subs: dict[str, Subscription] = {}
        self.inflight_posts = 0
        self.frames_sent = 0
        self.closed = False
        self._recent: deque[float] = deque()
        self._delayed: deque[tuple[float, bytes]] = deque()
        self._delay_timer: asyncio.TimerHandle | None = None
        # Frames written while the server is corked; they leave in one transport write.
        self._held: list[bytes] = []
        self.last_read = 0.0  # loop time of the last frame read from the client
        self.idle_timer: asyncio.TimerHandle | None = None
        self.open_timer: asyncio.TimerHandle | None = None

    # --- outbound -----------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Queue one frame for the client, through the delay fault if one is active."""
        if self.closed:
            return
        delay_ms = self.server.faults.delay_ms
        if delay_ms <= 0 and not self._delayed:
            self._deliver(data)
            return
        loop = self.server.loop
        # Order is kept: frames wait in one FIFO, drained by a single timer.
        self._delayed.append((loop.time() + delay_ms / 1000, data))
        if self._delay_timer is None:
            self._delay_timer = loop.call_at(self._delayed[0][0], self._drain_delayed)

    def _drain_delayed(self) -> None:
        self._delay_timer = None
        loop = self.server.loop
        now = loop.time()
        while self._delayed and self._delayed[0][0] <= now and not self.closed:
            self._deliver(self._delayed.popleft()[1])
        if self._delayed and not self.closed:
            self._delay_timer = loop.call_at(self._delayed[0][0], self._drain_delayed)

    def _deliver(self, data: bytes) -> None:
        faults = self.server.faults
        self._write(data)
        if faults.duplicate_frame():
            self._write(data)
        self.frames_sent += 1
        if faults.drop_after is not None and self.frames_sent >= faults.drop_after:
            faults.drops += 1
            self.drop()

    def _write(self, data: bytes) -> None:
        if self.closed:
            return
        corked = self.server._corked
        if corked is not None:
            if not self._held:
                corked.append(self)
            self._held.append(data)
            return
        if not self._write_now((data,)):
            self.drop()

    def release(self) -> None:
        """Write the frames held while corked, in order, in one go."""
        if not self._held:
            return
        held, self._held = self._held, []
        if not self.closed and not self._write_now(held):
            self.drop()

    def _write_now(self, frames: list[bytes] | tuple[bytes, ...]) -> bool:
        """Put `frames` on the socket; False when the connection must be dropped."""
        conn = self.conn
        transport = conn.transport
        if conn.protocol.state is not _OPEN or transport is None:
            return True  # closing: the protocol finishes the close handshake
        try:
            if conn.protocol.writes:  # anything the library queued (a pong) goes first
                conn.flush()
            # A server frame is unmasked, so without extensions (compression is off) its bytes
            # are the same for every subscriber and are framed here, skipping the protocol.
            if conn.can_write_raw:
                parts: list[bytes] = []
                for data in frames:
                    parts.append(_text_header(len(data)))
                    parts.append(data)
                conn.write_raw(b"".join(parts))
            else:
                for data in frames:
                    conn.send_text(data)
        except Exception as exc:  # a dying socket must not break the fan-out loop
            log.debug("write failed, dropping connection: %s", exc)
            return False
        if transport.get_write_buffer_size() > self.server.limits.max_write_buffer_bytes:
            log.warning("client %s is not reading; dropping it", conn.remote_address)
            return False
        return True

    def drop(self) -> None:
        """Cut the connection without a close frame, as a network failure would."""
        if self.closed:
            return
        if self._held:  # frames already sent before the cut reach the socket, as unheld ones do
            held, self._held = self._held, []
            self._write_now(held)
        self.closed = True
        if self._delay_timer is not None:
            self._delay_timer.cancel()
            self._delay_timer = None
        self._delayed.clear()
        self.server._forget(self)
        self.conn.abort()

    # --- connection callbacks (inside the transport's callbacks) -------------------------
    def on_open(self, conn: WsConnection) -> None:
        server = self.server
        if self.open_timer is not None:
            self.open_timer.cancel()
            self.open_timer = None
        server.sessions.add(self)
        loop = server.loop
        # One timer per connection, re-armed lazily, instead of a timeout per message.
        self.last_read = loop.time()
        self.idle_timer = loop.call_later(server.limits.idle_timeout_s, server._check_idle, self)

    def on_message(self, payload: bytes, is_text: bool) -> None:
        if self.closed:
            return  # frames read in the same chunk as the one that closed us
        server = self.server
        self.last_read = server.loop.time()
        if is_text and not payload.isascii():
            try:
                payload.decode()
            except UnicodeDecodeError as exc:
                server._fail(self, 1007, f"{exc.reason} at position {exc.start}")
                return
        server._cork_until_next_turn()
        try:
            server._on_message(self, payload)
        except Exception:  # a bug in one request must not end the connection
            log.exception("error while handling a client frame")
            self.send(_error_frame("Internal error while handling the request"))

    def on_closed(self, reason: str) -> None:
        for timer in (self.idle_timer, self.open_timer):
            if timer is not None:
                timer.cancel()
        self.idle_timer = self.open_timer = None
        self.closed = True
        self._held.clear()
        self._delayed.clear()
        if self._delay_timer is not None:
            self._delay_timer.cancel()
            self._delay_timer = None
        server = self.server
        server._conns.discard(self.conn)
        server._forget(self)

    # --- inbound ------------------------------------------------------------------------
    def over_rate_limit(self, now: float) -> bool:
        limits = self.server.limits
        recent = self._recent
        while recent and now - recent[0] >= limits.window_s:
            recent.popleft()
        if len(recent) >= limits.messages_per_window:
            return True
        recent.append(now)
        return False


class SimServer:
    """Websocket front of an exchange core. Create, `attach(exchange)`, then `await start()`."""

    def __init__(
        self,
        *,
        limits: ConnectionLimits | None = None,
        faults: FaultController | None = None,
    ) -> None:
        self.limits = limits or ConnectionLimits()
        self.faults = faults or FaultController()
        self.exchange: Any = None
        self.gateway: RequestGateway = None  # type: ignore[assignment]  # set by attach
        self.sessions: set[ClientSession] = set()
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.host = ""
        self.port = 0
        self._server: asyncio.Server | None = None
        self._conns: set[WsConnection] = set()  # every TCP connection, handshaking ones too
        self.doors: set[FrontDoor] = set()  # connections read as HTTP (or not yet known)
        self.ip_limiter = IpLimiter(self.limits.http_weight_per_window, self.limits.http_window_s)
        self.open_timeout_s = OPEN_TIMEOUT_S
        # (type, target) -> sessions subscribed; l2Book adds its variant to the key
        self._routes: dict[tuple[Any, ...], set[ClientSession]] = {}
        self._book_variants: dict[str, set[tuple[Any, ...]]] = {}
        self._candle_intervals: dict[str, set[str]] = {}  # coin -> intervals subscribed
        self._states = StateFeeds()
        self._coins: set[str] = set()
        self._dexes: set[str] = set()
        self._dirty_books: set[str] = set()
        self._dirty_ctxs: set[str] = set()
        self._flush_scheduled = False
        self._last_bbo: dict[str, Any] = {}
        self._last_mids: dict[str, Any] = {}
        self.md_frames_written = 0
        # While not None, sessions hold their frames and list themselves here (see `_uncork`).
        self._corked: list[ClientSession] | None = None
        # Benchmark hook (bench/tick_to_post.py), off by default: called with each client frame
        # the moment it is read, before anything else, so latency is measured on our clock.
        self.on_client_frame: Callable[[bytes], None] | None = None

    # --- lifecycle ----------------------------------------------------------------------
    def attach(self, exchange: Any) -> None:
        self.exchange = exchange
        self.gateway = RequestGateway(exchange)
        universe = exchange.universe
        self._coins = {asset.coin for asset in universe.assets}
        self._dexes = {dex.name for dex in universe.dexes}

    def _is_listed(self, coin: str) -> bool:
        """A market a client may subscribe to (declared and listed; a listing adds one)."""
        return coin in self._coins and coin not in self.exchange.universe.unlisted

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        if self.exchange is None:
            raise RuntimeError("attach an exchange before starting the server")
        self.loop = asyncio.get_running_loop()
        self._server = await self.loop.create_server(self._accept, host, port)
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]
        return self.host, self.port

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}{WS_PATH}"

    @property
    def http_url(self) -> str:
        """The base URL of /info and /exchange (an SDK's `base_url`)."""
        return f"http://{self.host}:{self.port}"

    @property
    def http_idle_timeout_s(self) -> float:
        return self.limits.http_idle_timeout_s

    async def stop(self) -> None:
        if self._server is None:
            return
        for session in list(self.sessions):
            session.drop()
        self._server.close()  # stop listening
        for conn in list(self._conns):  # handshaking or closing ones
            conn.abort()
        for door in list(self.doors):  # HTTP, or not a whole request head yet
            door.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)
        self._server = None

    def subscribers(self, kind: str, coin: str) -> set[ClientSession]:
        """The sessions subscribed to the `kind` stream of `coin` (any l2Book variant)."""
        out: set[ClientSession] = set()
        for key, sessions in self._routes.items():
            if key[0] == kind and key[1] == coin:
                out |= sessions
        return out

    def drop_all(self) -> int:
        sessions = list(self.sessions)
        for session in sessions:
            session.drop()
        return len(sessions)

    def _cork_until_next_turn(self) -> None:
        """Hold every frame written until this event-loop turn ends: one socket write per
        client for all the answers to a burst of requests, instead of one per frame."""
        if self._corked is None:
            self._corked = []
            self.loop.call_soon(self._uncork)

    def _uncork(self) -> None:
        corked, self._corked = self._corked, None
        for session in corked or ():
            session.release()

    def _forget(self, session: ClientSession) -> None:
        self.sessions.discard(session)
        for sub in session.subs.values():
            self._unroute(session, sub)
        session.subs.clear()

    # --- connections --------------------------------------------------------------------
    def _accept(self) -> FrontDoor:
        """The protocol factory of the listening socket: one per accepted TCP connection.
        The front door reads the request head and serves HTTP or hands over to `/ws`."""
        return FrontDoor(self)

    def new_connection(self) -> WsConnection:
        """A websocket connection for a TCP connection whose request is `GET /ws`."""
        session = ClientSession(self)
        conn = WsConnection(
            # No extensions: per-message deflate would cost a compression per subscriber.
            # No protocol pings either: the exchange relies on client pings.
            ServerProtocol(max_size=self.limits.max_transport_bytes),
            on_message=session.on_message,
            on_open=session.on_open,
            on_closed=session.on_closed,
            on_request=_only_ws_path,
        )
        session.conn = conn
        self._conns.add(conn)
        session.open_timer = self.loop.call_later(OPEN_TIMEOUT_S, conn.abort)
        return conn

    def _check_idle(self, session: ClientSession) -> None:
        """Close a connection that has sent nothing for `idle_timeout_s` (1000, idle timeout)."""
        if session.closed:
            return
        due = session.last_read + self.limits.idle_timeout_s
        if self.loop.time() < due:
            session.idle_timer = self.loop.call_at(due, self._check_idle, session)
            return
        session.idle_timer = None
        session.closed = True
        self._forget(session)
        session.conn.close(1000, "idle timeout")

    def _fail(self, session: ClientSession, code: int, reason: str) -> None:
        """Close with `code` now, as the websocket layer does on a protocol violation."""
        session.closed = True
        self._forget(session)
        conn = session.conn
        if conn.protocol.state is _OPEN:
            conn.protocol.fail(code, reason)
            conn.flush()

    def _on_message(self, session: ClientSession, raw: bytes) -> None:
        hook = self.on_client_frame
        if hook is not None:
            hook(raw)
        if session.over_rate_limit(time.monotonic()):
            limit = self.limits.messages_per_window
            session.send(_error_frame(f"Cannot send more than {limit} messages per minute."))
            return
        size = len(raw)
        if size > self.limits.max_frame_bytes:
            session.send(
                _error_frame(
                    f"{PARSE_ERROR}frame of {size} bytes exceeds the limit of "
                    f"{self.limits.max_frame_bytes} bytes"
                )
            )
            return
        try:
            message = _decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            log.debug("client frame is not JSON: %s", exc)
            session.send(_echo_error(raw))
            return
        if not isinstance(message, dict):
            session.send(_echo_error(raw))
            return
        method = message.get("method")
        if method == "ping":
            if not self.faults.no_pong:
                session.send(_PONG)
        elif method in ("subscribe", "unsubscribe"):
            subscription = message.get("subscription")
            if isinstance(subscription, dict) and subscription.get("type") in REFUSED_TYPES:
                session.send(_echo_error(raw))
            elif method == "subscribe":
                self._subscribe(session, message, raw)
            else:
                self._unsubscribe(session, message, raw)
        elif method == "post":
            self._post(session, message)
        else:
            session.send(_echo_error(raw))

    # --- subscriptions ------------------------------------------------------------------
    def _parse_sub(
        self, session: ClientSession, message: dict[str, Any], raw: bytes
    ) -> Subscription | None:
        try:
            return parse_subscription(
                message.get("subscription"), is_coin=self._is_listed, dexes=self._dexes
            )
        except UnparsableSubscription:
            session.send(_echo_error(raw))
        except InvalidSubscription as exc:
            session.send(_error_frame(str(exc)))
        return None

    def _subscribe(self, session: ClientSession, message: dict[str, Any], raw: bytes) -> None:
        sub = self._parse_sub(session, message, raw)
        if sub is None:
            return
        key = sub.key
        if key in session.subs:
            session.send(_error_frame(f"Already subscribed: {key}"))
            return
        session.subs[key] = sub
        self._route(session, sub)
        ack = channel_frame(
            "subscriptionResponse", {"method": "subscribe", "subscription": sub.echo}
        )

        def send_ack() -> None:
            if session.subs.get(key) is not sub:
                return  # unsubscribed (or dropped) while the ack was held back
            session.send(ack)
            self._send_initial(session, sub)

        self._hold_back(send_ack, self.faults.park_ack, self.faults.delay_ack_ms)

    def _unsubscribe(self, session: ClientSession, message: dict[str, Any], raw: bytes) -> None:
        sub = self._parse_sub(session, message, raw)
        if sub is None:
            return
        existing = session.subs.pop(sub.key, None)
        if existing is None:
            session.send(_error_frame(f"Already unsubscribed: {sub.key}"))
            return
        self._unroute(session, existing)
        self.faults.unsubscribed(session, existing.type, existing.target)
        session.send(
            channel_frame(
                "subscriptionResponse", {"method": "unsubscribe", "subscription": sub.echo}
            )
        )

    def _hold_back(
        self, send: Callable[[], None], park: Callable[[Callable[[], None]], bool], delay_ms: int
    ) -> None:
        if park(send):
            return
        if delay_ms > 0:
            self.loop.call_later(delay_ms / 1000, send)
        else:
            send()

    def _send_initial(self, session: ClientSession, sub: Subscription) -> None:
        """What a fresh subscriber gets right after the ack (snapshot-style feeds)."""
        exchange = self.exchange
        kind = sub.type
        if self.faults.stalled(session, kind, sub.target):
            return
        if kind == "userFills":
            key = sub.key

            def send_snapshot() -> None:
                if session.subs.get(key) is not sub:
                    return
                fills = exchange.user_fills(sub.target)
                data = {"isSnapshot": True, "user": sub.target, "fills": fills}
                session.send(channel_frame("userFills", data))

            self._hold_back(send_snapshot, self.faults.park_snapshot, self.faults.delay_snapshot_ms)
        elif kind in ("userFundings", "userNonFundingLedgerUpdates"):
            self._send_history(session, sub)
        elif kind in STATE_TYPES:
            session.send(self._states.frame(exchange, _route_key(sub)))  # type: ignore[arg-type]
        elif kind == "bbo":
            session.send(channel_frame("bbo", exchange.bbo(sub.target)))
        elif kind == "l2Book":
            session.send(channel_frame("l2Book", self._book_view(sub.target, _variant(sub))))
        elif kind == "activeAssetCtx":
            session.send(channel_frame("activeAssetCtx", exchange.asset_ctx(sub.target)))
        elif kind == "allMids":
            session.send(channel_frame("allMids", {"mids": self._mids(sub.target)}))

    def _send_history(self, session: ClientSession, sub: Subscription) -> None:
        """The snapshot of a time-series user feed: everything kept, `isSnapshot: true`."""
        key = sub.key

        def send_snapshot() -> None:
            if session.subs.get(key) is not sub:
                return
            account = self.exchange.accounts.get(sub.target)
            if sub.type == "userFundings":
                items = list(account.fundings) if account is not None else []
                data = {"isSnapshot": True, "user": sub.target, "fundings": items}
            else:
                items = list(account.ledger_updates) if account is not None else []
                data = {"isSnapshot": True, "user": sub.target, "nonFundingLedgerUpdates": items}
            session.send(channel_frame(sub.type, data))

        self._hold_back(send_snapshot, self.faults.park_snapshot, self.faults.delay_snapshot_ms)

    def _route(self, session: ClientSession, sub: Subscription) -> None:
        key = _route_key(sub)
        self._routes.setdefault(key, set()).add(session)
        if sub.type == "l2Book":
            self._book_variants.setdefault(sub.target, set()).add(_variant(sub))
        elif sub.type == "candle":
            self._candle_intervals.setdefault(sub.target, set()).add(sub.detail)
        elif sub.type in STATE_TYPES:
            self._states.add(key)  # type: ignore[arg-type]

    def _unroute(self, session: ClientSession, sub: Subscription) -> None:
        key = _route_key(sub)
        subscribers = self._routes.get(key)
        if subscribers is not None:
            subscribers.discard(session)
            if not subscribers:
                del self._routes[key]
                if sub.type == "candle":
                    self._candle_intervals.get(sub.target, set()).discard(sub.detail)
                elif sub.type in STATE_TYPES:
                    self._states.remove(key)  # type: ignore[arg-type]

    # --- post requests ------------------------------------------------------------------
    def _post(self, session: ClientSession, message: dict[str, Any]) -> None:
        post_id = message.get("id")
        if not isinstance(post_id, int) or isinstance(post_id, bool) or post_id < 0:
            session.send(
                _error_frame(
                    f"{PARSE_ERROR}post needs a non-negative integer id, got {_show(post_id)}"
                )
            )
            return
        if session.inflight_posts >= self.limits.max_inflight_posts:
            session.send(_error_frame(f"too many pending post requests id={post_id}"))
            return
        request = message.get("request")
        if not isinstance(request, dict):
            session.send(
                post_answer_frame(
                    post_id, post_error(f"request must be an object, got {_show(request)}")
                )
            )
            return
        kind = request.get("type")
        payload = request.get("payload")
        if kind not in KINDS:
            text = f"request type must be 'info' or 'action', got {_show(kind)}"
            session.send(post_answer_frame(post_id, post_error(text)))
            return
        if not isinstance(payload, dict):
            text = f"request payload must be an object, got {_show(payload)}"
            session.send(post_answer_frame(post_id, post_error(text)))
            return
        session.inflight_posts += 1

        def reply(answer: Answer) -> None:
            frame = post_answer_frame(post_id, answer.ws)
            delay_ms = self.faults.delay_post_ms
            if delay_ms <= 0:
                session.inflight_posts -= 1
                session.send(frame)
                return

            def finish() -> None:
                session.inflight_posts -= 1
                session.send(frame)

            self.loop.call_later(delay_ms / 1000, finish)

        self.gateway.submit(kind, payload, reply)

    # --- events from the exchange core --------------------------------------------------
    def on_event(self, event: object) -> None:
        """The exchange's `emit` sink. Runs inside the exchange call; must be cheap.

        A user or trade event is encoded only when someone subscribes to it.
        """
        if isinstance(event, BookChanged):
            self._mark_dirty(self._dirty_books, event.coin)
        elif isinstance(event, CtxChanged):
            self._mark_dirty(self._dirty_ctxs, event.coin)
        elif isinstance(event, Trades):
            if event.trades:
                self._fan_out(("trades", event.coin), "trades", event.trades)
                if self._candle_intervals.get(event.coin):
                    self._publish_candles(event.coin)
        elif isinstance(event, OrderUpdates):
            self._fan_out(("orderUpdates", event.user.lower()), "orderUpdates", event.orders)
            self._user_changed(event.user)
        elif isinstance(event, UserFills):
            user = event.user.lower()
            self._fan_out(("userFills", user), "userFills", {"user": user, "fills": event.fills})
            self._user_changed(user)
        elif isinstance(event, UserEvent):
            user = event.user.lower()
            self._fan_out(("userEvents", user), "user", event.event)
            funding = event.event.get("funding")
            if funding is not None:
                data = {"user": user, "fundings": [funding]}
                self._fan_out(("userFundings", user), "userFundings", data)
                self._user_changed(user)
        elif isinstance(event, LedgerUpdate):
            user = event.user.lower()
            data = {"user": user, "nonFundingLedgerUpdates": [event.update]}
            self._fan_out(
                ("userNonFundingLedgerUpdates", user), "userNonFundingLedgerUpdates", data
            )
            self._user_changed(user)
        elif isinstance(event, AccountChanged):
            self._user_changed(event.user)
        elif isinstance(event, Notification):
            data = {"notification": event.text}
            self._fan_out(("notification", event.user.lower()), "notification", data)

    def _user_changed(self, user: str) -> None:
        if self._states.mark_user(user.lower()):
            self._schedule_flush()

    def _publish_candles(self, coin: str) -> None:
        candles = self.exchange.markets.candles
        now = self.exchange.now_ms()
        for interval in tuple(self._candle_intervals[coin]):
            candle = candles.current(coin, interval, now)
            if candle is not None:
                self._fan_out(("candle", coin, interval), "candle", candle)

    def _mark_dirty(self, dirty: set[str], coin: str) -> None:
        dirty.add(coin)
        if self._states:
            self._states.mark_all()  # marks move every position's value and margin
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and self.loop is not None:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Publish every book and context that changed since the last flush."""
        if self._corked is None:
            self._corked = []
        try:
            self._publish()
        finally:
            self._uncork()  # market data leaves now, after anything held before it

    def _publish(self) -> None:
        self._flush_scheduled = False
        books, self._dirty_books = self._dirty_books, set()
        ctxs, self._dirty_ctxs = self._dirty_ctxs, set()
        routes = self._routes
        exchange = self.exchange
        dirty_dexes: set[str] = set()
        for coin in books:
            dirty_dexes.add(coin.partition(":")[0] if ":" in coin else "")
            subscribers = routes.get(("bbo", coin))
            if subscribers:
                bbo = exchange.bbo(coin)
                if bbo["bbo"] != self._last_bbo.get(coin):
                    self._last_bbo[coin] = bbo["bbo"]
                    self._fan_out_to(subscribers, channel_frame("bbo", bbo), ("bbo", coin))
            for variant in self._book_variants.get(coin, ()):
                subscribers = routes.get(("l2Book", coin, variant))
                if subscribers:
                    self._fan_out_to(
                        subscribers,
                        channel_frame("l2Book", self._book_view(coin, variant)),
                        ("l2Book", coin),
                    )
        for coin in ctxs:
            subscribers = routes.get(("activeAssetCtx", coin))
            if subscribers:
                self._fan_out_to(
                    subscribers,
                    channel_frame("activeAssetCtx", exchange.asset_ctx(coin)),
                    ("activeAssetCtx", coin),
                )
        for dex in dirty_dexes:
            subscribers = routes.get(("allMids", dex))
            if subscribers:
                mids = self._mids(dex)
                if mids != self._last_mids.get(dex):
                    self._last_mids[dex] = mids
                    self._fan_out_to(subscribers, channel_frame("allMids", {"mids": mids}))
        if self._states:
            for key, frame in self._states.changed(exchange):
                subscribers = routes.get(key)
                if subscribers:
                    self._fan_out_to(subscribers, frame)

    def _fan_out(self, key: tuple[Any, ...], channel: str, data: Any) -> None:
        subscribers = self._routes.get(key)
        if subscribers:
            self._fan_out_to(subscribers, channel_frame(channel, data))

    def _fan_out_to(
        self, subscribers: set[ClientSession], frame: bytes, stream: tuple[Any, ...] = ()
    ) -> None:
        # Copy: a send can drop a session, which edits the set we are walking.
        faults = self.faults
        for session in tuple(subscribers):
            if stream and faults.stalled(session, stream[0], stream[1]):
                continue  # a stalled stream (fault): the socket lives, this feed is silent
            session.send(frame)
        self.md_frames_written += len(subscribers)

    def _mids(self, dex: str) -> dict[str, str]:
        return self.exchange.info({"type": "allMids", "dex": dex})

    def _book_view(self, coin: str, variant: tuple[Any, ...]) -> dict[str, Any]:
        n_sig_figs, mantissa, fast = variant
        book = self.exchange.l2_book(coin, 5 if fast else 20)
        if n_sig_figs is None:
            return book
        return aggregate_book(book, n_sig_figs, mantissa)


def _variant(sub: Subscription) -> tuple[Any, ...]:
    return (sub.n_sig_figs, sub.mantissa, sub.fast)


def _route_key(sub: Subscription) -> tuple[Any, ...]:
    if sub.type == "l2Book":
        return ("l2Book", sub.target, _variant(sub))
    if sub.type == "candle" or sub.type in STATE_TYPES:
        return (sub.type, sub.target, sub.detail)
    return (sub.type, sub.target)


def post_answer_frame(post_id: int, response: dict[str, Any]) -> bytes:
    return channel_frame("post", {"id": post_id, "response": response})


def _show(value: Any) -> str:
    try:
        return encode_compact(value)
    except (TypeError, msgspec.EncodeError):
        return repr(value)


def _echo_error(raw: bytes) -> bytes:
    """The live answer to a frame that is not JSON, not an object, has an unknown method or
    subscribes to a refused type: the prefix followed by the frame exactly as sent."""
    return _error_frame(PARSE_ERROR + raw.decode("utf-8", "replace"))


def _only_ws_path(protocol: ServerProtocol, request: Request) -> Response:
    """The opening handshake: only WS_PATH is a websocket endpoint."""
    if request.path.partition("?")[0] != WS_PATH:
        response = protocol.reject(HTTPStatus.NOT_FOUND, f"websocket endpoint is {WS_PATH}\n")
    else:
        response = protocol.accept(request)
    response.headers["Server"] = SERVER  # as websockets' own server answers
    return response


__all__ = ["CHANNEL_OF", "WS_PATH", "ClientSession", "ConnectionLimits", "SimServer"]
