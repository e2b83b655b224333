"""The example ALO maker under `hip3 backtest`: by class name on the command line and through
the `[strategy]` configuration key, on the recording the real bot made (`bot_recording`); its
quotes rest in the core, are modified and cancelled through their machines, the stop leaves
nothing open, and the journal is the same bytes twice. A recorded book that moves through a
resting quote fills it at the quote's own price as a maker (docs/guides/backtest.md)."""

from __future__ import annotations

import gzip
import json
import sqlite3
from decimal import Decimal
from pathlib import Path

from hip3.backtest.engine import run_backtest
from hip3.cli import main
from hip3.config import load_config

ROOT = Path(__file__).resolve().parents[2]
MAKER = str(ROOT / "examples" / "maker.py") + ":AloMaker"
COIN = "xyz:AAA"
# quotes just inside the recorded book (the simulator's xyz:AAA is quoted about 5 bps either
# side of 25), requoted on every 1 bps the oracle moves
TIGHT = {"coin": COIN, "size": 1, "half_spread_bps": 1, "edge_bps": 0, "requote_bps": 1}


def _journal_rows(path: Path) -> tuple[list[tuple], list[tuple], list[tuple]]:
    db = sqlite3.connect(path)
    orders = db.execute("SELECT cloid, purpose, is_buy, px, sz FROM orders ORDER BY id").fetchall()
    moves = db.execute("SELECT cloid, target FROM order_transitions ORDER BY id").fetchall()
    fills = db.execute(
        "SELECT o.purpose, f.px, f.sz, f.fee FROM fills f JOIN orders o ON o.cloid = f.cloid"
    ).fetchall()
    db.close()
    return orders, moves, fills


def _assert_ends_clean(s: dict) -> None:
    assert s["fatal"] is None and s["stop"] == "stopped", s
    assert s["reconciled"] is True, s
    assert s["positions"] == s["exchange_positions"] == {}, s
    assert s["open_orders"] == s["exchange_open_orders"] == [], s


def _assert_maker_fees(fills: list[tuple]) -> None:
    """A quote's fill pays the simulated account's maker fee, 1.5 bps x 2 at the xyz dex's
    scale of 1 (the Context's maker_fee_bps); a flatten's the taker fee, 9 bps."""
    for purpose, px, sz, fee in fills:
        rate = Decimal("0.0003") if purpose == "strategy" else Decimal("0.0009")
        assert Decimal(fee) == (Decimal(px) * Decimal(sz) * rate).quantize(Decimal(fee)), fee


