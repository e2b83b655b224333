"""Prometheus metrics that READ the dispatcher when scraped: nothing runs on the hot path.

The dispatcher already counts what an operator needs (gate blocks, final order states, fills,
epochs, ...). A custom collector turns those numbers into metric families at scrape time, so a
frame, a signal or an order costs nothing extra. Two things cannot be read afterwards because
the runtime forgets them once handled — how long a post waited for its answer and how long a
ping waited for its pong — so `LatencyRecorder` offers two cheap hooks (a bisect and two
additions) that the dispatcher calls when a response arrives, after the order is on the wire.

The HTTP server is the standard library's threading server; prometheus-client encodes the
page in the format the scraper's Accept header asks for. The collector runs in a server
thread while the event loop mutates the state, so every container is copied in one C-level
call before it is walked, and a scrape that still races is counted and retried by the next
scrape rather than ever disturbing the loop.
"""

from __future__ import annotations

import bisect
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from hip3.runtime.dead_mans_switch import STATES as DMS_STATES

log = logging.getLogger(__name__)

# Loopback posts answer in tens of microseconds; the exchange in tens of milliseconds.
POST_BUCKETS_S = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
CONNECTION_STATES = ("idle", "connecting", "subscribing", "reconciling", "live", "backoff")
HARDSTOP_STATES = ("armed", "tripped", "cancelling", "flattening", "verifying", "halted")
# Only the most recent epochs are exported: a reconnect storm must not grow the scrape forever.
READY_EPOCHS_EXPORTED = 10


class Buckets:
    """A cumulative-at-scrape histogram: observing is one bisect and two additions."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds = tuple(sorted(bounds))
        if not self.bounds:
            raise ValueError("a histogram needs at least one bucket bound")
        self.counts = [0] * (len(self.bounds) + 1)  # the last slot is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        out, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


class LatencyRecorder:
    """What the dispatcher reports as it happens: post and pong latencies, in seconds."""

    def __init__(self, bounds: Iterable[float] = POST_BUCKETS_S) -> None:
        self._bounds = tuple(bounds)
        self.posts: dict[str, Buckets] = {}
        self.pong = Buckets(self._bounds)
        self.rejected_observations = 0

    def observe_post_latency(self, kind: str, seconds: float) -> None:
        if not seconds >= 0:  # also catches NaN: a bad clock reading is counted, not recorded
            self.rejected_observations += 1
            return
        # info posts carry their key after "info:"; one series per request type is enough
        family = ":".join(kind.split(":", 2)[:2])
        b = self.posts.get(family)
        if b is None:
            b = self.posts[family] = Buckets(self._bounds)
        b.observe(seconds)

    def observe_pong_rtt(self, seconds: float) -> None:
        if not seconds >= 0:
            self.rejected_observations += 1
            return
        self.pong.observe(seconds)


# The process-wide recorder the integrator's hooks feed; tests may pass their own.
LATENCY = LatencyRecorder()


def observe_post_latency(kind: str, seconds: float) -> None:
    """Call when a post's response (or id-bearing error) arrives: kind as in PendingPost."""
    LATENCY.observe_post_latency(kind, seconds)


def observe_pong_rtt(seconds: float) -> None:
    """Call when a pong arrives for an outstanding ping."""
    LATENCY.observe_pong_rtt(seconds)


def _f(x: Any) -> float:
    return float(x) if x is not None else float("nan")


def _histogram(name: str, doc: str, labels: dict[str, str], b: Buckets) -> HistogramMetricFamily:
    fam = HistogramMetricFamily(name, doc, labels=list(labels))
    fam.add_metric(list(labels.values()), b.cumulative(), b.sum)
    return fam


