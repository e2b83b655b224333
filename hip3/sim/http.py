"""HTTP beside the websocket on the same port: `POST /info`, `POST /exchange`, `GET /ws`.

The listening socket's protocol is `FrontDoor`. It reads the request head of a new
connection; a `GET /ws` is handed, with the bytes read so far, to a websocket connection
(`hip3.transport.wsconn.WsConnection`, which does the opening handshake), anything else is
served here as HTTP/1.1 with keep-alive. An SDK pointed at `http://HOST:PORT` therefore
finds `/info`, `/exchange` and `/ws` where it expects them.

`/info` and `/exchange` go through the same `RequestGateway` as a websocket post, so the
answers are the same; only the form differs. Status codes follow the live API:

- 200 JSON: every parsed request, including the exchange's refusals (`"status": "err"`);
- 400 text: the body is not JSON ("Failed to parse the request body as JSON: ...");
- 415 text: Content-Type is not `application/json` (or `application/*+json`);
- 422 text: the body does not fit the schema ("Failed to deserialize the JSON body into the
  target type: ...", the simulator adds what was wrong);
- 429 `null`: the per-IP request weight of the window is spent (`hip3.sim.ip_limits`);
- 500 `null`: where the live server fails (l2Book `nSigFigs`/`mantissa` outside the set);
- 404 for other paths, 405 for other methods on these paths, 411 for a POST without
  Content-Length, 413 for a body over the frame limit, 431 for a request head over 64 KiB,
  400 for a head that is not HTTP/1.x. These are plain-text and the simulator's own wording.

As on the exchange, trailing bytes after the first JSON value of a body are ignored.
Pipelined requests on one connection are answered in order, even when the gateway answers
later than it is asked (block timing).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import msgspec

from hip3.sim.ip_limits import request_weight
from hip3.sim.requests import Answer
from hip3.sim.wire import DESERIALIZE

if TYPE_CHECKING:
    from hip3.sim.server import SimServer

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
WS_PATH = "/ws"
ROUTES = {"/info": "info", "/exchange": "action"}
PARSE_BODY_ERROR = "Failed to parse the request body as JSON"
CONTENT_TYPE_ERROR = "Expected request with `Content-Type: application/json`"
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"
_json_decoder = json.JSONDecoder()


class HttpError(Exception):
    """A request that ends in a plain-text error response (and, for bad framing, a close)."""

    def __init__(self, status: int, text: str, *, close: bool = False) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.close = close


class _Head:
    __slots__ = ("headers", "method", "path", "version")

    def __init__(self, method: str, path: str, version: str, headers: dict[str, str]) -> None:
        self.method = method
        self.path = path
        self.version = version
        self.headers = headers

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


def parse_head(raw: bytes) -> _Head:
    """Request line and headers (names lowercased) of one request head, without the CRLFCRLF."""
    text = raw.decode("latin-1")  # every byte decodes; bad names fail the checks below
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(400, f"malformed request line {lines[0][:80]!r}", close=True)
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise HttpError(400, f"malformed header line {line[:80]!r}", close=True)
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return _Head(method, target.partition("?")[0], version, headers)


def content_type_is_json(value: str | None) -> bool:
    """`application/json` or `application/<anything>+json`, parameters allowed."""
    if value is None:
        return False
    media = value.split(";", 1)[0].strip().lower()
    if media == _JSON:
        return True
    kind, slash, subtype = media.partition("/")
    return (
        kind == "application" and bool(slash) and subtype.endswith("+json") and subtype != "+json"
    )


def decode_body(body: bytes) -> Any:
    """The first JSON value of `body` (trailing bytes ignored, as on the exchange)."""
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        pass
    try:
        text = body.decode()
        value, _end = _json_decoder.raw_decode(text, len(text) - len(text.lstrip()))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HttpError(400, f"{PARSE_BODY_ERROR}: {exc}") from None
    return value


def response_bytes(
    status: int, body: bytes, content_type: str, *, close: bool, extra: str = ""
) -> bytes:
    reason = HTTPStatus(status).phrase
    connection = "close" if close else "keep-alive"
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {connection}\r\n"
        f"{extra}\r\n"
    )
    return head.encode("latin-1") + body


class FrontDoor(asyncio.Protocol):
    """One accepted TCP connection until it is known to be HTTP or a websocket."""

    def __init__(self, server: SimServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.peer_ip = ""
        self._buffer = bytearray()
        self._head: _Head | None = None
        self._body_needed = 0
        self._closing = False
        self._timer: asyncio.TimerHandle | None = None
        # Answers in request order; None marks a request whose answer has not come yet.
        self._outbox: deque[list[bytes | None]] = deque()

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer_ip = str(peer[0]) if peer else ""
        self.server.doors.add(self)
        # A connection that has not sent a whole request head by then is cut, as one that
        # does not finish the websocket handshake is.
        self._arm_timer(self.server.open_timeout_s)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._buffer += data
        try:
            self._process()
        except HttpError as error:
            self._respond_now(error.status, error.text.encode() + b"\n", _TEXT, close=True)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self.transport = None
        self.server.doors.discard(self)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # --- request framing -----------------------------------------------------------------

    def _process(self) -> None:
        while not self._closing:
            if self._head is None:
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._buffer) > MAX_HEAD_BYTES:
                        raise HttpError(431, "request head is too large", close=True)
                    return
                if end > MAX_HEAD_BYTES:
                    raise HttpError(431, "request head is too large", close=True)
                raw_head = bytes(self._buffer[: end + 4])
                head = parse_head(raw_head[:-4])
                del self._buffer[: end + 4]
                if head.method == "GET" and head.path == WS_PATH and not self._outbox:
                    self._become_websocket(raw_head)
                    return
                self._head = head
                self._body_needed = self._body_length(head)
                if head.headers.get("expect", "").lower() == "100-continue" and self._body_needed:
                    self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if len(self._buffer) < self._body_needed:
                return
            head, self._head = self._head, None
            body = bytes(self._buffer[: self._body_needed])
            del self._buffer[: self._body_needed]
            self._body_needed = 0
            self._cancel_timer()
            self._handle(head, body)
            if not self._outbox:
                self._arm_timer(self.server.http_idle_timeout_s)

    def _body_length(self, head: _Head) -> int:
        if "transfer-encoding" in head.headers:
            raise HttpError(501, "chunked request bodies are not supported", close=True)
        length = head.headers.get("content-length")
        if length is None:
            if head.method == "POST":
                raise HttpError(411, "Content-Length is required", close=True)
            return 0
        if not length.isdigit():
            raise HttpError(400, f"invalid Content-Length {length!r}", close=True)
        size = int(length)
        if size > self.server.limits.max_frame_bytes:
            raise HttpError(
                413,
                f"body of {size} bytes exceeds the limit of "
                f"{self.server.limits.max_frame_bytes} bytes",
                close=True,
            )
        return size

    def _become_websocket(self, raw_head: bytes) -> None:
        """Hand the connection, and every byte read so far, to a websocket connection."""
        self._cancel_timer()
        self.server.doors.discard(self)
        transport = self.transport
        assert transport is not None
        rest = bytes(self._buffer)
        self._buffer.clear()
        self._closing = True
        conn = self.server.new_connection()
        transport.set_protocol(conn)
        conn.connection_made(transport)
        conn.data_received(raw_head + rest)

    # --- requests ------------------------------------------------------------------------

    def _handle(self, head: _Head, body: bytes) -> None:
        close = not head.keep_alive
        slot: list[bytes | None] = [None]
        self._outbox.append(slot)
        try:
            kind = self._route(head)
            if not content_type_is_json(head.headers.get("content-type")):
                raise HttpError(415, CONTENT_TYPE_ERROR)
            payload = decode_body(body)
        except HttpError as error:
            self._fill(slot, error.status, error.text.encode(), _TEXT, close or error.close, "")
            return
        limiter = self.server.ip_limiter
        if not limiter.admit(self.peer_ip, request_weight(kind, payload)):
            self._fill(slot, 429, b"null", _JSON, close, "")
            return
        if not isinstance(payload, dict):
            text = f"{DESERIALIZE}: the {kind} body must be a JSON object"
            self._fill(slot, 422, text.encode(), _TEXT, close, "")
            return

        def reply(answer: Answer) -> None:
            limiter.charge_result(self.peer_ip, kind, payload, answer)
            if answer.is_json:
                data = msgspec.json.encode(answer.body)
                self._fill(slot, answer.status, data, _JSON, close, "")
            else:
                self._fill(slot, answer.status, str(answer.body).encode(), _TEXT, close, "")

        self.server.gateway.submit(kind, payload, reply)

    def _route(self, head: _Head) -> str:
        kind = ROUTES.get(head.path)
        if kind is None:
            if head.path == WS_PATH:
                raise HttpError(405, "method not allowed: /ws takes GET with a websocket upgrade")
            raise HttpError(404, f"no such endpoint {head.path[:80]}; try /info, /exchange, /ws")
        if head.method != "POST":
            raise HttpError(405, f"method not allowed: {head.path} takes POST")
        return kind

    # --- responses -----------------------------------------------------------------------

    def _fill(
        self,
        slot: list[bytes | None],
        status: int,
        body: bytes,
        content_type: str,
        close: bool,
        extra: str,
    ) -> None:
        if status == 405:
            ws = body.startswith(b"method not allowed: /ws")
            extra = "Allow: GET\r\n" if ws else "Allow: POST\r\n"
        slot[0] = response_bytes(status, body, content_type, close=close, extra=extra)
        if close:
            slot.append(b"")  # marks the connection to close after this answer
        self._drain_outbox()

    def _drain_outbox(self) -> None:
        outbox = self._outbox
        while outbox and outbox[0][0] is not None:
            slot = outbox.popleft()
            data = slot[0]
            assert data is not None
            self._write(data)
            if len(slot) > 1:
                self._close_after_write()
                return
        if not outbox and self._head is None and not self._closing:
            self._arm_timer(self.server.http_idle_timeout_s)

    def _respond_now(self, status: int, body: bytes, content_type: str, *, close: bool) -> None:
        slot: list[bytes | None] = [None]
        self._outbox.append(slot)
        self._fill(slot, status, body, content_type, close, "")

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _close_after_write(self) -> None:
        self._closing = True
        self._outbox.clear()
        if self.transport is not None:
            self.transport.close()  # flushes what was written, then closes

    # --- idle timer ----------------------------------------------------------------------

    def _arm_timer(self, seconds: float) -> None:
        self._cancel_timer()
        loop = self.server.loop
        self._timer = loop.call_later(seconds, self._on_idle)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_idle(self) -> None:
        self._timer = None
        if self._outbox:
            return  # an answer is still coming; the connection is busy, not idle
        self._closing = True
        if self.transport is not None:
            self.transport.close()


__all__ = ["FrontDoor", "content_type_is_json", "decode_body", "parse_head"]
