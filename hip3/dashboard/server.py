"""The dashboard's HTTP server: the page, its JSON, and the operator buttons behind a token.

A standard-library threading server, like the metrics exporter's, so a slow or stuck browser
never holds the event loop. Reads hop onto the loop for their snapshot (`_on_loop`): the
dispatcher handles one event at a time, so a callback queued on the loop sees the state
between two events, whole; JSON encoding then happens back in the server thread. The
operator buttons put the same `OperatorCommand` a signal does through the dispatcher's `put`,
also on the loop, and answer once it is in (409 once the run has finished: nothing would
handle it).

Security, since the buttons stop trading:
- loopback by default; another address needs a token (the configuration refuses otherwise),
  and then every `/api/` read needs it too, as positions and PnL are nobody else's business;
- the buttons are POSTs that always need the token, sent as `Authorization: Bearer ...`
  (never in a URL, so never in a log or a browser's history), compared in constant time;
  without a configured token the buttons answer 403 and the page is read-only;
- a request whose Host header names another site is refused, so a web page elsewhere cannot
  reach a loopback dashboard by rebinding its own name to 127.0.0.1;
- the page allows only its own scripts and styles and may not be framed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import importlib.resources
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from hip3.config import DashboardConfig, is_loopback_host
from hip3.dashboard.history import History, sample_forever, series_json
from hip3.dashboard.source import BotSource

log = logging.getLogger(__name__)

# How long a read waits for the loop to take its snapshot before answering 503.
SNAPSHOT_TIMEOUT_S = 2.0
# Operator requests carry no meaningful body; anything larger is refused unread.
MAX_BODY_BYTES = 1024
OPERATOR_PATHS = {"/api/hardstop": "hardstop", "/api/reset": "reset"}
ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
}
SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class DashboardError(RuntimeError):
    """The dashboard cannot start; one line naming the setting to change."""


def load_assets() -> dict[str, bytes]:
    """The page's files, shipped inside the package (and so inside the wheel)."""
    folder = importlib.resources.files("hip3.dashboard") / "static"
    return {name: (folder / name).read_bytes() for name, _ in set(ASSETS.values())}


class Access:
    """Who may do what: the token (or None), and whether reads need it."""

    def __init__(self, token: str | None, *, reads_need_token: bool) -> None:
        self._token = token.encode() if token else None
        self.reads_need_token = reads_need_token

    @property
    def operator_enabled(self) -> bool:
        return self._token is not None

    def allows(self, authorization: str | None) -> bool:
        if self._token is None or not authorization:
            return False
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), self._token)


def _on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[[], Any], timeout_s: float) -> Any:
    """Run `fn` on the loop between two events and wait for its result in this thread."""
    fut: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def run() -> None:
        if not fut.set_running_or_notify_cancel():
            return
        try:
            fut.set_result(fn())
        except BaseException as exc:
            fut.set_exception(exc)

    loop.call_soon_threadsafe(run)
    try:
        return fut.result(timeout_s)
    except concurrent.futures.TimeoutError:
        fut.cancel()
        raise


