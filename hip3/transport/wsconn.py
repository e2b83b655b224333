"""One websocket on a plain asyncio transport, driven by websockets' sans-I/O protocol.

websockets' asyncio connection hands each message to a reader task through a queue: every
frame costs an event-loop turn before anyone sees it, and every write waits on a drain. On a
latency path that is pure waste. Here the library's sans-I/O `ClientProtocol`/`ServerProtocol`
does the protocol work (handshake, framing, masking, control frames, closing handshake, size
limits) and this class does the I/O: a message is delivered to `on_message` inside
`data_received`, the moment its last byte is read, and a write goes to the socket inside
`send_text`. Both the bot's transport and the simulator's server use it.

Delivery contract:
- `on_open(conn)` once, when the opening handshake succeeds;
- `on_message(payload, is_text)` per complete message, in order (fragments are joined);
- `on_closed(reason)` exactly once, when the TCP connection is gone, whatever ended it
  (also when the handshake failed or the connection was never opened).
Callbacks run on the event loop and must not block; an exception from one is logged and
closes the connection (a broken consumer must not leave a half-read stream behind).
"""

from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
from collections.abc import Callable
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import Side, State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

log = logging.getLogger(__name__)

_TEXT, _BINARY, _CONT, _CLOSE = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.CLOSE
_OPEN = State.OPEN