class DispatcherCollector(Collector):
    """Everything the operator scrapes, read from one dispatcher at scrape time."""

    def __init__(self, dispatcher: Any, latency: LatencyRecorder | None = None) -> None:
        self.d = dispatcher
        self.latency = latency if latency is not None else LATENCY
        self.scrape_errors = 0

    def collect(self) -> Iterator[Metric]:
        for part in (
            self._connection,
            self._posts,
            self._orders,
            self._positions,
            self._risk,
            self._markets,
            self._loop,
        ):
            try:
                yield from part()
            except RuntimeError as exc:  # a container changed size under us: next scrape
                self.scrape_errors += 1
                log.debug("metrics scrape raced the loop in %s: %s", part.__name__, exc)
        errors = CounterMetricFamily(
            "hip3_metrics_scrape_errors", "Scrape sections skipped because the loop raced them"
        )
        errors.add_metric([], self.scrape_errors)
        yield errors

    # --- sections -----------------------------------------------------------------------

    def _connection(self) -> Iterator[Metric]:
        d = self.d
        state = d.conn.state
        fam = GaugeMetricFamily(
            "hip3_connection_state", "1 for the connection's current state", labels=["state"]
        )
        for s in (*CONNECTION_STATES, *(() if state in CONNECTION_STATES else (state,))):
            fam.add_metric([s], 1.0 if s == state else 0.0)
        yield fam
        yield GaugeMetricFamily("hip3_epoch", "Current connection epoch", value=d.conn.epoch)
        yield CounterMetricFamily(
            "hip3_reconnects", "Epochs ended other than by shutdown", value=d.reconnects
        )
        ends = CounterMetricFamily("hip3_epoch_ends", "Ended epochs by cause", labels=["cause"])
        for key, n in sorted(dict(d.counters).items()):
            if key.startswith("epoch_end:"):
                ends.add_metric([key.split(":", 1)[1]], n)
        yield ends
        ready = GaugeMetricFamily(
            "hip3_ready_latency_seconds",
            "Time from opening an epoch's socket to READY (reconciled, live)",
            labels=["epoch"],
        )
        latencies = dict(d.ready_latency_ms)
        for epoch in sorted(latencies)[-READY_EPOCHS_EXPORTED:]:
            ready.add_metric([str(epoch)], latencies[epoch] / 1000)
        yield ready
        yield GaugeMetricFamily(
            "hip3_ready_trading",
            "1 when READY-TRADING holds",
            value=1.0 if d.ready.trading() else 0,
        )
        yield _histogram("hip3_pong_rtt_seconds", "Ping to pong round trip", {}, self.latency.pong)

    def _posts(self) -> Iterator[Metric]:
        d = self.d
        posts = d.wire.posts
        yield GaugeMetricFamily(
            "hip3_posts_inflight", "Posts awaiting a response", value=posts.inflight.count
        )
        yield CounterMetricFamily(
            "hip3_post_timeouts",
            "Posts that got no answer in time (unknown outcome)",
            value=posts.timeouts,
        )
        yield GaugeMetricFamily(
            "hip3_outbound_tokens",
            "Messages the outbound budget allows right now",
            value=d.wire.bucket.available(d.clock.now_ms()),
        )
        refused = CounterMetricFamily(
            "hip3_outbound_refused", "Messages the client refused to send", labels=["what"]
        )
        for what, n in sorted(dict(d.wire.refused).items()):
            refused.add_metric([what], n)
        yield refused
        # one family, one series per kind: HELP/TYPE must appear once per metric name
        latency = HistogramMetricFamily(
            "hip3_post_latency_seconds", "Post sent to response received", labels=["kind"]
        )
        for kind, b in sorted(dict(self.latency.posts).items()):
            latency.add_metric([kind], b.cumulative(), b.sum)
        yield latency

    def _orders(self) -> Iterator[Metric]:
        d = self.d
        final = CounterMetricFamily("hip3_orders_final", "Orders by final state", labels=["state"])
        for state, n in sorted(dict(d.orders.final_counts).items()):
            final.add_metric([state], n)
        yield final
        live = GaugeMetricFamily("hip3_orders_live", "Live orders by state", labels=["state"])
        by_state: dict[str, int] = {}
        for _info, m in d.orders.live_orders():
            by_state[m.state] = by_state.get(m.state, 0) + 1
        for state, n in sorted(by_state.items()):
            live.add_metric([state], n)
        yield live
        ignored = CounterMetricFamily(
            "hip3_order_facts_ignored",
            "Facts about orders that changed nothing: late (the order had ended), not applicable "
            "in its state, or contradicting it (the order was then reconciled)",
            labels=["kind"],
        )
        ignored.add_metric(["late"], d.orders.late_events)
        ignored.add_metric(["not_applicable"], d.orders.refused_events)
        ignored.add_metric(["contradicting"], d.orders.inconsistent_facts)
        yield ignored
        ex = d.executor
        blocks = CounterMetricFamily(
            "hip3_gate_blocks", "Signals refused, by gate", labels=["reason"]
        )
        for reason, n in sorted(dict(ex.blocked).items()):
            blocks.add_metric([reason], n)
        yield blocks
        yield CounterMetricFamily("hip3_signals", "Signals detected", value=d.signals_seen)
        submitted = CounterMetricFamily(
            "hip3_orders_submitted",
            "Orders written to the socket: entries, and exits (reduce-only flattens)",
            labels=["kind"],
        )
        entries = ex.entries_sent
        submitted.add_metric(["entry"], entries)
        submitted.add_metric(["exit"], ex.submitted - entries)
        yield submitted

    def _positions(self) -> Iterator[Metric]:
        d = self.d
        pt = d.positions
        yield CounterMetricFamily(
            "hip3_fills", "Fills applied (deduplicated)", value=pt.fills_applied
        )
        yield CounterMetricFamily(
            "hip3_fill_repeats",
            "Fills delivered again and ignored by trade id: reconciliation's fill reads and a"
            " reconnect's snapshot repeat fills the stream already applied, so this is normal",
            value=pt.duplicates,
        )
        size = GaugeMetricFamily("hip3_position_size", "Signed position size", labels=["coin"])
        notional = GaugeMetricFamily(
            "hip3_position_notional_usd",
            "Position notional at the reference price",
            labels=["coin"],
        )
        realized = Decimal(0)
        fees = Decimal(0)
        for coin, p in list(pt.positions.items()):
            realized += p.realized_pnl
            fees += p.fees
            size.add_metric([coin], float(p.size))
            st = d.markets.get(coin)
            ref = st.reference_px() if st is not None else None
            notional.add_metric([coin], float(p.notional(ref if ref is not None else p.entry_px)))
        yield size
        yield notional
        yield GaugeMetricFamily(
            "hip3_realized_pnl_usd", "Realized PnL before fees", value=float(realized)
        )
        yield GaugeMetricFamily("hip3_fees_usd", "Fees paid", value=float(fees))

    def _risk(self) -> Iterator[Metric]:
        d = self.d
        dms = d.dead_mans_switch
        fam = GaugeMetricFamily(
            "hip3_dead_mans_switch",
            "1 for the dead man's switch's state (unavailable: the exchange refuses it until "
            "the account has traded enough volume)",
            labels=["state"],
        )
        for state in DMS_STATES:
            fam.add_metric([state], 1.0 if state == dms.state else 0.0)
        yield fam
        hs = d.hardstop.state
        fam = GaugeMetricFamily(
            "hip3_hardstop_state", "1 for HardStop's current state", labels=["state"]
        )
        for s in (*HARDSTOP_STATES, *(() if hs in HARDSTOP_STATES else (hs,))):
            fam.add_metric([s], 1.0 if s == hs else 0.0)
        yield fam
        counters = CounterMetricFamily("hip3_events", "Dispatcher event counters", labels=["name"])
        for name, n in sorted(dict(d.counters).items()):
            if not name.startswith("epoch_end:"):
                counters.add_metric([name], n)
        yield counters
        decode = CounterMetricFamily(
            "hip3_decode_errors", "Inbound frames that did not decode", labels=["kind"]
        )
        for kind, n in sorted(dict(d.decode_errors).items()):
            decode.add_metric([kind], n)
        yield decode

    def _markets(self) -> Iterator[Metric]:
        d = self.d
        now_ns = time.perf_counter_ns()
        ready = GaugeMetricFamily("hip3_market_ready", "1 when READY-MD holds", labels=["coin"])
        age = GaugeMetricFamily(
            "hip3_market_bbo_age_seconds", "Age of the last bbo", labels=["coin"]
        )
        updates = CounterMetricFamily(
            "hip3_market_bbo_updates", "bbo frames applied", labels=["coin"]
        )
        stale = GaugeMetricFamily(
            "hip3_market_stale",
            "1 when the market's data is stale, by reason (ctx_stale: its context stream is "
            "silent; bbo_stale: the context contradicts the book)",
            labels=["coin", "reason"],
        )
        for coin, st in list(d.markets.items()):
            ready.add_metric([coin], 1.0 if d.ready.market(coin, now_ns) else 0.0)
            age.add_metric([coin], st.bbo_age_s(now_ns))
            updates.add_metric([coin], st.bbo_updates)
            reason = st.stale_reason(now_ns)
            if reason is not None:
                stale.add_metric([coin, reason], 1.0)
        yield ready
        yield age
        yield updates
        yield stale
        yield from self._streams()

    def _streams(self) -> Iterator[Metric]:
        w = self.d.streams
        for name, doc, counts in (
            ("hip3_stream_silences", "Times a stream went silent", w.silence_counts),
            ("hip3_stream_resubscribes", "Resubscribes of a silent stream", w.retry_counts),
            (
                "hip3_stream_stale_reconnects",
                "Connections replaced because a stream stayed silent",
                w.reconnect_counts,
            ),
        ):
            fam = CounterMetricFamily(name, doc, labels=["stream", "coin"])
            for key, n in sorted(dict(counts).items()):
                stream, _, coin = key.partition(":")
                fam.add_metric([stream, coin], n)
            yield fam

    def _loop(self) -> Iterator[Metric]:
        d = self.d
        yield GaugeMetricFamily(
            "hip3_inbox_depth", "Events waiting in the dispatcher's inbox", value=len(d.inbox)
        )
        frames_in = getattr(d.transport, "frames_in", None)
        if frames_in is not None:
            yield CounterMetricFamily("hip3_frames_in", "Frames read", value=frames_in)


