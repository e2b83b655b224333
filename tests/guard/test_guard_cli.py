"""`hip3 guard` refusals and endings that need no bot: one line on stderr and a code that
says what happened (nothing was done in any of them)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hip3.app.exit_codes import ExitCode
from hip3.cli import main
from hip3.guard.heartbeat import Heartbeat, process_start_ticks, this_host, write_heartbeat
from hip3.keys import SigningKey

KEY = SigningKey.from_hex("0x" + "11" * 32)
KEY_ENV = "HIP3_GUARD_CLI_TEST_KEY"


def closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"ws://127.0.0.1:{s.getsockname()[1]}/ws"


def write_config(tmp: Path, body: str) -> Path:
    path = tmp / "bot.toml"
    path.write_text(body)
    return path


def guard_config(tmp: Path, *, deadline_s: float = 0.3, extra: str = "") -> Path:
    return write_config(
        tmp,
        f'ws_url = "{closed_url()}"\n[account]\nkey_env = "{KEY_ENV}"\n'
        f'[guard]\nheartbeat_path = "{tmp / "hb.json"}"\nstart_deadline_s = {deadline_s}\n'
        "request_timeout_s = 0.2\npoll_interval_s = 0.02\n" + extra,
    )


@pytest.fixture(autouse=True)
def restore_logging():
    """`main` gives the root logger a handler on this test's stderr; the next test must not
    write to it once pytest has closed that capture."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "0x" + "11" * 32)


def last_err_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_without_a_heartbeat_path_the_guard_refuses_to_start(tmp_path, capsys, key_env):
    config = write_config(tmp_path, f'ws_url = "{closed_url()}"\n')
    assert main(["guard", "--config", str(config)]) == ExitCode.USAGE
    assert "guard.heartbeat_path is not set" in last_err_line(capsys)


def test_the_built_in_simulator_cannot_be_guarded(tmp_path, capsys, key_env):
    config = write_config(tmp_path, f'[guard]\nheartbeat_path = "{tmp_path / "hb"}"\n')
    assert main(["guard", "--config", str(config)]) == ExitCode.USAGE
    assert "network 'sim' without ws_url" in last_err_line(capsys)


def test_without_a_key_the_guard_refuses_to_start(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert main(["guard", "--config", str(guard_config(tmp_path))]) == ExitCode.USAGE
    assert f"no signing key: set {KEY_ENV}" in last_err_line(capsys)


def test_a_bad_guard_setting_is_a_configuration_error(tmp_path, capsys, key_env):
    config = guard_config(tmp_path, extra="heartbeat_interval_s = 4.0\ntimeout_s = 5.0\n")
    assert main(["guard", "--config", str(config)]) == ExitCode.USAGE
    assert "guard.heartbeat_interval_s = 4: expected at most half" in last_err_line(capsys)


def test_no_heartbeat_before_the_deadline_ends_with_nothing_done(tmp_path, capsys, key_env):
    assert main(["guard", "--config", str(guard_config(tmp_path))]) == ExitCode.NEVER_READY
    line = last_err_line(capsys)
    assert "no heartbeat appeared" in line and "nothing was done" in line, line


def test_a_heartbeat_of_another_account_is_refused(tmp_path, capsys, key_env):
    config = guard_config(tmp_path, deadline_s=5)
    write_heartbeat(
        tmp_path / "hb.json",
        Heartbeat(
            version=1,
            pid=os.getpid(),
            host=this_host(),
            pid_start=process_start_ticks(os.getpid()),
            account="0x" + "cd" * 20,
            network="sim",
            time_ms=time.time_ns() // 1_000_000,
            seq=1,
            state="running",
            positions=0,
            open_orders=0,
        ),
    )
    assert main(["guard", "--config", str(config)]) == ExitCode.USAGE
    line = last_err_line(capsys)
    assert f"trades {KEY.address.lower()} on sim; nothing was done" in line, line


def test_sigterm_while_waiting_ends_the_guard_with_nothing_done(tmp_path):
    config = guard_config(tmp_path, deadline_s=60)
    env = {**os.environ, KEY_ENV: "0x" + "11" * 32, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hip3", "guard", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "waiting for the bot's heartbeat" in line:
                break
        proc.send_signal(signal.SIGTERM)
        _out, rest = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == ExitCode.INTERRUPTED, rest
    assert rest.strip().splitlines()[-1] == (
        "hip3 guard: stopped by SIGTERM while watching; nothing was done"
    )
    assert "11" * 32 not in rest


async def test_a_key_that_may_not_trade_the_account_is_refused_at_start(tmp_path, capsys):
    from hip3.config import load_config
    from hip3.guard.session import run_guard
    from hip3.sim.harness import SimHarness

    async with SimHarness(seed=3, feeds=False) as sim:
        cfg = load_config(
            overrides={"ws_url": sim.ws_url, "guard.heartbeat_path": str(tmp_path / "hb")}
        )
        code = await run_guard(cfg, sim.ws_url, KEY, sim.account[0])
    assert code == ExitCode.ACCOUNT_REFUSED == 4
    line = last_err_line(capsys)
    assert line.startswith("hip3 guard: the signing key may not trade the account: "), line
    assert KEY.address.lower() in line and line.endswith("nothing was done"), line
