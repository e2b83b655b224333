"""`hip3 journal --html`: the page's tables carry the journal's figures (worked out by hand in
`build`), the page is valid HTML that loads nothing from elsewhere, and thin journals (empty,
observation only) give a clear page."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hip3.cli import main
from hip3.journal import Journal
from hip3.journal.html_report import MAX_SCATTER_POINTS, load_report, render_html
from hip3.journal.trades import post_latency, round_trips


def _signal(j: Journal, coin: str, is_buy: bool, edge: float, outcome: str, **book) -> int:
    kw = dict(oracle_px=None, mark_px=None, bid_px=None, ask_px=None)
    kw.update(book)
    return j.signal(
        ts_ms=1_000, coin=coin, is_buy=is_buy, ref_px="1", edge_bps=edge, size="1",
        outcome=outcome, **kw,
    )  # fmt: skip


def _followup(j: Journal, sid: int, offset: float, bid: str | None, ask: str, oracle: str):
    j.signal_followup(
        sid, offset_s=offset, ts_ms=1_000 + int(offset * 1000), bid_px=bid, ask_px=ask,
        oracle_px=oracle, mark_px=None,
    )  # fmt: skip


def _order(j: Journal, cloid: str, coin: str, is_buy: bool, purpose: str) -> None:
    j.order(
        ts_ms=2_000, cloid=cloid, coin=coin, is_buy=is_buy, px="10", sz="1",
        reduce_only=purpose != "entry", purpose=purpose,
    )  # fmt: skip


def _fill(j: Journal, tid: int, ts: int, cloid: str, is_buy: bool, px: str, sz: str, fee: str,
          pnl: str, coin: str = "xyz:B") -> None:  # fmt: skip
    j.fill(
        ts_ms=ts, tid=tid, coin=coin, is_buy=is_buy, px=px, sz=sz, fee=fee, closed_pnl=pnl,
        oid=None, cloid=cloid, snapshot=False,
    )  # fmt: skip


def _answer(j: Journal, cloid: str, sent_ms: int, after_ms: int | None, event: str) -> None:
    j.order_transition(ts_ms=sent_ms, cloid=cloid, source="created", target="sent", event="sent")
    if after_ms is not None:
        j.order_transition(
            ts_ms=sent_ms + after_ms, cloid=cloid, source="sent", target=event, event=event
        )


def build(path: Path) -> tuple[str, str]:
    """An observation session, then a trading one; the figures the tests expect are worked
    out in the comments."""
    with Journal(path, mode="observation", network="sim") as j:
        s1 = j.session_id
        # xyz:A buy, mid 100, oracle 102 (gap +2):
        #   +1 s mid 101: half the gap closed, +100 bps; +3 s mid 102: all, +200 bps;
        #   +5 s mid 100: none, 0 bps
        a1 = _signal(j, "xyz:A", True, 10, "observation", bid_px="99", ask_px="101",
                     oracle_px="102")  # fmt: skip
        _followup(j, a1, 1, "100", "102", "102")
        _followup(j, a1, 3, "101", "103", "102")
        _followup(j, a1, 5, "99", "101", "102")
        # xyz:A sell, mid 200, oracle 196 (gap -4):
        #   +1 s mid 198 (gap -2): 50%, +100 bps; +3 s mid 201 (gap -5): -25%, -50 bps;
        #   +5 s mid 196: 100%, +200 bps
        a2 = _signal(j, "xyz:A", False, 30, "observation", bid_px="199", ask_px="201",
                     oracle_px="196")  # fmt: skip
        _followup(j, a2, 1, "197", "199", "196")
        _followup(j, a2, 3, "200", "202", "196")
        _followup(j, a2, 5, "195", "197", "196")
        # xyz:D buy, mid 10, oracle 10.5: +1 s mid 10.25 -> 50%, +250 bps; +3 s mid 10.5 ->
        # 100%, +500 bps; +5 s without a bid: not measurable
        d1 = _signal(j, "xyz:D", True, 50, "observation", bid_px="9.9", ask_px="10.1",
                     oracle_px="10.5")  # fmt: skip
        _followup(j, d1, 1, "10.2", "10.3", "10.5")
        _followup(j, d1, 3, "10.4", "10.6", "10.5")
        _followup(j, d1, 5, None, "10.6", "10.5")
    with Journal(path, mode="trading", network="sim") as j:
        s2 = j.session_id
        # xyz:B: two entries sent (edges 20 and 40), one signal blocked
        _signal(j, "xyz:B", True, 20, "sent")
        _order(j, "b-entry-1", "xyz:B", True, "entry")
        _signal(j, "xyz:B", True, 5, "blocked:existing_position")
        _signal(j, "xyz:B", True, 40, "sent")
        _order(j, "b-entry-2", "xyz:B", True, "entry")
        _order(j, "b-exit-1", "xyz:B", False, "flatten")
        _order(j, "b-exit-2", "xyz:B", False, "flatten")
        # xyz:C: the first entry (edge 8) went unfilled, the second (edge 12) filled and is
        # still open when the journal ends
        _signal(j, "xyz:C", True, 8, "sent")
        _order(j, "c-entry-1", "xyz:C", True, "entry")
        _signal(j, "xyz:C", False, 12, "sent")
        _order(j, "c-entry-2", "xyz:C", False, "entry")
        # round trip 1: buy 2 @ 10 in two fills (fees 0.01 each), sell 2 @ 10.5 (fee 0.02,
        # closed PnL 1.0): net 1.0 - 0.04 = 0.96 on 20 notional = +480 bps
        _fill(j, 1, 3_000, "b-entry-1", True, "10", "1", "0.01", "0")
        _fill(j, 2, 3_001, "b-entry-1", True, "10", "1", "0.01", "0")
        _fill(j, 3, 4_000, "b-exit-1", False, "10.5", "2", "0.02", "1.0")
        # round trip 2: buy 1 @ 10 (fee 0.01), sell 1 @ 9.9 (fee 0.01, PnL -0.1):
        # net -0.12 on 10 = -120 bps
        _fill(j, 4, 5_000, "b-entry-2", True, "10", "1", "0.01", "0")
        _fill(j, 5, 6_000, "b-exit-2", False, "9.9", "1", "0.01", "-0.1")
        _fill(j, 6, 7_000, "c-entry-2", False, "5", "1", "0.005", "0", coin="xyz:C")
        # post latency: answered after 3, 1, 12, 0 and 60 ms; one lost (its later
        # settlement is no answer), one with nothing after `sent`
        _answer(j, "b-entry-1", 10_000, 3, "filled_at_post")
        _answer(j, "b-exit-1", 11_000, 1, "fill")
        _answer(j, "b-entry-2", 12_000, 12, "filled_at_post")
        _answer(j, "b-exit-2", 13_000, 0, "filled_at_post")
        _answer(j, "c-entry-1", 14_000, 60, "rejected")
        _answer(j, "c-entry-2", 15_000, None, "")
        j.order_transition(ts_ms=15_500, cloid="c-entry-2", source="sent", target="unknown",
                           event="lost")  # fmt: skip
        j.order_transition(ts_ms=18_000, cloid="c-entry-2", source="unknown", target="filled",
                           event="resolve")  # fmt: skip
        _answer(j, "never-answered", 16_000, None, "")
        j.rejection(ts_ms=14_060, cloid="c-entry-1", coin="xyz:C", reason="could not match",
                    benign=True)  # fmt: skip
        j.hardstop(ts_ms=20_000, state="halted", reason="shutdown")
    return s1, s2


class _Page(HTMLParser):
    """Collects each table by id (rows of cell texts) and checks that every element the page
    opens is closed in order."""

    VOID = {"meta", "br", "img", "hr", "input", "link", "source", "col", "wbr", "area", "base"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.refs: list[str] = []  # every src/href/xlink:href value
        self.text: list[str] = []
        self.tags: set[str] = set()
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href") and value is not None:
                self.refs.append(value)
        if tag == "table":
            self._table = dict(attrs).get("id", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href") and value is not None:
                self.refs.append(value)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(page: str) -> _Page:
    p = _Page()
    p.feed(page)
    p.close()
    assert page.startswith("<!DOCTYPE html>")
    assert p.errors == [] and p.stack == [], (p.errors, p.stack)
    return p


def rows(p: _Page, table: str) -> list[list[str]]:
    """The body rows (the header row dropped)."""
    return p.tables[table][1:]


def assert_self_contained(page: str, p: _Page) -> None:
    # nothing is fetched: no script or stylesheet files, no images, no external references
    assert p.tags.isdisjoint({"script", "link", "img", "iframe", "object", "embed"}), p.tags
    assert all(not re.match(r"^(https?:)?//", ref) for ref in p.refs), p.refs
    assert all(not ref.startswith(("http", "//")) for ref in p.refs), p.refs
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page)
    assert not re.search(r"@import", page)


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    path = tmp_path / "journal.sqlite"
    build(path)
    return path


def test_page_tables_carry_the_journal_figures(journal: Path) -> None:
    page = render_html(load_report(journal))
    p = parse(page)
    assert_self_contained(page, p)
    assert [r[3] for r in rows(p, "sessions")] == ["observation", "trading"]
    assert rows(p, "totals") == [["total", "6", "0.9", "0.065", "0.835"]]
    markets = {r[0]: r for r in rows(p, "markets")}
    # market, signals, mean edge, sent, observation, blocked, other, entry orders, filled,
    # fill rate, fills, realized, fees, net
    assert markets["xyz:A"][:7] == ["xyz:A", "2", "20.00", "0", "2", "0", "0"]
    assert markets["xyz:B"] == [
        "xyz:B", "3", "21.67", "2", "0", "1", "0", "2", "2", "100.0%", "5", "0.9", "0.06", "0.84",
    ]  # fmt: skip
    assert markets["xyz:C"][7:] == ["2", "1", "50.0%", "1", "0", "0.005", "-0.005"]
    assert markets["xyz:D"][:5] == ["xyz:D", "1", "50.00", "0", "1"]
    # mean edge (10 + 30 + 50 + 20 + 5 + 40 + 8 + 12) / 8 = 21.875
    assert markets["TOTAL"] == [
        "TOTAL", "8", "21.88", "4", "3", "1", "0", "4", "3", "75.0%", "6", "0.9", "0.065", "0.835",
    ]  # fmt: skip
    # edge bucket, round trips, mean edge, mean net bps, net PnL, won
    assert rows(p, "edge") == [
        ["20-30", "1", "20.00", "+480.00", "0.96", "100.0%"],
        ["30-50", "1", "40.00", "-120.00", "-0.12", "0.0%"],
        ["all", "2", "30.00", "+180.00", "0.84", "50.0%"],
    ]
    text = "".join(p.text)
    assert "4 entries sent: 2 round trips closed, 1 filled and not closed" in text
    assert "1 not filled." in text
    # market, after, n, mean move bps, mean gap closed
    assert rows(p, "followups") == [
        ["xyz:A", "+1 s", "2", "+100.00", "+50.0%"],
        ["xyz:A", "+3 s", "2", "+75.00", "+37.5%"],
        ["xyz:A", "+5 s", "2", "+100.00", "+50.0%"],
        ["xyz:D", "+1 s", "1", "+250.00", "+50.0%"],
        ["xyz:D", "+3 s", "1", "+500.00", "+100.0%"],
        ["all", "+1 s", "3", "+150.00", "+50.0%"],
        ["all", "+3 s", "3", "+216.67", "+58.3%"],
        ["all", "+5 s", "2", "+100.00", "+50.0%"],
    ]
    # latencies 0, 1, 3, 12, 60 ms; the lost one and the silent one had no answer
    assert rows(p, "latency-stats") == [["orders", "5", "2", "3", "60", "60", "60"]]
    assert rows(p, "latency") == [
        ["0-1", "1"], ["1-2", "1"], ["2-5", "1"], ["5-10", "0"], ["10-20", "1"], ["20-50", "0"],
        ["50-100", "1"],
    ]  # fmt: skip
    assert rows(p, "rejections") == [["could not match", "1", "1"]]
    assert [r[1:3] for r in rows(p, "hardstops")] == [["halted", "shutdown"]]
    # one chart per section with data: PnL, markets, edge, follow-ups, latency
    assert page.count('<div class="chart"><svg') == 5


def test_round_trips_pair_signals_entries_and_exits(journal: Path) -> None:
    data = load_report(journal)
    trips = {t.cloid: t for t in data.trips}
    assert set(trips) == {"b-entry-1", "b-entry-2", "c-entry-1", "c-entry-2"}
    one, two = trips["b-entry-1"], trips["b-entry-2"]
    assert (one.edge_bps, one.closed, one.exit_fills, str(one.net_pnl)) == (20, True, 1, "0.96")
    assert (two.edge_bps, two.closed, str(two.net_pnl), two.net_bps) == (40, True, "-0.12", -120)
    assert one.entry_ms == 3_000 and one.exit_ms == 4_000
    unfilled, still_open = trips["c-entry-1"], trips["c-entry-2"]
    assert (unfilled.edge_bps, unfilled.filled) == (8, False)
    assert (still_open.edge_bps, still_open.filled, still_open.closed) == (12, True, False)


def test_session_choice_limits_the_page(journal: Path, tmp_path: Path, capsys) -> None:
    s1, s2 = build(tmp_path / "two.sqlite")
    out = tmp_path / "first.html"
    assert main(["journal", str(tmp_path / "two.sqlite"), "--html", str(out), "--session", s1]) == 0
    p = parse(out.read_text())
    assert [r[0] for r in rows(p, "sessions")] == [s1]
    assert [r[0] for r in rows(p, "markets")] == ["xyz:A", "xyz:D", "TOTAL"]
    assert "totals" not in p.tables and "edge" not in p.tables and "latency" not in p.tables
    assert len(rows(p, "followups")) == 8
    last = tmp_path / "last.html"
    assert (
        main(["journal", str(tmp_path / "two.sqlite"), "--html", str(last), "--session", "last"])
        == 0
    )
    p = parse(last.read_text())
    assert [r[0] for r in rows(p, "sessions")] == [s2]
    assert [r[0] for r in rows(p, "markets")] == ["xyz:B", "xyz:C", "TOTAL"]
    assert rows(p, "totals") == [["total", "6", "0.9", "0.065", "0.835"]]
    assert "followups" not in p.tables
    # the text summary takes the same choice
    capsys.readouterr()
    assert main(["journal", str(tmp_path / "two.sqlite"), "--session", s1]) == 0
    text = capsys.readouterr().out
    assert "sessions: 1" in text and s2 not in text and "xyz:A" in text and "xyz:B" not in text


def test_unknown_session_is_one_line_and_exit_2(journal: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "r.html"
    assert main(["journal", str(journal), "--html", str(out), "--session", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no session 'nope'" in err and str(journal) in err
    assert not out.exists()


def test_empty_journal_gives_a_clear_page(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    Journal(path, mode="trading", network="sim").close()
    page = render_html(load_report(path))
    p = parse(page)
    assert_self_contained(page, p)
    assert len(rows(p, "sessions")) == 1
    text = " ".join(p.text)
    for line in (
        "No fills: nothing was traded in the chosen sessions.",
        "No signals, orders or fills.",
        "No entries sent.",
        "No observation follow-ups (they are journaled in observation mode only).",
        "No orders answered.",
    ):
        assert line in text, line
    assert "<svg" not in page


def test_observation_only_journal_shows_followups_and_no_trading(tmp_path: Path) -> None:
    path = tmp_path / "obs.sqlite"
    with Journal(path, mode="observation", network="sim") as j:
        sid = _signal(j, "xyz:A", True, 10, "observation", bid_px="99", ask_px="101",
                      oracle_px="102")  # fmt: skip
        _followup(j, sid, 1, "100", "102", "102")
    page = render_html(load_report(path))
    p = parse(page)
    assert rows(p, "followups") == [
        ["xyz:A", "+1 s", "1", "+100.00", "+50.0%"],
        ["all", "+1 s", "1", "+100.00", "+50.0%"],
    ]
    text = " ".join(p.text)
    assert "No fills: nothing was traded" in text and "No entries sent." in text
    assert page.count('<div class="chart"><svg') == 2  # signals per market, follow-ups
    # the per-market chart draws only the series with counts
    markets_chart = page.split("<h2>Signals and fills per market</h2>")[1].split("</svg>")[0]
    assert ">observation<" in markets_chart and ">fills<" not in markets_chart


def test_cli_writes_the_page(journal: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report.html"
    assert main(["journal", str(journal), "--html", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "signals per market:" in stdout  # the text summary as well
    assert f"wrote the HTML report to {out}" in stdout
    p = parse(out.read_text(encoding="utf-8"))
    assert rows(p, "totals") == [["total", "6", "0.9", "0.065", "0.835"]]
    assert not list(tmp_path.glob(".report.html.*"))  # no partial file left beside it


@pytest.mark.parametrize("case", ["missing journal", "journal is a directory", "bad output"])
def test_bad_paths_are_one_line_and_exit_2(case: str, journal: Path, tmp_path: Path, capsys):
    source, out = journal, tmp_path / "report.html"
    if case == "missing journal":
        source = tmp_path / "nope.sqlite"
    elif case == "journal is a directory":
        source = tmp_path
    else:
        out = tmp_path / "no-such-dir" / "report.html"
    assert main(["journal", str(source), "--html", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hip3 journal: "), err
    assert "Traceback" not in err
    assert str(out if case == "bad output" else source) in err
    assert not out.exists()


def test_many_round_trips_are_sampled_in_the_chart_not_the_table(tmp_path: Path) -> None:
    path = tmp_path / "many.sqlite"
    n = MAX_SCATTER_POINTS + 200
    with Journal(path, mode="trading", network="sim") as j:
        for k in range(n):
            _signal(j, "xyz:B", True, 10 + k % 7, "sent")
            _order(j, f"e{k}", "xyz:B", True, "entry")
            _fill(j, 2 * k + 1, 10 * k, f"e{k}", True, "10", "1", "0", "0")
            _fill(j, 2 * k + 2, 10 * k + 5, f"x{k}", False, "10.1", "1", "0", "0.1")
    data = load_report(path)
    p = parse(render_html(data))
    assert rows(p, "edge")[-1][:2] == ["all", str(n)]
    assert rows(p, "edge")[-1][3] == "+100.00"  # 0.1 on 10 notional, no fees
    page = render_html(data)
    scatter = page.split("<h2>Edge at signal against realized result</h2>")[1].split("</svg>")[0]
    assert f"{n} round trips (an even sample of {MAX_SCATTER_POINTS})" in scatter
    assert scatter.count("<circle") == MAX_SCATTER_POINTS
    # a point's value is the browser's own tooltip, no script needed
    assert "<title>10: 100</title>" in scatter


def test_latency_buckets_and_percentiles(journal: Path) -> None:
    from hip3.journal.report import reading

    with reading(journal) as (conn, _ok):
        lat = post_latency(conn)
        assert len(round_trips(conn)) == 4
    assert sorted(lat.latencies_ms) == [0, 1, 3, 12, 60] and lat.unanswered == 2
    assert (lat.percentile(0.5), lat.percentile(0.9), lat.percentile(0.2)) == (3, 60, 0)
    buckets = dict(lat.buckets())
    assert buckets["0-1"] == 1 and buckets["50-100"] == 1 and buckets[">=5000"] == 0
    assert sum(buckets.values()) == 5


def test_a_version_1_journal_gives_a_page_whole_or_by_session(tmp_path: Path) -> None:
    from .test_trust import write_v1

    path = tmp_path / "old.sqlite"
    write_v1(path)
    for session in (None, "old", "last"):
        data = load_report(path, session=session)
        p = parse(render_html(data))
        assert [r[0] for r in rows(p, "sessions")] == ["old"]
        # c1 was sent at +900 ms and filled at +1400 ms (its answer: 500 ms)
        assert data.latency.latencies_ms == [500]
        assert rows(p, "latency-stats")[0][1:3] == ["1", "0"]