class MetricsServer:
    """A running exporter: `url`, `port`, `close()`."""

    def __init__(self, httpd: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread
        self.host, self.port = httpd.server_address[:2]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 literal
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def build_registry(dispatcher: Any, latency: LatencyRecorder | None = None) -> CollectorRegistry:
    """The bot's metrics plus prometheus-client's process, platform and garbage-collector
    collectors (CPU, memory, open files, Python version, collections), in one registry of
    its own so nothing registered elsewhere in the process leaks onto the page."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DispatcherCollector(dispatcher, latency))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def _is_ready(dispatcher: Any) -> bool:
    """READY-TRADING, read from the server thread; a read that races the loop is 'not ready'."""
    try:
        return bool(dispatcher.ready.trading())
    except Exception:
        return False


def _handler(
    registry: CollectorRegistry, ready: Callable[[], bool]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # /metrics: the page, in the format the Accept header asks for (OpenMetrics when it
        # names application/openmetrics-text, else Prometheus text 0.0.4); /healthz: the
        # process answers; /readyz: 200 only when READY-TRADING holds, so a load balancer or
        # supervisor can tell "up" from "able to trade"; anything else is 404.
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._send(200, encoder(registry), content_type)
            elif path == "/healthz":
                self._send(200, b"ok\n")
            elif path == "/readyz":
                if ready():
                    self._send(200, b"ready\n")
                else:
                    self._send(503, b"not ready\n")
            else:
                self._send(404, b"not found: try /metrics, /healthz or /readyz\n")

        def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("metrics http: " + format, *args)

    return Handler


def _server_class(host: str, port: int) -> type[ThreadingHTTPServer]:
    """The standard server listens on IPv4 only; take the family the host resolves to, so
    `::1` or an IPv6 address works too. A host that does not resolve raises OSError."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return type("MetricsHTTPServer", (ThreadingHTTPServer,), {"address_family": family})


def start_metrics(
    dispatcher: Any, host: str, port: int, *, latency: LatencyRecorder | None = None
) -> MetricsServer:
    """Serve the dispatcher's metrics on http://host:port/metrics, with /healthz and /readyz
    beside them (port 0 picks a free one).

    Raises OSError naming the address when it cannot listen.
    """
    registry = build_registry(dispatcher, latency)
    handler = _handler(registry, lambda: _is_ready(dispatcher))
    try:
        httpd = _server_class(host, port)((host, port), handler)
    except OSError as exc:
        raise OSError(
            exc.errno, f"metrics: cannot listen on {host}:{port}: {exc.strerror}"
        ) from None
    except OverflowError:
        raise OSError(f"metrics: cannot listen on {host}:{port}: port out of range") from None
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="metrics", daemon=True)
    thread.start()
    server = MetricsServer(httpd, thread)
    log.info("metrics on %s", server.url)
    return server