class WsConnection(asyncio.Protocol):
    """A websocket connection; build it with `connect()` (client) or as a server's protocol."""

    def __init__(
        self,
        protocol: ClientProtocol | ServerProtocol,
        *,
        on_message: Callable[[bytes, bool], None],
        on_open: Callable[[WsConnection], None] | None = None,
        on_closed: Callable[[str], None] | None = None,
        on_request: Callable[[ServerProtocol, Request], Response] | None = None,
        close_timeout_s: float = 2.0,
    ) -> None:
        self.protocol = protocol
        self.transport: asyncio.Transport | None = None
        self.remote_address: Any = None
        self.closed_reason: str | None = None
        self._on_message = on_message
        self._on_open = on_open
        self._on_closed = on_closed
        self._on_request = on_request
        self._close_timeout_s = close_timeout_s
        self._close_timer: asyncio.TimerHandle | None = None
        self._fragments: list[bytes] = []
        self._fragmented_text = False
        self._lost_exc: BaseException | None = None

    # --- state ---------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.protocol.state is _OPEN and self.closed_reason is None

    # --- writing -------------------------------------------------------------------------

    def send_text(self, data: bytes) -> None:
        """Write one text message now. Raises ConnectionError when the socket is not open."""
        if self.protocol.state is not _OPEN or self.transport is None:
            raise ConnectionError(f"websocket is {self.protocol.state.name.lower()}")
        self.protocol.send_text(data)
        self._flush()

    def write_raw(self, framed: bytes) -> None:
        """Write bytes that are already a complete frame sequence (a server's unmasked
        frames can be built once and shared between subscribers). The caller checks
        `can_write_raw` first."""
        transport = self.transport
        if transport is not None:
            transport.write(framed)

    @property
    def can_write_raw(self) -> bool:
        p = self.protocol
        return (
            p.state is _OPEN
            and not p.extensions
            and p.side is Side.SERVER
            and not p.writes  # nothing the library queued (a pong) may be overtaken
            and not p.expect_continuation_frame
        )

    def flush(self) -> None:
        """Write whatever the protocol has queued (pongs, a close frame)."""
        self._flush()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; the TCP connection is cut if it does not finish."""
        if self.protocol.state is _OPEN:
            self.protocol.send_close(code, reason)
            self._flush()
        if self.transport is not None and self.closed_reason is None:
            self._arm_close_timer()

    def abort(self) -> None:
        """Cut the TCP connection at once, without a close frame (as a network failure)."""
        if self.transport is not None:
            self.transport.abort()

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.remote_address = transport.get_extra_info("peername")
        p = self.protocol
        if isinstance(p, ClientProtocol):
            p.send_request(p.connect())
            self._flush()

    def data_received(self, data: bytes) -> None:
        p = self.protocol
        p.receive_data(data)
        try:
            for event in p.events_received():
                if type(event) is Frame:
                    self._on_frame(event)
                elif type(event) is Request:
                    self._on_handshake_request(event)
                elif type(event) is Response:
                    self._on_handshake_response()
        except Exception as exc:
            log.exception("websocket consumer failed; closing the connection")
            self._lost_exc = exc
            if p.state is _OPEN:
                p.fail(1011, "internal error")
        self._flush()
        if p.close_expected():
            self._arm_close_timer()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._flush()
        return None  # let asyncio close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        p = self.protocol
        p.receive_eof()  # idempotent: moves the protocol to CLOSED
        reason = self._describe_end(exc)
        self.closed_reason = reason
        self.transport = None
        if self._on_closed is not None:
            self._on_closed(reason)

    # --- internals -----------------------------------------------------------------------

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is _TEXT or opcode is _BINARY:
            if frame.fin:
                self._on_message(frame.data, opcode is _TEXT)
            else:
                self._fragments = [frame.data]
                self._fragmented_text = opcode is _TEXT
        elif opcode is _CONT:
            self._fragments.append(frame.data)
            if frame.fin:
                payload = b"".join(self._fragments)
                self._fragments = []
                self._on_message(payload, self._fragmented_text)
        # ping (the protocol queues the pong), pong and close need nothing here

    def _on_handshake_request(self, request: Request) -> None:
        p = self.protocol
        assert isinstance(p, ServerProtocol)
        response = self._on_request(p, request) if self._on_request else p.accept(request)
        p.send_response(response)
        if p.handshake_exc is None and response.status_code == 101 and self._on_open:
            self._on_open(self)

    def _on_handshake_response(self) -> None:
        # The handshake's outcome, not the current state: frames that arrived in the same
        # read (a close, an oversized message) may already have moved the state on.
        if self.protocol.handshake_exc is None and self._on_open is not None:
            self._on_open(self)

    def _flush(self) -> None:
        writes = self.protocol.data_to_send()
        transport = self.transport
        if not writes or transport is None:
            return
        data = b"".join(writes)
        if data:
            transport.write(data)
        if not writes[-1] and transport.can_write_eof():  # b"" asks for a half-close
            transport.write_eof()

    def _arm_close_timer(self) -> None:
        if self._close_timer is None and self.transport is not None:
            loop = asyncio.get_running_loop()
            self._close_timer = loop.call_later(self._close_timeout_s, self.abort)

    def _describe_end(self, exc: BaseException | None) -> str:
        p = self.protocol
        if p.handshake_exc is not None:
            return f"handshake failed: {p.handshake_exc}"
        if self._lost_exc is not None:
            return f"consumer failed: {type(self._lost_exc).__name__}: {self._lost_exc}"
        parser_exc = p.parser_exc
        if isinstance(parser_exc, EOFError):  # the stream ended without a closing handshake
            detail = f": {type(exc).__name__}: {exc}" if exc is not None else ""
            return "connection lost without a close frame" + detail
        if parser_exc is not None:
            sent = f" (sent close {p.close_sent.code})" if p.close_sent is not None else ""
            return f"protocol error: {parser_exc}{sent}"
        if p.close_rcvd is not None:
            return f"received close {p.close_rcvd.code} ({p.close_rcvd.reason or 'no reason'})"
        if p.close_sent is not None:
            return f"sent close {p.close_sent.code} ({p.close_sent.reason or 'no reason'})"
        if exc is not None:
            return f"connection lost: {type(exc).__name__}: {exc}"
        return "connection lost without a close frame"


async def connect(
    url: str,
    *,
    on_message: Callable[[bytes, bool], None],
    on_closed: Callable[[str], None] | None = None,
    max_size: int | None = 8 * 1024 * 1024,
) -> WsConnection:
    """Open a client websocket; returns once the opening handshake succeeded.

    Raises ConnectionError (or OSError from the TCP connect) when it cannot open. The caller
    bounds the wait (asyncio.timeout). `on_closed` is called exactly once for an opened
    connection; for one that never opened, the exception says why instead.
    """
    uri = parse_uri(url)
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[None] = loop.create_future()
    is_open = False

    def on_open(_conn: WsConnection) -> None:
        nonlocal is_open
        is_open = True
        if not opened.done():
            opened.set_result(None)

    def on_lost(reason: str) -> None:
        if not opened.done():
            opened.set_exception(ConnectionError(reason))
        elif is_open and on_closed is not None:
            on_closed(reason)

    conn = WsConnection(
        ClientProtocol(uri, max_size=max_size),
        on_message=on_message,
        on_open=on_open,
        on_closed=on_lost,
    )
    ssl = _ssl.create_default_context() if uri.secure else None
    await loop.create_connection(
        lambda: conn, uri.host, uri.port, ssl=ssl, server_hostname=uri.host if ssl else None
    )
    try:
        await opened
    except BaseException:
        conn.abort()
        raise
    return conn
