"""`hip3 backtest`: a recording of the real bot replayed through the same bot against the
simulator's core; same inputs, same journal bytes; the l2Book archive; one-line errors."""

from __future__ import annotations

import gzip
import importlib.util
import os
import random
import subprocess
import sys
from pathlib import Path

import lz4.frame
import pytest

from hip3.backtest.clock import VirtualTime
from hip3.backtest.data import DataError, iso_ns, open_data
from hip3.backtest.engine import BacktestError, run_backtest
from hip3.cli import main
from hip3.config import load_config
from hip3.sim.timing import Sequencer, TimingConfig

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "data" / "l2book_sample.lz4"


def test_the_built_in_strategy_trades_a_bot_recording(bot_recording, tmp_path, capsys) -> None:
    path, _live = bot_recording
    result = run_backtest(load_config(), [path], journal=tmp_path / "j.sqlite")
    s = result.summary
    assert result.frames > 50 and result.frames_to_bot == result.frames
    assert s["signals"] > 0 and s["entries_submitted"] > 0
    assert s["fatal"] is None and s["stop"] == "stopped"
    assert s["position_divergences"] == []
    assert s["positions"] == s["exchange_positions"]
    assert main(["journal", str(tmp_path / "j.sqlite")]) == 0
    report = capsys.readouterr().out
    assert "backtest-seed-7" in report and "signals per market" in report


def test_same_data_seed_and_config_give_the_same_journal_bytes(bot_recording, tmp_path):
    """In this process and in another one with another hash seed (set and dict orders that
    depend on string hashes would show), with competing takers and the timing model on."""
    path, _live = bot_recording
    result = run_backtest(
        load_config(), [path], journal=tmp_path / "a.sqlite", scenario="contested"
    )
    assert result.summary["entries_submitted"] > 0
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    command = [sys.executable, "-m", "hip3", "backtest", "--data", str(path)]
    command += ["--scenario", "contested", "--journal", str(tmp_path / "b.sqlite")]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
    first = (tmp_path / "a.sqlite").read_bytes()
    assert first == (tmp_path / "b.sqlite").read_bytes()
    other = run_backtest(
        load_config(), [path], journal=tmp_path / "c.sqlite", seed=8, scenario="contested"
    )
    assert other.summary["signals"] > 0
    assert (tmp_path / "c.sqlite").read_bytes() != first  # the seed is really used


class _CountingTime(VirtualTime):
    armed = 0

    def call_at(self, when_ms, callback):
        self.armed += 1
        if self.armed > 10_000:
            raise AssertionError("the same instant was armed again and again")
        return super().call_at(when_ms, callback)


def test_timers_at_unix_milliseconds_fire_once() -> None:
    """Unix ms as floats round: a timer must not fire before the time its owner waits for
    (the timing model re-armed the same instant forever before the slack)."""
    time = _CountingTime(1_767_225_600_123_456_789)
    answers: list[float] = []
    seq = Sequencer(TimingConfig(), clock=time, sink=lambda _e: None, rng=random.Random(1))
    for i in range(50):
        seq.answer_info(lambda i=i: i, lambda _r: answers.append(time.now_ms()))
    while (due := time.next_due_ns()) is not None:
        time.run_until(due)
    assert len(answers) == 50 and time.armed < 200


def test_the_archive_sample_replays_with_the_mid_as_oracle(tmp_path: Path) -> None:
    result = run_backtest(
        load_config(), [SAMPLE], journal=tmp_path / "j.sqlite", oracle_from_mid=True
    )
    assert result.frames == 120 and result.frames_to_bot == 240  # each snapshot: bbo and ctx
    assert result.summary["ready_latency_ms"]  # READY on archive data alone
    without = run_backtest(load_config(), [SAMPLE], journal=tmp_path / "k.sqlite")
    assert without.summary["signals"] == 0  # no oracle, no READY-MD, no trading


def test_the_shipped_sample_is_what_its_script_makes() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_sample", ROOT / "scripts" / "make_l2book_sample.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    made = lz4.frame.decompress(module.sample("xyz:AAA", 1.0, 7))
    assert made == lz4.frame.decompress(SAMPLE.read_bytes())


def test_archive_times_are_read_to_the_nanosecond() -> None:
    assert iso_ns("2023-09-16T09:00:03.296545473") == 1_694_854_803_296_545_473
    assert iso_ns("2023-09-16T09:00:03") == 1_694_854_803_000_000_000
    with pytest.raises(ValueError):
        iso_ns("2023-09-16T09:00:03.29654547312")


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["backtest", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_errors_are_one_line(tmp_path: Path, capsys) -> None:
    journal = str(tmp_path / "j.sqlite")
    code, _out, err = _cli(capsys, "--data", str(tmp_path / "none.gz"), "--journal", journal)
    assert code == 2 and err.strip().endswith("none.gz: no such file")
    assert len(err.strip().splitlines()) == 1

    text = tmp_path / "text.txt"
    text.write_text("hello\n")
    code, _out, err = _cli(capsys, "--data", str(text), "--journal", journal)
    assert code == 2 and "neither a recording" in err and len(err.strip().splitlines()) == 1

    bad = tmp_path / "bad.ndjson.gz"
    good = b'{"t":1767225600000000000,"f":{"channel":"pong"}}\n'
    bad.write_bytes(gzip.compress(good + good + b'{"t":5,"f":\n'))
    code, _out, err = _cli(capsys, "--data", str(bad), "--journal", journal)
    assert code == 2 and "bad recording line 3" in err and len(err.strip().splitlines()) == 1

    unknown = tmp_path / "unknown.ndjson.gz"
    frame = b'{"channel":"bbo","data":{"coin":"xyz:NOPE","time":1,"bbo":[null,null]}}'
    unknown.write_bytes(gzip.compress(b'{"t":1767225600000000000,"f":%s}\n' % frame))
    code, _out, err = _cli(capsys, "--data", str(unknown), "--journal", journal)
    assert code == 2 and "line 1: unknown coin xyz:NOPE" in err
    assert len(err.strip().splitlines()) == 1


def test_cli_writes_a_journal_hip3_journal_reads(tmp_path: Path, capsys) -> None:
    journal = tmp_path / "j.sqlite"
    code, out, _err = _cli(
        capsys, "--data", str(SAMPLE), "--oracle-from-mid", "--journal", str(journal)
    )
    assert code == 0 and out.startswith(f"journal: {journal}")
    assert "frames: 120 replayed" in out
    assert main(["journal", str(journal)]) == 0
    assert "backtest-seed-7" in capsys.readouterr().out
    assert main(["journal", str(journal), "--html", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").stat().st_size > 1000


def test_errors_in_the_data_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        open_data(tmp_path / "x")
    with pytest.raises(BacktestError, match="no data file"):
        run_backtest(load_config(), [], journal=None)


def test_the_benchmark_replays_every_frame_it_recorded(tmp_path: Path) -> None:
    from bench.backtest import make_recording

    frames = make_recording(tmp_path / "r.ndjson.gz", 0.1)
    result = run_backtest(load_config(), [tmp_path / "r.ndjson.gz"], journal=None)
    assert frames > 20 and result.frames == frames
