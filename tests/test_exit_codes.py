"""`hip3 bot` exit codes: 0 only for a run that ended reconciled with nothing open; exposure or
an unreconciled end has its own code, whatever else happened."""

from __future__ import annotations

import json

import pytest

from hip3.app import bot as bot_module
from hip3.app.exit_codes import ExitCode, code_for_summary
from hip3.cli import main

CLEAN = {
    "mode": "trading",
    "positions": {},
    "open_orders": [],
    "exchange_positions": {},
    "exchange_open_orders": [],
    "reconciled": True,
    "stop_timed_out": False,
    "fatal": None,
}


def summary(**changes):
    return {**CLEAN, **changes}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, ExitCode.OK),
        # the exchange still holds a position, even though the bot agrees (reconciled)
        ({"positions": {"xyz:CCC": "12"}, "exchange_positions": {"xyz:CCC": "12"}}, 3),
        # a resting order left on the book
        ({"exchange_open_orders": [{"coin": "xyz:AAA", "oid": 7}]}, 3),
        # the final check failed: the last known position is what may be open
        (
            {
                "exchange_positions": None,
                "exchange_open_orders": None,
                "positions": {"xyz:CCC": "12"},
                "reconciled": False,
            },
            3,
        ),
        # nothing known open, but never verified with the exchange
        ({"exchange_positions": None, "exchange_open_orders": None, "reconciled": False}, 3),
        # a fatal error with nothing open
        ({"fatal": "market gone"}, ExitCode.FATAL),
        # a fatal error that left a position: exposure first
        ({"fatal": "market gone", "exchange_positions": {"xyz:AAA": "1"}}, 3),
        # observation sends nothing and checks no account
        ({"mode": "observation", "reconciled": False, "exchange_positions": None}, 0),
        # the key may not trade the account: refused before anything was sent, whatever the
        # account itself holds
        (
            {
                "account_refused": "not an agent",
                "fatal": "x",
                "actions_sent": 0,
                "exchange_positions": {"xyz:AAA": "1"},
            },
            4,
        ),
        # refused on a later epoch after trading: what is open matters first
        (
            {
                "account_refused": "agent expired",
                "fatal": "x",
                "actions_sent": 9,
                "exchange_positions": {"xyz:AAA": "1"},
            },
            3,
        ),
        ({"account_refused": "agent expired", "fatal": "x", "actions_sent": 9}, 1),
        # never ready and nothing sent: the final check could not run, which is not exposure
        (
            {
                "never_ready": "never ready: ...",
                "fatal": "never ready: ...",
                "reconciled": False,
                "exchange_positions": None,
                "exchange_open_orders": None,
            },
            ExitCode.NEVER_READY,
        ),
        # a risk HardStop that ended flat and reconciled
        ({"hardstop": {"state": "halted", "reasons": ["loss limit"]}}, ExitCode.HARDSTOP),
        # ... and one that left a position: exposure first
        (
            {
                "hardstop": {"state": "halted", "reasons": ["loss limit"]},
                "exchange_positions": {"xyz:AAA": "1"},
            },
            3,
        ),
        # the stop's own trip and an operator's are not risk triggers
        ({"hardstop": {"state": "halted", "reasons": ["shutdown with flatten"]}}, 0),
        ({"hardstop": {"state": "halted", "reasons": ["operator: signal SIGUSR1"]}}, 0),
        # a forced exit
        ({"interrupted": True, "reconciled": False}, ExitCode.INTERRUPTED),
    ],
)
def test_code_for_summary(changes, expected):
    assert code_for_summary(summary(**changes)) == expected


def test_codes_are_distinct_and_documented_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    values = [c.value for c in ExitCode]
    assert len(values) == len(set(values))
    for code in ExitCode:
        assert f"| {code.value} |" in readme, f"exit code {code.name} missing from the README"


def test_cli_exits_with_the_exposure_code_and_writes_reconciled_false(
    tmp_path, monkeypatch, capsys
):
    """The command line returns the summary's code and writes `reconciled: false` to the JSON
    summary; the run itself is replaced by one that ended holding a position, unreconciled."""
    ended = summary(
        positions={"xyz:CCC": "12"},
        exchange_positions=None,
        exchange_open_orders=None,
        reconciled=False,
        stop_timed_out=True,
        signals=0,
        orders_submitted=0,
        entries_submitted=0,
        exits_submitted=0,
        stop="stopped",
        orders={},
        gate_blocks={},
        fills=0,
        realized_pnl="0",
        fees="0",
        ready_latency_ms={},
        epochs=3,
        reconnects=2,
        hardstop={"state": "flattening", "reasons": ["shutdown with flatten"]},
        reconcile_error="TimeoutError: ",
        position_divergences=[],
    )

    async def fake_run_bot(cfg, **kwargs):
        return ended

    monkeypatch.setattr(bot_module, "run_bot", fake_run_bot)
    out = tmp_path / "summary.json"
    code = main(["bot", "--no-status", "--summary-json", str(out)])
    assert code == ExitCode.EXPOSED == 3
    assert json.loads(out.read_text())["reconciled"] is False
    captured = capsys.readouterr()
    assert "reconciled: False" in captured.out
    assert "stop_timed_out: True" in captured.out
    assert "ended with exposure or unreconciled" in captured.err