def _host_name(header: str | None) -> str | None:
    """The name in a Host header, without its port; None when the header is missing."""
    if not header:
        return None
    header = header.strip().lower()
    if header.startswith("["):  # an IPv6 literal
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class DashboardServer:
    """A running dashboard: `url`, `port`, `close()`."""

    def __init__(
        self,
        httpd: ThreadingHTTPServer,
        thread: threading.Thread,
        sampler: asyncio.Task[None],
        history: History,
    ) -> None:
        self._httpd = httpd
        self._thread = thread
        self._sampler = sampler
        self.history = history
        self.host, self.port = httpd.server_address[:2]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def close(self) -> None:
        self._sampler.cancel()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _handler(
    source: BotSource,
    history: History,
    access: Access,
    loop: asyncio.AbstractEventLoop,
    assets: dict[str, bytes],
    allowed_hosts: frozenset[str] | None,
) -> type[BaseHTTPRequestHandler]:
    encode = msgspec.json.encode

    def state(since_ms: int) -> bytes:
        snap = _on_loop(loop, source.snapshot, SNAPSHOT_TIMEOUT_S)
        snap["dead_mans_switch"]["last_renewal_ms"] = history.last_renewal_ms
        snap["series"] = series_json(history.since(since_ms))
        snap["operator_enabled"] = access.operator_enabled
        return encode(snap)

    class Handler(BaseHTTPRequestHandler):
        server_version = "hip3-dashboard"
        sys_version = ""

        def do_GET(self) -> None:
            if not self._host_ok():
                return
            url = urlsplit(self.path)
            asset = ASSETS.get(url.path)
            if asset is not None:
                name, content_type = asset
                self._send(200, assets[name], content_type)
            elif url.path == "/api/state":
                if access.reads_need_token and not access.allows(self.headers["Authorization"]):
                    self._json(401, {"error": "token required"})
                    return
                since = parse_qs(url.query).get("since_ms", ["0"])[-1]
                if not since.isdigit() or len(since) > 15:
                    self._json(400, {"error": "since_ms: expected Unix milliseconds"})
                    return
                try:
                    body = state(int(since))
                except (concurrent.futures.TimeoutError, RuntimeError):
                    # the loop is busy beyond reason or already closed
                    self._json(503, {"error": "the bot did not answer in time"})
                    return
                self._send(200, body, "application/json")
            elif url.path in OPERATOR_PATHS:
                self._json(405, {"error": "use POST"}, allow="POST")
            else:
                self._json(404, {"error": f"not found: {url.path}"})

        def do_POST(self) -> None:
            if not self._host_ok():
                return
            path = urlsplit(self.path).path
            kind = OPERATOR_PATHS.get(path)
            if kind is None:
                self._json(404, {"error": f"not found: {path}"})
                return
            length = self.headers["Content-Length"] or "0"
            if not length.isdigit() or int(length) > MAX_BODY_BYTES:
                self._json(413, {"error": "operator requests carry no body"})
                return
            self.rfile.read(int(length))
            if not access.operator_enabled:
                self._json(403, {"error": "operator buttons are off: no token is configured"})
                return
            if not access.allows(self.headers["Authorization"]):
                self._json(401, {"error": "token required"})
                return
            try:
                accepted = _on_loop(
                    loop, lambda: source.operator(kind, "dashboard"), SNAPSHOT_TIMEOUT_S
                )
            except (concurrent.futures.TimeoutError, RuntimeError):
                self._json(503, {"error": "the bot did not answer in time"})
                return
            if not accepted:
                self._json(409, {"error": "the bot has finished its run"})
                return
            log.warning(
                "operator %s requested from the dashboard (%s)", kind, self.client_address[0]
            )
            self._json(202, {"accepted": kind})

        def _host_ok(self) -> bool:
            if allowed_hosts is None:
                return True
            if _host_name(self.headers["Host"]) in allowed_hosts:
                return True
            self._json(403, {"error": "unexpected Host header"})
            return False

        def _json(self, status: int, value: Any, **headers: str) -> None:
            self._send(status, encode(value), "application/json", **headers)

        def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in SECURITY_HEADERS:
                self.send_header(name, value)
            for name, value in headers.items():
                self.send_header(name.capitalize(), value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("dashboard http: " + format, *args)

    return Handler


def _server_class(host: str, port: int) -> type[ThreadingHTTPServer]:
    """Listen in the family the host resolves to, so `::1` works as well as 127.0.0.1."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return type("DashboardHTTPServer", (ThreadingHTTPServer,), {"address_family": family})


def start_dashboard(
    dispatcher: Any,
    cfg: DashboardConfig,
    *,
    latency: Any = None,
    environ: Mapping[str, str] | None = None,
    sample_interval_s: float = 1.0,
) -> DashboardServer:
    """Serve the dashboard for `dispatcher`; call it from the bot's running loop.

    Raises DashboardError (one line) when it cannot listen, or when the host is not loopback
    and no token is set (the configuration refuses that first; this is the last guard).
    """
    loop = asyncio.get_running_loop()
    env = os.environ if environ is None else environ
    token = env.get(cfg.token_env) or None
    loopback = is_loopback_host(cfg.host)
    if token is None and not loopback:
        raise DashboardError(
            f"dashboard: host {cfg.host} is not loopback and {cfg.token_env} holds no token"
        )
    access = Access(token, reads_need_token=not loopback)
    source = BotSource(dispatcher, latency)
    history = History()
    # Bound to loopback, only loopback names are valid; bound elsewhere the name the operator
    # reaches it by cannot be known in advance, and the token guards every read instead.
    allowed = LOOPBACK_NAMES | {cfg.host.lower().strip("[]")} if loopback else None
    handler = _handler(source, history, access, loop, load_assets(), allowed)
    try:
        httpd = _server_class(cfg.host, cfg.port)((cfg.host, cfg.port), handler)
    except OSError as exc:
        raise DashboardError(
            f"dashboard: cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}"
            " (set [dashboard] port)"
        ) from None
    except OverflowError:
        raise DashboardError(f"dashboard: port {cfg.port} out of range") from None
    httpd.daemon_threads = True
    # a short poll interval: closing (at the end of every run) waits at most this long
    thread = threading.Thread(
        target=httpd.serve_forever, args=(0.1,), name="dashboard", daemon=True
    )
    thread.start()
    sampler = loop.create_task(
        sample_forever(
            history,
            source.money_sample,
            source.schedule_cancel_renewals,
            source.finished,
            sample_interval_s,
        ),
        name="dashboard-sampler",
    )
    server = DashboardServer(httpd, thread, sampler, history)
    log.info(
        "dashboard on %s (operator buttons %s)",
        server.url,
        "on" if access.operator_enabled else f"off: no token in {cfg.token_env}",
    )
    return server