def test_the_example_maker_replays_a_bot_recording_by_class_name(bot_recording, tmp_path, capsys):
    path, _live = bot_recording
    config = tmp_path / "maker.toml"
    config.write_text("[strategy.params]\n" + "".join(f"{k} = {v!r}\n" for k, v in TIGHT.items()))
    journal, summary = tmp_path / "maker.sqlite", tmp_path / "summary.json"
    code = main(
        [
            "backtest", "--data", str(path), "--strategy", MAKER, "--config", str(config),
            "--journal", str(journal), "--summary-json", str(summary),
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    s = json.loads(summary.read_text())
    assert "strategy orders: " in out and s["entries_submitted"] == 0
    _assert_ends_clean(s)
    orders, moves, fills = _journal_rows(journal)
    quotes = [o for o in orders if o[1] == "strategy"]
    assert len(quotes) == s["strategy_orders_submitted"] >= 4, s
    assert {o[2] for o in quotes} == {0, 1}  # both sides quoted
    assert s["strategy_modifies_submitted"] >= 1, s
    targets = [t for _c, t in moves]
    assert "resting" in targets and "cancelled" in targets
    # every quote ended: none is left resting or unknown
    last = {cloid: target for cloid, target in moves}
    assert set(last.values()) <= {"filled", "cancelled", "rejected"}, last
    _assert_maker_fees(fills)


def test_the_same_maker_from_the_config_gives_the_same_journal_bytes(bot_recording, tmp_path):
    path, _live = bot_recording
    cfg = load_config(overrides={"strategy": {"name": MAKER, "params": TIGHT}})
    first = run_backtest(cfg, [path], journal=tmp_path / "a.sqlite")
    again = run_backtest(cfg, [path], journal=tmp_path / "b.sqlite")
    assert again.summary == first.summary
    assert first.summary["strategy_orders_submitted"] >= 4, first.summary
    _assert_ends_clean(first.summary)
    assert (tmp_path / "a.sqlite").read_bytes() == (tmp_path / "b.sqlite").read_bytes()


def _line(t_ns: int, channel: str, data: dict) -> bytes:
    return json.dumps({"t": t_ns, "f": {"channel": channel, "data": data}}).encode() + b"\n"


def _book_through_the_bid(path: Path) -> None:
    """xyz:AAA every 100 ms for 4 s: the book 24.987 / 25.013 around an oracle of 25, except
    from 2.5 s to 2.8 s, when the recorded ask falls to 24.98 (below any bid the maker rests
    inside the spread) and the bid to 24.97."""
    start = 1_767_225_600_000_000_000
    lines = []
    for i in range(40):
        t = start + i * 100_000_000
        ms = t // 1_000_000
        bid, ask = ("24.97", "24.98") if 25 <= i < 28 else ("24.987", "25.013")
        lines.append(
            _line(
                t,
                "bbo",
                {
                    "coin": COIN,
                    "time": ms,
                    "bbo": [{"px": bid, "sz": "50", "n": 1}, {"px": ask, "sz": "50", "n": 1}],
                },
            )
        )
        ctx = {"oraclePx": "25", "markPx": "25", "midPx": "25", "funding": "0"}
        ctx |= {"openInterest": "0", "prevDayPx": "25", "dayNtlVlm": "0", "premium": "0"}
        ctx |= {"impactPxs": [bid, ask], "dayBaseVlm": "0"}
        lines.append(_line(t + 1_000_000, "activeAssetCtx", {"coin": COIN, "ctx": ctx}))
    path.write_bytes(gzip.compress(b"".join(lines)))


def test_a_recorded_book_moving_through_a_resting_quote_fills_it_as_a_maker(tmp_path):
    data = tmp_path / "through.ndjson.gz"
    _book_through_the_bid(data)
    cfg = load_config(
        overrides={
            "markets": [{"coin": COIN}],
            "strategy": {"name": MAKER, "params": {**TIGHT, "half_spread_bps": 3}},
        }
    )
    result = run_backtest(cfg, [data], journal=tmp_path / "j.sqlite")
    s = result.summary
    _assert_ends_clean(s)  # the stop flattened what the fill bought
    orders, moves, fills = _journal_rows(tmp_path / "j.sqlite")
    by_cloid = {o[0]: o for o in orders}
    bought = [f for f in fills if f[0] == "strategy"]
    assert len(bought) == 1, (fills, moves)
    _purpose, px, sz, _fee = bought[0]
    # the resting bid, 3 bps under 25 rounded down to the tick, filled at its own price
    (bid,) = {o[3] for o in orders if o[1] == "strategy" and o[2] == 1 and o[3] == px}
    assert Decimal(bid) == Decimal("24.992") and Decimal(sz) == 1
    assert [f[0] for f in fills] == ["strategy", "flatten"]
    # the summary tells the quotes from the stop's flatten
    quotes = [o for o in orders if o[1] == "strategy"]
    assert s["strategy_orders_submitted"] == len(quotes) and s["exits_submitted"] == 1, s
    _assert_maker_fees(fills)
    filled = [c for c, t in moves if t == "filled" and by_cloid[c][1] == "strategy"]
    assert len(filled) == 1


def test_a_strategy_the_backtest_cannot_run_is_one_line(tmp_path, capsys):
    data = tmp_path / "through.ndjson.gz"
    _book_through_the_bid(data)
    journal = str(tmp_path / "j.sqlite")
    for name, needle in (
        ("fancy", "--strategy fancy: expected full, basic, 'package.module:Class'"),
        (str(tmp_path / "none.py") + ":Maker", "configuration error: "),
    ):
        code = main(["backtest", "--data", str(data), "--strategy", name, "--journal", journal])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
