"""The journal summary, CSV export and the `hip3 journal` command, on a journal built here
with hand-computed expectations."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from hip3.cli import main
from hip3.journal import Journal, JournalError
from hip3.journal.report import export_csv, load_summary, render


def _sig(j: Journal, coin: str, is_buy: bool, edge: float, outcome: str, **book) -> int:
    kw = dict(oracle_px=None, mark_px=None, bid_px=None, ask_px=None)
    kw.update(book)
    return j.signal(
        ts_ms=1_000,
        coin=coin,
        is_buy=is_buy,
        ref_px="1",
        edge_bps=edge,
        size="1",
        outcome=outcome,
        **kw,
    )


def _fu(j: Journal, sid: int, offset: float, bid: str | None, ask: str | None, oracle: str):
    j.signal_followup(
        sid,
        offset_s=offset,
        ts_ms=1_000 + int(offset * 1000),
        bid_px=bid,
        ask_px=ask,
        oracle_px=oracle,
        mark_px=None,
    )


def _order(j: Journal, cloid: str, coin: str, purpose: str) -> None:
    j.order(
        ts_ms=2_000,
        cloid=cloid,
        coin=coin,
        is_buy=True,
        px="10",
        sz="1",
        reduce_only=purpose == "flatten",
        purpose=purpose,
    )


def _fill(j: Journal, tid: int, coin: str, cloid: str | None, fee: str, pnl: str) -> None:
    j.fill(
        ts_ms=3_000 + tid,
        tid=tid,
        coin=coin,
        is_buy=True,
        px="10",
        sz="1",
        fee=fee,
        closed_pnl=pnl,
        oid=None,
        cloid=cloid,
        snapshot=cloid is None,
    )


def build(path: Path) -> tuple[str, str]:
    """Two sessions. Expected figures are worked out in the comments."""
    with Journal(path, mode="observation", network="sim") as j:
        s1 = j.session_id
        # xyz:A: 3 observation (10, 20, 30 bps) + 1 blocked (4 bps): mean 16
        a1 = _sig(j, "xyz:A", True, 10, "observation", bid_px="99", ask_px="101", oracle_px="102")
        a2 = _sig(j, "xyz:A", False, 20, "observation", bid_px="199", ask_px="201", oracle_px="196")
        a3 = _sig(j, "xyz:A", True, 30, "observation", ask_px="5", oracle_px="6")
        _sig(j, "xyz:A", True, 4, "blocked:bbo_age")
        # a1 (buy, mid 100, gap +2): +1s mid 101 -> +100 bps, half the gap closed;
        #                            +3s mid 102 -> +200 bps, gap fully closed
        _fu(j, a1, 1, "100", "102", "102")
        _fu(j, a1, 3, "101", "103", "102")
        # a2 (sell, mid 200, gap -4): +1s mid 198 -> +100 bps, gap -2 => 0.5 closed;
        #                             +3s mid 201 -> -50 bps, gap -5 => -0.25 (widened)
        _fu(j, a2, 1, "197", "199", "196")
        _fu(j, a2, 3, "200", "202", "196")
        _fu(j, a3, 1, "5", "6", "6")  # no bid at signal time: not measurable
    with Journal(path, mode="trading", network="sim") as j:
        s2 = j.session_id
        # xyz:B: 2 sent (15, 25) + 1 blocked (5): mean 15
        b1 = _sig(j, "xyz:B", True, 15, "sent", bid_px="9", ask_px="11", oracle_px="12")
        _sig(j, "xyz:B", True, 25, "sent")
        _sig(j, "xyz:B", False, 5, "blocked:oi_cap")
        _fu(j, b1, 1, "20", "22", "12")  # a sent signal: not in the observation follow-ups
        # 3 entry orders, 2 of them filled (c1 twice, partially) -> 2/3; c4 is a flatten
        for c in ("c1", "c2", "c3"):
            _order(j, c, "xyz:B", "entry")
        _order(j, "c4", "xyz:B", "flatten")
        j.order_transition(ts_ms=2_001, cloid="c1", source="pending", target="resting", event="ack")
        _fill(j, 1, "xyz:B", "c1", "0.1", "0")
        _fill(j, 2, "xyz:B", "c1", "0.05", "0")
        _fill(j, 3, "xyz:B", "c3", "0.2", "0")
        _fill(j, 4, "xyz:B", "c4", "0.3", "1.25")  # B: pnl 1.25, fees 0.65, net 0.60
        _fill(j, 5, "xyz:A", None, "0.01", "-0.3")  # A: pnl -0.3, fees 0.01, net -0.31
        _fill(j, 5, "xyz:A", None, "0.01", "-0.3")  # duplicate tid: counted once
        j.position_snapshot(ts_ms=4_000, positions={"xyz:B": ("1", "10")})
        j.hardstop(ts_ms=5_000, state="tripped", reason="loss limit")
        j.hardstop(ts_ms=6_000, state="halted", reason="")
    return s1, s2


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    path = tmp_path / "journal.sqlite"
    build(path)
    return path


def test_summary_numbers(journal: Path) -> None:
    s = load_summary(journal)
    assert [(x.mode, x.signals) for x in s.sessions] == [("observation", 4), ("trading", 3)]
    a, b = s.markets["xyz:A"], s.markets["xyz:B"]
    assert (a.signals, a.mean_edge_bps, a.observation, a.blocked, a.sent) == (4, 16.0, 3, 1, 0)
    assert (b.signals, b.mean_edge_bps, b.sent, b.blocked, b.observation) == (3, 15.0, 2, 1, 0)
    assert a.blocked_by == {"bbo_age": 1} and b.blocked_by == {"oi_cap": 1}
    assert (b.entry_orders, b.entry_orders_filled) == (3, 2)
    assert b.fill_rate == pytest.approx(2 / 3)
    assert a.fill_rate is None
    assert (b.fills, b.realized_pnl, b.fees, b.net_pnl) == (
        4,
        Decimal("1.25"),
        Decimal("0.65"),
        Decimal("0.60"),
    )
    assert (a.fills, a.realized_pnl, a.fees, a.net_pnl) == (
        1,
        Decimal("-0.3"),
        Decimal("0.01"),
        Decimal("-0.31"),
    )
    t = s.total
    assert (t.signals, t.sent, t.observation, t.blocked) == (7, 2, 3, 2)
    assert (t.realized_pnl, t.fees, t.net_pnl) == (
        Decimal("0.95"),
        Decimal("0.66"),
        Decimal("0.29"),
    )
    assert [(f.offset_s, f.n) for f in s.followups] == [(1.0, 2), (3.0, 2)]
    assert s.followups[0].mean_move_bps == pytest.approx(100.0)
    assert s.followups[0].mean_gap_closed == pytest.approx(0.5)
    assert s.followups[1].mean_move_bps == pytest.approx(75.0)
    assert s.followups[1].mean_gap_closed == pytest.approx(0.375)
    assert [(h.state, h.reason) for h in s.hardstops] == [("tripped", "loss limit"), ("halted", "")]


def test_rendered_summary_shows_the_figures(journal: Path) -> None:
    text = render(load_summary(journal))
    lines = text.splitlines()

    def row(prefix: str, section: str) -> list[str]:
        start = lines.index(section)
        return next(ln.split() for ln in lines[start:] if ln.strip().startswith(prefix))

    assert "sessions: 2" in lines
    assert row("xyz:A", "signals per market:") == ["xyz:A", "4", "16.00", "0", "3", "1", "0"]
    assert row("TOTAL", "signals per market:") == ["TOTAL", "7", "15.57", "2", "3", "2", "0"]
    assert "  blocked by gate: bbo_age=1, oi_cap=1" in lines
    assert row("xyz:B", "orders and PnL per market:") == [
        "xyz:B",
        "3",
        "2",
        "66.7%",
        "4",
        "1.25",
        "0.65",
        "0.60",
    ]
    assert row("TOTAL", "orders and PnL per market:") == [
        "TOTAL",
        "3",
        "2",
        "66.7%",
        "5",
        "0.95",
        "0.66",
        "0.29",
    ]
    assert row("+3s", "observation follow-ups (book move towards the oracle):") == [
        "+3s",
        "2",
        "+75.00",
        "+37.5%",
    ]
    assert "HardStop events: 2" in lines
    assert any("tripped (loss limit)" in ln for ln in lines)


def test_empty_journal_summarises_without_errors(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    text = render(load_summary(path))
    assert "sessions: 1" in text
    assert text.count("(none)") == 2 and "(no orders or fills)" in text
    assert "HardStop events: 0" in text


def test_csv_export_writes_every_table_exactly(journal: Path, tmp_path: Path) -> None:
    s1, s2 = load_summary(journal).sessions[0].id, load_summary(journal).sessions[1].id
    out = tmp_path / "csv"
    written = export_csv(journal, out)
    assert sorted(p.name for p in written) == sorted(
        f"{t}.csv"
        for t in (
            "sessions",
            "signals",
            "signal_followups",
            "orders",
            "order_transitions",
            "fills",
            "position_snapshots",
            "positions",
            "hardstops",
            "rejections",
        )
    )

    def read(name: str) -> list[dict[str, str]]:
        with (out / f"{name}.csv").open(newline="") as fh:
            return list(csv.DictReader(fh))

    assert [r["id"] for r in read("sessions")] == [s1, s2]
    signals = read("signals")
    assert len(signals) == 7
    assert signals[0] == {
        "id": "1",
        "ts_ms": "1000",
        "ref_px": "1",
        "size": "1",
        "session_id": s1,
        "coin": "xyz:A",
        "is_buy": "1",
        "bid_px": "99",
        "ask_px": "101",
        "oracle_px": "102",
        "mark_px": "",
        "edge_bps": "10.0",
        "outcome": "observation",
    }
    fills = read("fills")
    assert [(r["tid"], r["fee"], r["closed_pnl"], r["cloid"]) for r in fills] == [
        ("1", "0.1", "0", "c1"),
        ("2", "0.05", "0", "c1"),
        ("3", "0.2", "0", "c3"),
        ("4", "0.3", "1.25", "c4"),
        ("5", "0.01", "-0.3", ""),
    ]
    assert sum(Decimal(r["closed_pnl"]) for r in fills) == Decimal("0.95")
    assert len(read("signal_followups")) == 6
    assert len(read("orders")) == 4
    assert read("order_transitions")[0]["event"] == "ack"
    assert read("positions") == [
        {"snapshot_id": "1", "coin": "xyz:B", "size": "1", "entry_px": "10"}
    ]
    assert [r["state"] for r in read("hardstops")] == ["tripped", "halted"]


def test_summary_reads_while_a_writer_is_open(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    _sig(j, "xyz:A", True, 10, "sent")
    j.flush()
    _sig(j, "xyz:A", True, 10, "sent")  # buffered, not committed: not visible yet
    assert load_summary(path).markets["xyz:A"].signals == 1
    j.close()
    assert load_summary(path).markets["xyz:A"].signals == 2


# ---- the command ----


def test_cli_prints_summary_and_exports(journal: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "export"
    assert main(["journal", str(journal), "--csv", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"journal {journal}" in captured.out
    assert "66.7%" in captured.out
    assert f"exported 10 tables to {out}" in captured.out
    assert (out / "fills.csv").is_file()
    assert captured.err == ""


def test_cli_takes_the_path_from_config(journal: Path, tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[journal]\npath = "{journal}"\n')
    assert main(["journal", "--config", str(cfg)]) == 0
    assert "sessions: 2" in capsys.readouterr().out
    cfg.write_text("[journal]\npath = 5\n")
    assert main(["journal", "--config", str(cfg)]) == 2
    assert "journal.path" in capsys.readouterr().err


def test_cli_missing_file_is_a_clear_error(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope" / "journal.sqlite"
    assert main(["journal", str(missing)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == f"hip3 journal: {missing}: no journal at this path"
    assert not missing.parent.exists()  # reading never creates anything


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"SQLite format 3\x00" + b"\xff" * 2000, "not a readable journal"),
        (b"hello, this is a text file\n" * 50, "not a readable journal"),
        (b"", "not a hip3 journal"),
    ],
)
def test_cli_corrupt_file_is_a_clear_error(
    tmp_path: Path, capsys, content: bytes, message: str
) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(content)
    assert main(["journal", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hip3 journal: {bad}: {message}")
    assert "Traceback" not in err


def test_cli_directory_instead_of_file(tmp_path: Path, capsys) -> None:
    assert main(["journal", str(tmp_path)]) == 2
    assert f"{tmp_path}: not a file" in capsys.readouterr().err


def test_load_summary_raises_journal_error(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no journal at this path"):
        load_summary(tmp_path / "x.sqlite")


def test_priority_fill_rates_and_what_was_paid(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path, mode="trading", network="sim") as j:

        def order(cloid: str, purpose: str, rate: int | None) -> None:
            j.order(
                ts_ms=2_000,
                cloid=cloid,
                coin="xyz:B",
                is_buy=True,
                px="10",
                sz="3",
                reduce_only=purpose == "flatten",
                purpose=purpose,
                priority_rate=rate,
            )

        def fill(tid: int, cloid: str, px: str, sz: str) -> None:
            j.fill(
                ts_ms=3_000 + tid,
                tid=tid,
                coin="xyz:B",
                is_buy=True,
                px=px,
                sz=sz,
                fee="0",
                closed_pnl="0",
                oid=None,
                cloid=cloid,
                snapshot=False,
            )

        order("p1", "entry", 80_000)  # 8 bps, filled in two pieces
        order("p2", "entry", 40_000)  # 4 bps, filled once
        order("p3", "entry", 80_000)  # 8 bps, never filled: pays nothing
        order("n1", "entry", None)  # no priority, filled
        order("n2", "entry", None)  # no priority, not filled
        order("x1", "flatten", 20_000)  # an exit at 2 bps
        fill(1, "p1", "10", "2")  # 20 x 0.0008 = 0.016
        fill(2, "p1", "10.5", "1")  # 10.5 x 0.0008 = 0.0084
        fill(2, "p1", "10.5", "1")  # the same fill again: once
        fill(3, "p2", "12", "0.5")  # 6 x 0.0004 = 0.0024
        fill(4, "n1", "10", "1")
        fill(5, "x1", "9", "4")  # 36 x 0.0002 = 0.0072
    pri = load_summary(path).priority
    assert (pri.with_priority.entry_orders, pri.with_priority.entry_orders_filled) == (3, 2)
    assert (pri.without.entry_orders, pri.without.entry_orders_filled) == (2, 1)
    assert pri.with_priority.fill_rate == pytest.approx(2 / 3)
    assert pri.without.fill_rate == pytest.approx(0.5)
    assert pri.with_priority.mean_rate_bps == Decimal(20) / 3  # (8 + 4 + 8) / 3
    assert pri.with_priority.paid_usd == Decimal("0.0268")
    assert pri.exits_paid_usd == Decimal("0.0072")
    assert pri.paid_usd == Decimal("0.0340")
    lines = render(load_summary(path)).splitlines()
    start = lines.index("priority fees (IOC entries without and with one):")
    assert lines[start + 2].split() == ["without", "2", "1", "50.0%", "0.00", "0.000000"]
    assert lines[start + 3].split() == ["with", "3", "2", "66.7%", "6.67", "0.026800"]
    assert lines[start + 4].startswith("  priority paid: 0.034000 USD (entries 0.026800,")


def test_a_version_2_journal_reads_as_no_priority_and_migrates(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "v2.sqlite"
    with Journal(path, mode="trading", network="sim") as j:
        _order(j, "c1", "xyz:B", "entry")
        _fill(j, 1, "xyz:B", "c1", "0.1", "0")
    # make it a version 2 journal: no priority_rate column
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE orders DROP COLUMN priority_rate")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    summary = load_summary(path)
    assert summary.schema_version == 2
    assert (summary.priority.without.entry_orders, summary.priority.with_priority.entry_orders) == (
        1,
        0,
    )
    assert summary.priority.paid_usd == 0
    with Journal(path, mode="trading", network="sim") as j:  # the next writer migrates it
        j.order(
            cloid="c2",
            coin="xyz:B",
            is_buy=True,
            px="10",
            sz="1",
            reduce_only=False,
            purpose="entry",
            priority_rate=10_000,
        )
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    assert db.execute("SELECT cloid, priority_rate FROM orders ORDER BY id").fetchall() == [
        ("c1", None),
        ("c2", 10_000),
    ]


@pytest.mark.parametrize("rate", [0, -1, 10**8 + 1])
def test_an_impossible_priority_rate_is_refused_at_the_caller(tmp_path: Path, rate: int) -> None:
    with Journal(tmp_path / "j.sqlite") as j, pytest.raises(ValueError, match="priority_rate"):
        j.order(
            cloid="c1",
            coin="xyz:B",
            is_buy=True,
            px="10",
            sz="1",
            reduce_only=False,
            purpose="entry",
            priority_rate=rate,
        )


def test_the_html_report_shows_the_priority_table(tmp_path: Path) -> None:
    from hip3.journal.html_report import load_report, render_html

    path = tmp_path / "j.sqlite"
    with Journal(path, mode="trading", network="sim") as j:
        for cloid, rate in (("p1", 80_000), ("n1", None)):
            j.order(
                ts_ms=2_000,
                cloid=cloid,
                coin="xyz:B",
                is_buy=True,
                px="10",
                sz="1",
                reduce_only=False,
                purpose="entry",
                priority_rate=rate,
            )
        _fill(j, 1, "xyz:B", "p1", "0", "0")  # 10 x 1 at 8 bps: 0.008
    page = render_html(load_report(path))
    table = page.split('<table id="priority">')[1].split("</table>")[0]
    cells = [c.split(">")[-1] for c in table.split("</td>")[:-1]]
    assert cells == [
        *("without", "1", "0", "0.0%", "0.00", "0.000000"),
        *("with", "1", "1", "100.0%", "8.00", "0.008000"),
    ]
    assert "Priority paid: 0.008000 USD" in page
