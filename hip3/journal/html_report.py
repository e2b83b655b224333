"""`hip3 journal --html FILE`: one self-contained HTML page of charts and tables from a journal.

The charts are SVG drawn by pygal and written inline, the styles sit in the page: the file needs
nothing else to be viewed, offline included (pygal's tooltip script, which its SVG would load
from the web, is switched off). Every chart has a table beside it with the exact figures, so the
page reads without the pictures too and the numbers can be copied.

What the page shows, and where the figures come from:
- PnL and fees over time: the fills in time order, summed (exact decimals; the chart plots at
  most MAX_LINE_POINTS of them, always the first and the last).
- signals and fills per market: the text summary's per-market figures.
- priority fees: the text summary's fill rate of entries without and with one, and the
  priority paid.
- edge at signal against realized result: round trips (hip3/journal/trades.py).
- observation follow-ups: the text summary's follow-up measures, per market and offset.
- post latency: from `sent` to the first answer (hip3/journal/trades.py).
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pygal
from pygal.style import Style

from hip3.journal.report import (
    FollowupStats,
    MarketStats,
    Summary,
    followup_samples,
    followup_stats,
    reading,
    summarise,
)
from hip3.journal.store import JournalError
from hip3.journal.trades import PostLatency, RoundTrip, post_latency, round_trips

# Past this many points a line is thinned for drawing (an hour of trading has thousands of
# fills); the table keeps the exact totals.
MAX_LINE_POINTS = 400
# Past this many round trips the scatter plot draws an even sample; the edge table uses all.
MAX_SCATTER_POINTS = 1_000
# Edge buckets (bps, lower bounds) of the edge-against-result table.
EDGE_BUCKETS_BPS = (0, 10, 20, 30, 50, 100)


@dataclass
class PnlPoint:
    ts_ms: int
    realized: Decimal  # running sum of closed PnL
    fees: Decimal  # running sum of fees

    @property
    def net(self) -> Decimal:
        return self.realized - self.fees


@dataclass
class ReportData:
    summary: Summary
    session: str | None  # the chosen session's id, None for all
    pnl: list[PnlPoint]
    trips: list[RoundTrip]
    followups: dict[str, list[FollowupStats]]  # coin -> per offset
    latency: PostLatency


def load_report(path: str | Path, *, session: str | None = None) -> ReportData:
    """Everything the page shows, read in one read-only pass over the journal."""
    with reading(path, session=session) as (conn, integrity):
        summary = summarise(conn, Path(path))
        summary.integrity = integrity
        by_coin = defaultdict(list)
        for sample in followup_samples(conn):
            by_coin[sample.coin].append(sample)
        return ReportData(
            summary=summary,
            session=summary.sessions[0].id if session is not None else None,
            pnl=_pnl(conn),
            trips=round_trips(conn),
            followups={coin: followup_stats(by_coin[coin]) for coin in sorted(by_coin)},
            latency=post_latency(conn),
        )


def _pnl(conn: sqlite3.Connection) -> list[PnlPoint]:
    out: list[PnlPoint] = []
    realized = fees = Decimal(0)
    for ts, pnl, fee in conn.execute(
        "SELECT ts_ms, closed_pnl, fee FROM fills ORDER BY ts_ms, tid"
    ):
        realized += Decimal(pnl)
        fees += Decimal(fee)
        out.append(PnlPoint(ts, realized, fees))
    return out


def write_html(data: ReportData, out: str | Path) -> int:
    """Write the page to `out` (replacing it whole: a reader never sees half a page); returns
    its size in bytes. A place that cannot be written is a JournalError naming it."""
    target = Path(out)
    page = render_html(data).encode("utf-8")
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        partial.write_bytes(page)
        os.replace(partial, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        reason = exc.strerror or exc
        raise JournalError(f"{target}: cannot write the HTML report ({reason})") from exc
    return len(page)


# ---- rendering ----

_STYLE = dict(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#333333",
    foreground_strong="#111111",
    foreground_subtle="#888888",
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=13,
    title_font_size=15,
    value_font_size=11,
    opacity=".85",
    opacity_hover=".95",
    guide_stroke_color="#e4e4e4",
    major_guide_stroke_color="#cccccc",
    colors=("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"),
)
# the per-market series keep their colour whichever of them a journal has
_MARKET_COLORS = {
    "signals": "#1f77b4",
    "sent": "#d62728",
    "blocked": "#2ca02c",
    "observation": "#ff7f0e",
    "fills": "#9467bd",
}

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #222;
       max-width: 1100px; margin: 1.5em auto; padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: .2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
.meta { color: #555; font-size: .9em; }
.table { overflow-x: auto; }
table { border-collapse: collapse; margin: .6em 0; font-size: .88em; }
th, td { padding: .25em .55em; border-bottom: 1px solid #eee; }
th { text-align: left; background: #f6f6f6; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 600; border-top: 1px solid #bbb; }
.none { color: #777; font-style: italic; }
.chart svg { width: 100%; height: auto; }
.note { color: #555; font-size: .85em; }
"""


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + "Z"


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _table(table_id: str, header: list[str], rows: list[list[str]], *, total: bool = False) -> str:
    """A table; every column but the first is numeric (right-aligned). With `total` the last
    row is the total line."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = ' class="total"' if total and i == len(rows) - 1 else ""
        cells = [f"<td>{_e(row[0])}</td>"] + [f'<td class="n">{_e(c)}</td>' for c in row[1:]]
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (
        f'<div class="table"><table id="{table_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _none(text: str) -> str:
    return f'<p class="none">{_e(text)}</p>'


def _pct(x: float | None, fmt: str = ".1f") -> str:
    return "-" if x is None else format(100 * x, fmt) + "%"


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def _chart(
    kind: type, *, colors: tuple[str, ...] | None = None, **config: object
) -> pygal.graph.graph.Graph:
    style = _STYLE if colors is None else {**_STYLE, "colors": colors}
    base: dict[str, object] = {
        "style": Style(**style),
        "js": [],  # no tooltip script: it would be loaded from the web
        "disable_xml_declaration": True,
        "width": 1000,
        "height": 380,
        "legend_at_bottom": True,
        "margin": 12,
        # pygal sizes the legend for its own font metrics; the room below keeps a browser's
        # wider system font from being cut off
        "margin_bottom": 28,
        "print_zeroes": False,
        "truncate_legend": -1,
        "truncate_label": -1,
    }
    base.update(config)
    return kind(**base)


# pygal's markup for its tooltip script: the script's settings, the value of a point, and
# where to draw its tip
_SCRIPT = re.compile(r"<script[^>]*>.*?</script>", re.DOTALL)
_VALUE_DESC = re.compile(r'<desc class="value">(.*?)</desc>')
_TIP_DESC = re.compile(r'<desc class="[xy][^"]*">[^<]*</desc>')
_GEOMETRY = re.compile(r' (cx|cy|x|y|d|points|transform|width|height)="([^"]*)"')
_LONG_DECIMAL = re.compile(r"(\d\.\d)\d+")


def _shorter(match: re.Match[str]) -> str:
    value = _LONG_DECIMAL.sub(r"\1", match[2])
    return f' {match[1]}="{value}"'


def _svg(chart: pygal.graph.graph.Graph) -> str:
    """The chart's SVG, made smaller for a page without pygal's script: the script's settings
    go, a point's value becomes its <title> (the browser's own tooltip), the tip positions go,
    and coordinates keep one decimal (a tenth of a pixel). A scatter of 1,000 points shrinks
    by half."""
    chart.config.legend_at_bottom_columns = max(1, len(chart.raw_series))  # one legend row
    svg = _SCRIPT.sub("", chart.render(is_unicode=True))
    svg = _TIP_DESC.sub("", _VALUE_DESC.sub(r"<title>\1</title>", svg))
    return f'<div class="chart">{_GEOMETRY.sub(_shorter, svg)}</div>'


def _count_ticks(top: int) -> list[int]:
    """Whole-number axis marks from 0 past `top`, about six of them, 1-2-5 steps: counts
    have no fractions to mark."""
    step = 1
    while top / step > 6:
        for factor in (2, 2.5, 2):  # 1, 2, 5, 10, 20, 50, ...
            step = int(step * factor)
            if top / step <= 6:
                break
    return list(range(0, top + step, step)) if top > 0 else [0, 1]


def _padded(low: float, high: float) -> tuple[float, float]:
    """A range a little wider than the values, so points at the ends are drawn whole."""
    pad = (high - low) * 0.05 or 1.0
    return low - pad, high + pad


def _thin(points: list, limit: int) -> list:
    """At most `limit` points spread evenly, the first and the last always among them."""
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def _section_header(data: ReportData) -> str:
    s = data.summary
    chosen = f"session {data.session}" if data.session is not None else "all sessions"
    starts = [x.started_ms for x in s.sessions]
    ends = [x.ended_ms for x in s.sessions if x.ended_ms is not None]
    span = f"{_when(min(starts))} to {_when(max(ends)) if ends else '(open)'}" if starts else "-"
    sessions = (
        _table(
            "sessions",
            ["session", "started (UTC)", "ended (UTC)", "mode", "network", "end", "signals"],
            [
                [
                    x.id,
                    _when(x.started_ms),
                    _when(x.ended_ms),
                    x.mode or "-",
                    x.network or "-",
                    x.end_reason or "-",
                    str(x.signals),
                ]
                for x in s.sessions
            ],
        )
        if s.sessions
        else _none("No sessions: no bot has written this journal yet.")
    )
    return (
        "<h1>hip3 journal report</h1>"
        f'<p class="meta">Journal <code>{_e(s.path)}</code> (schema {s.schema_version}, '
        f"integrity: {_e(s.integrity)}) &middot; {_e(chosen)} &middot; {_e(span)} &middot; "
        f"written {_e(_when(time.time_ns() // 1_000_000))}</p>"
        f"<h2>Sessions ({len(s.sessions)})</h2>{sessions}"
    )


def _section_pnl(data: ReportData) -> str:
    total = data.summary.total
    out = ["<h2>PnL and fees over time</h2>"]
    if not data.pnl:
        out.append(_none("No fills: nothing was traded in the chosen sessions."))
        return "".join(out)
    points = _thin(data.pnl, MAX_LINE_POINTS)
    one_day = points[-1].ts_ms - points[0].ts_ms < 86_400_000
    time_format = "%H:%M:%S" if one_day else "%m-%d %H:%M"
    chart = _chart(
        pygal.DateTimeLine,
        show_dots=len(points) < 60,
        dots_size=2.5,
        x_value_formatter=lambda d: d.strftime(time_format),
        y_title="USD (cumulative)",
        title=f"{len(data.pnl)} fills",
    )
    chart.add("realized PnL", [(_dt(p.ts_ms), float(p.realized)) for p in points])
    chart.add("fees", [(_dt(p.ts_ms), float(p.fees)) for p in points])
    chart.add("net (PnL - fees)", [(_dt(p.ts_ms), float(p.net)) for p in points])
    out.append(_svg(chart))
    out.append(
        _table(
            "totals",
            ["", "fills", "realized PnL", "fees", "net"],
            [
                [
                    "total",
                    str(total.fills),
                    str(total.realized_pnl),
                    str(total.fees),
                    str(total.net_pnl),
                ]
            ],
        )
    )
    return "".join(out)


def _section_markets(data: ReportData) -> str:
    s = data.summary
    out = ["<h2>Signals and fills per market</h2>"]
    markets = list(s.markets.values())
    if not markets:
        out.append(_none("No signals, orders or fills."))
        return "".join(out)
    series = {
        "signals": [m.signals for m in markets],
        "sent": [m.sent for m in markets],
        "blocked": [m.blocked for m in markets],
        "observation": [m.observation for m in markets],
        "fills": [m.fills for m in markets],
    }
    # only the series with counts: an observation journal has no sent, blocked or fills, and
    # one with orders but no signals or fills has nothing to draw here
    drawn = {name: counts for name, counts in series.items() if any(counts)}
    if drawn:
        top = max(max(counts) for counts in drawn.values())
        chart = _chart(
            pygal.Bar,
            y_title="count",
            print_values=len(markets) <= 12,
            y_labels=_count_ticks(top),
            colors=tuple(_MARKET_COLORS[name] for name in drawn),
        )
        chart.x_labels = [m.coin for m in markets]
        for name, counts in drawn.items():
            chart.add(name, counts)
        out.append(_svg(chart))

    def row(m: MarketStats) -> list[str]:
        return [
            m.coin,
            str(m.signals),
            _num(m.mean_edge_bps, ".2f"),
            str(m.sent),
            str(m.observation),
            str(m.blocked),
            str(m.other),
            str(m.entry_orders),
            str(m.entry_orders_filled),
            _pct(m.fill_rate),
            str(m.fills),
            str(m.realized_pnl),
            str(m.fees),
            str(m.net_pnl),
        ]

    out.append(
        _table(
            "markets",
            [
                "market",
                "signals",
                "mean edge bps",
                "sent",
                "observation",
                "blocked",
                "other",
                "entry orders",
                "filled",
                "fill rate",
                "fills",
                "realized PnL",
                "fees",
                "net",
            ],
            [row(m) for m in [*markets, s.total]],
            total=True,
        )
    )
    if s.total.blocked_by:
        gates = ", ".join(f"{g} {n}" for g, n in sorted(s.total.blocked_by.items()))
        out.append(f'<p class="note">Blocked by gate: {_e(gates)}.</p>')
    return "".join(out)


def _section_priority(data: ReportData) -> str:
    """IOC entries sent without and with a priority fee: what the fee bought (fill rate) and
    what it cost (px x sz x rate per fill; the exchange's fills do not carry it)."""
    pri = data.summary.priority
    out = ["<h2>Priority fees: fill rate of entries without and with one</h2>"]
    groups = [("without", pri.without), ("with", pri.with_priority)]
    if not any(g.entry_orders for _name, g in groups):
        out.append(_none("No entry orders."))
        return "".join(out)
    out.append(
        _table(
            "priority",
            ["priority", "entry orders", "filled", "fill rate", "mean rate bps", "paid USD"],
            [
                [
                    name,
                    str(g.entry_orders),
                    str(g.entry_orders_filled),
                    _pct(g.fill_rate),
                    "-" if g.mean_rate_bps is None else f"{g.mean_rate_bps:.2f}",
                    f"{g.paid_usd:.6f}",
                ]
                for name, g in groups
            ],
        )
    )
    out.append(
        f'<p class="note">Priority paid: {pri.paid_usd:.6f} USD (entries '
        f"{pri.with_priority.paid_usd:.6f}, exits {pri.exits_paid_usd:.6f}, strategy orders "
        f"{pri.strategy_paid_usd:.6f}), px &times; sz "
        "&times; the order's rate per fill; the exchange takes it in HYPE from the staking "
        "balance.</p>"
    )
    return "".join(out)


def _edge_bucket(edge: float) -> str:
    lows = [b for b in EDGE_BUCKETS_BPS if edge >= b]
    if not lows:
        return f"<{EDGE_BUCKETS_BPS[0]}"
    low = lows[-1]
    i = EDGE_BUCKETS_BPS.index(low)
    return f"{low}-{EDGE_BUCKETS_BPS[i + 1]}" if i + 1 < len(EDGE_BUCKETS_BPS) else f">={low}"


def _section_edge(data: ReportData) -> str:
    out = ["<h2>Edge at signal against realized result</h2>"]
    closed = [t for t in data.trips if t.closed and t.edge_bps is not None]
    unfilled = sum(1 for t in data.trips if not t.filled)
    still_open = sum(1 for t in data.trips if t.filled and not t.closed)
    counts = (
        f"{len(data.trips)} entries sent: {len(closed)} round trips closed, "
        f"{still_open} filled and not closed in the chosen sessions, {unfilled} not filled."
    )
    if not closed:
        out.append(_none(f"No closed round trips. {counts}" if data.trips else "No entries sent."))
        return "".join(out)
    shown = _thin(closed, MAX_SCATTER_POINTS)
    nets = [t.net_bps for t in shown]
    note = "" if len(shown) == len(closed) else f" (an even sample of {len(shown)})"
    chart = _chart(
        pygal.XY,
        stroke=False,
        dots_size=3,
        x_title="edge at signal (bps)",
        y_title="net result (bps)",
        title=f"{len(closed)} round trips{note}",
        include_x_axis=True,
        xrange=_padded(min(t.edge_bps for t in shown), max(t.edge_bps for t in shown)),
        range=_padded(min(0.0, *nets), max(0.0, *nets)),
        # axis labels and a point's tooltip (edge: net) alike
        x_value_formatter=lambda v: f"{round(v, 1):g}",
        value_formatter=lambda v: f"{round(v, 1):g}",
    )
    by_coin: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for t in shown:
        by_coin[t.coin].append((t.edge_bps, t.net_bps))
    for coin in sorted(by_coin):
        chart.add(coin, by_coin[coin])
    out.append(_svg(chart))
    out.append(
        f'<p class="note">{_e(counts)} Net result: closed PnL of entry and exit less '
        "the fees of both, in bps of the entry's notional.</p>"
    )
    groups: dict[str, list[RoundTrip]] = defaultdict(list)
    for t in closed:
        groups[_edge_bucket(t.edge_bps)].append(t)
    order = [_edge_bucket(b) for b in (-1.0, *EDGE_BUCKETS_BPS)]

    def row(label: str, trips: list[RoundTrip]) -> list[str]:
        n = len(trips)
        wins = sum(1 for t in trips if t.net_pnl > 0)
        return [
            label,
            str(n),
            f"{sum(t.edge_bps for t in trips) / n:.2f}",
            f"{sum(t.net_bps for t in trips) / n:+.2f}",
            str(sum((t.net_pnl for t in trips), Decimal(0))),
            _pct(wins / n),
        ]

    rows = [row(label, groups[label]) for label in order if groups.get(label)]
    rows.append(row("all", closed))
    out.append(
        _table(
            "edge",
            ["edge bps", "round trips", "mean edge bps", "mean net bps", "net PnL", "won"],
            rows,
            total=True,
        )
    )
    return "".join(out)


def _section_followups(data: ReportData) -> str:
    out = ["<h2>Observation follow-ups: gap to the oracle closed</h2>"]
    if not data.followups:
        out.append(
            _none("No observation follow-ups (they are journaled in observation mode only).")
        )
        return "".join(out)
    offsets = sorted({f.offset_s for stats in data.followups.values() for f in stats})
    coins = list(data.followups)
    chart = _chart(
        pygal.Bar,
        y_title="mean gap closed (%)",
        print_values=len(coins) * len(offsets) <= 24,
        value_formatter=lambda v: f"{v:+.1f}%",
    )
    chart.x_labels = coins
    for offset in offsets:
        values = []
        for coin in coins:
            f = next((x for x in data.followups[coin] if x.offset_s == offset), None)
            closed = None if f is None or f.mean_gap_closed is None else 100 * f.mean_gap_closed
            values.append(closed)
        chart.add(f"+{offset:g} s", values)
    out.append(_svg(chart))
    out.append(
        '<p class="note">Gap closed: the share of the oracle-to-mid gap at the signal that had '
        "closed by then (100% = converged, negative = widened). Move: the mid's change in the "
        "signal's direction, in bps of the mid at the signal.</p>"
    )
    rows = [
        [
            coin,
            f"+{f.offset_s:g} s",
            str(f.n),
            f"{f.mean_move_bps:+.2f}",
            _pct(f.mean_gap_closed, "+.1f"),
        ]
        for coin, stats in data.followups.items()
        for f in stats
    ]
    rows += [
        [
            "all",
            f"+{f.offset_s:g} s",
            str(f.n),
            f"{f.mean_move_bps:+.2f}",
            _pct(f.mean_gap_closed, "+.1f"),
        ]
        for f in data.summary.followups
    ]
    out.append(
        _table("followups", ["market", "after", "n", "mean move bps", "mean gap closed"], rows)
    )
    return "".join(out)


def _section_latency(data: ReportData) -> str:
    lat = data.latency
    out = ["<h2>Post latency: order sent to first answer</h2>"]
    if not lat.latencies_ms:
        text = "No orders answered."
        if lat.unanswered:
            text += f" {lat.unanswered} sent without an answer journaled."
        out.append(_none(text))
        return "".join(out)
    buckets = lat.buckets()
    last = max(i for i, (_label, n) in enumerate(buckets) if n)
    shown = buckets[: last + 1]
    chart = _chart(
        pygal.Bar,
        x_title="ms",
        y_title="orders",
        print_values=True,
        show_legend=False,
        title=f"{len(lat.latencies_ms)} orders answered",
        y_labels=_count_ticks(max(n for _label, n in shown)),
    )
    chart.x_labels = [label for label, _n in shown]
    chart.add("orders", [n for _label, n in shown])
    out.append(_svg(chart))
    out.append(
        _table(
            "latency-stats",
            ["", "answered", "no answer", "p50 ms", "p90 ms", "p99 ms", "max ms"],
            [
                [
                    "orders",
                    str(len(lat.latencies_ms)),
                    str(lat.unanswered),
                    str(lat.percentile(0.5)),
                    str(lat.percentile(0.9)),
                    str(lat.percentile(0.99)),
                    str(max(lat.latencies_ms)),
                ]
            ],
        )
    )
    out.append(_table("latency", ["ms", "orders"], [[label, str(n)] for label, n in shown]))
    return "".join(out)


def _section_events(data: ReportData) -> str:
    s = data.summary
    out = [f"<h2>Rejections ({sum(n for n, _b in s.rejections.values())})</h2>"]
    if s.rejections:
        out.append(
            _table(
                "rejections",
                ["reason", "count", "benign"],
                [[reason, str(n), str(b)] for reason, (n, b) in s.rejections.items()],
            )
        )
    else:
        out.append(_none("None."))
    out.append(f"<h2>HardStop events ({len(s.hardstops)})</h2>")
    if s.hardstops:
        out.append(
            _table(
                "hardstops",
                ["time (UTC)", "state", "reason", "session"],
                [[_when(h.ts_ms), h.state, h.reason or "-", h.session_id] for h in s.hardstops],
            )
        )
    else:
        out.append(_none("None."))
    return "".join(out)


def render_html(data: ReportData) -> str:
    sections = (
        _section_header,
        _section_pnl,
        _section_markets,
        _section_priority,
        _section_edge,
        _section_followups,
        _section_latency,
        _section_events,
    )
    body = "\n".join(section(data) for section in sections)
    title = f"hip3 journal report: {data.summary.path.name}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )
