"""`hip3 bot` and `hip3 sim` as an operator runs them: a real process, its exit code and its
stderr. Each run talks to the built-in simulator over real sockets, or to a port where nothing
listens. Exit codes are in `hip3/app/exit_codes.py` and the README."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hip3.app.exit_codes import ExitCode
from hip3.journal import Journal

pytestmark = pytest.mark.e2e

# a throwaway key for runs against a port where nothing listens (nothing can be signed for)
UNUSED_KEY = "0x" + "11" * 32


def hip3(*args: str, config: str | None = None, tmp: Path, timeout: float = 90) -> tuple:
    """Run `python -m hip3 ARGS` (with `config` as a TOML file); (code, stdout, stderr)."""
    argv = [sys.executable, "-m", "hip3", *args]
    if config is not None:
        path = tmp / "bot.toml"
        path.write_text(config)
        argv += ["--config", str(path)]
    env = {**os.environ, "HIP3_TEST_KEY": UNUSED_KEY}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=tmp, env=env)
    return done.returncode, done.stdout, done.stderr


def hip3_stopped_at(
    marker: str, *args: str, config: str, tmp: Path, timeout: float = 90
) -> tuple[int, str, str]:
    """Run `python -m hip3 ARGS` and send it the operator's stop (SIGTERM, the graceful one)
    as soon as a stderr line holds `marker`, instead of waiting out a `--duration`."""
    path = tmp / "bot.toml"
    path.write_text(config)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hip3", *args, "--config", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp,
    )
    lines: list[str] = []
    seen = threading.Event()

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if marker in line:
                seen.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert seen.wait(timeout), "".join(lines)
        proc.send_signal(signal.SIGTERM)
        out = proc.stdout.read() if proc.stdout is not None else ""
        code = proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    return code, out, "".join(lines)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


def assert_one_clear_line(code: int, stderr: str, *needles: str) -> None:
    assert code == ExitCode.USAGE == 2, stderr
    assert "Traceback" not in stderr, stderr
    line = last_line(stderr)
    for needle in needles:
        assert needle in line, line


NO_JOURNAL = "[journal]\nenabled = false\n"


# --- never ready ---------------------------------------------------------------------------


def test_unreachable_endpoint_ends_never_ready_naming_url_and_error(tmp_path):
    url = f"ws://127.0.0.1:{closed_port()}/ws"
    code, _out, err = hip3(
        "bot", "--no-status", "--ws-url", url, "--key-env", "HIP3_TEST_KEY", "--duration", "1",
        config=NO_JOURNAL, tmp=tmp_path,
    )  # fmt: skip
    assert code == ExitCode.NEVER_READY == 5, err
    line = last_line(err)
    assert line.startswith("hip3 bot: never ready"), line
    assert url in line and "connect failed" in line and "nothing was sent" in line, line
    assert "Traceback" not in err


def test_startup_deadline_ends_a_run_that_never_gets_ready(tmp_path):
    url = f"ws://127.0.0.1:{closed_port()}/ws"
    code, _out, err = hip3(
        "bot", "--no-status", "--ws-url", url, "--key-env", "HIP3_TEST_KEY",
        config=NO_JOURNAL + "[ready]\nstartup_timeout_s = 1.0\n", tmp=tmp_path,
    )  # fmt: skip
    assert code == ExitCode.NEVER_READY, err
    line = last_line(err)
    assert "not READY 1 s after start" in line and url in line, line
    assert "ConnectionRefusedError" in line, line


# --- outcomes of runs against the simulator -------------------------------------------------


def test_clean_run_exits_0_and_its_stop_is_not_an_error(tmp_path):
    # a whole --duration, not a stop at READY: the stop must come after the start-up's own
    # requests are answered (a stop while one is in flight logs its loss as a WARNING)
    code, out, err = hip3("bot", "--no-status", "--duration", "3", config=NO_JOURNAL, tmp=tmp_path)
    assert code == ExitCode.OK, err
    assert "stop: stopped" in out and "reconciled: True" in out
    assert "HardStop" not in out
    # a routine stop logs nothing above INFO, and machine transitions stay at DEBUG
    assert "level=ERROR" not in err and "level=WARNING" not in err, err
    assert " -> " not in err, err


def test_hardstop_tripped_by_rejections_exits_6(tmp_path):
    config = (
        NO_JOURNAL + '[sim]\nfaults = "reject_next=50"\n[risk]\nmax_consecutive_rejections = 2\n'
    )
    code, out, err = hip3_stopped_at(
        "HardStop tripped", "bot", "--no-status", config=config, tmp=tmp_path
    )
    assert code == ExitCode.HARDSTOP == 6, err
    assert "stop: HardStop halted: 2 consecutive order rejections" in out
    assert last_line(err).startswith("hip3 bot: HardStop tripped: 2 consecutive"), err


def test_a_stop_that_leaves_positions_open_exits_3(tmp_path):
    config = (
        NO_JOURNAL + "[shutdown]\nflatten_on_exit = false\n"
        "[exits]\ntime_stop_s = 600\nmin_hold_s = 599\n"
        # order transitions at INFO: the stop comes once an entry has filled
        "[metrics]\nlog_transitions = true\n"
    )
    code, out, err = hip3_stopped_at(
        "dst=filled", "bot", "--no-status", config=config, tmp=tmp_path
    )
    assert "entries_submitted: 0" not in out, "the run sent no order: nothing to leave open"
    assert code == ExitCode.EXPOSED == 3, err
    line = last_line(err)
    assert "ended with exposure" in line and "positions xyz:" in line, line


def test_observation_exits_0_without_claiming_a_reconciliation(tmp_path):
    code, out, err = hip3(
        "bot", "--no-status", "--mode", "observation", "--duration", "2",
        config=NO_JOURNAL, tmp=tmp_path,
    )  # fmt: skip
    assert code == ExitCode.OK, err
    assert "reconciled: not checked" in out
    assert "reconciled: False" not in out


def test_second_ctrl_c_forces_the_exit_saying_what_may_be_open(tmp_path):
    """The first SIGINT starts the graceful stop (slowed here: every post waits 1.5 s); the
    second ends the process at once, naming what may still be open, with code 130 and the
    summary printed; a third changes nothing."""
    path = tmp_path / "bot.toml"
    path.write_text(NO_JOURNAL + '[sim]\nfaults = "delay_post_ms=1500"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "hip3", "bot", "--no-status", "--config", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "READY-TRADING=True" in line:
                ready.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert ready.wait(60), "".join(lines)
        for _press in range(3):  # an impatient operator: the third must not cut the exit
            proc.send_signal(signal.SIGINT)
            threading.Event().wait(0.1)
        code = proc.wait(60)
        out = proc.stdout.read() if proc.stdout is not None else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    err = "".join(lines)
    assert code == ExitCode.INTERRUPTED == 130, err
    assert "press Ctrl-C again to exit at once" in err
    assert "hip3 bot: forced exit; " in err
    assert "Traceback" not in err
    assert "=== hip3 bot summary ===" in out


# --- runtime failures a user can cause: one line, exit 2 ------------------------------------


class RefusedRuns:
    """Every run a user's mistake refuses, started together and awaited together: each is
    mostly interpreter start-up, so side by side they take the time of about one. What each
    refusal needs (a busy port, a locked journal, a file where a folder should be) is held
    until every run has ended."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: dict[str, subprocess.Popen] = {}
        self.results: dict[str, tuple[int, str, str]] = {}
        self.facts: dict[str, str] = {}

    def start(self, name: str, *args: str, config: str | None = None) -> None:
        tmp = self.root / name
        tmp.mkdir()
        argv = [sys.executable, "-m", "hip3", *args]
        if config is not None:
            path = tmp / "bot.toml"
            path.write_text(config)
            argv += ["--config", str(path)]
        env = {**os.environ, "HIP3_TEST_KEY": UNUSED_KEY}
        self.started[name] = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp, env=env
        )

    def finish(self, timeout: float = 90) -> None:
        for name, proc in self.started.items():
            try:
                out, err = proc.communicate(timeout=timeout)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            self.results[name] = (proc.returncode, out, err)


@pytest.fixture(scope="module")
def refused(tmp_path_factory) -> RefusedRuns:
    runs = RefusedRuns(tmp_path_factory.mktemp("refused"))
    root = runs.root
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        runs.facts["busy_port"] = str(port)
        runs.start(
            "metrics_port", "bot", "--no-status", "--duration", "1",
            config=NO_JOURNAL + f"[metrics]\nenabled = true\nport = {port}\n",
        )  # fmt: skip
        locked = root / "locked.sqlite"
        runs.facts["locked_journal"] = str(locked)
        holder = Journal(locked, mode="trading", network="sim")
        try:
            runs.start(
                "journal_locked", "bot", "--no-status", "--duration", "1",
                config=f'[journal]\npath = "{locked}"\n',
            )  # fmt: skip
            blocker = root / "a-file"
            blocker.write_text("")
            target = blocker / "sub" / "journal.sqlite"
            runs.start(
                "journal_directory", "bot", "--no-status", "--duration", "1",
                config=f'[journal]\npath = "{target}"\n',
            )  # fmt: skip
            runs.start("sim_port", "sim", "--port", "99999")
            runs.start(
                "configuration",
                "bot",
                "--no-status",
                config='mode = "tradin"\n[websocket]\nping_after_s = "x"\n'
                "[risk]\nloss_limit_usd = -5\n",
            )
            summary = root / "no-such-folder" / "summary.json"
            runs.start(
                "summary_json", "bot", "--no-status", "--duration", "1",
                "--summary-json", str(summary), config=NO_JOURNAL,
            )  # fmt: skip
            runs.start("negative_duration", "bot", "--no-status", "--duration", "-3")
            runs.finish()
        finally:
            holder.close()
    return runs


def test_metrics_port_in_use_is_one_line(refused):
    code, _out, err = refused.results["metrics_port"]
    assert_one_clear_line(code, err, "metrics: cannot listen on", refused.facts["busy_port"])


def test_journal_locked_by_another_bot_is_one_line(refused):
    code, _out, err = refused.results["journal_locked"]
    assert_one_clear_line(code, err, "journal:", refused.facts["locked_journal"])


def test_journal_directory_that_cannot_be_created_is_one_line(refused):
    code, _out, err = refused.results["journal_directory"]
    assert_one_clear_line(code, err, "journal:", "cannot create its directory")


def test_sim_port_out_of_range_is_one_line(refused):
    code, _out, err = refused.results["sim_port"]
    assert_one_clear_line(code, err, "--port", "99999")
    assert len(err.strip().splitlines()) == 1, err


def test_all_configuration_errors_at_once(refused):
    code, _out, err = refused.results["configuration"]
    assert code == ExitCode.USAGE and "Traceback" not in err
    for named in ("mode = 'tradin'", "websocket.ping_after_s", "risk.loss_limit_usd"):
        assert named in err


def test_summary_json_into_a_missing_folder_is_refused_before_the_run(refused):
    code, out, err = refused.results["summary_json"]
    assert_one_clear_line(code, err, "--summary-json", "does not exist")
    assert "summary" not in out  # refused before any run


def test_a_negative_duration_is_one_line(refused):
    code, _out, err = refused.results["negative_duration"]
    assert_one_clear_line(code, err, "--duration", "positive")
    assert len(err.strip().splitlines()) == 1, err
