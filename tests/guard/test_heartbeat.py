"""The heartbeat file: written whole or not at all, read strictly, and the bot's writer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest

from hip3.app.heartbeat import DispatcherExposure, HeartbeatInUse, HeartbeatWriter
from hip3.guard.heartbeat import (
    HeartbeatError,
    pid_alive,
    process_start_ticks,
    read_heartbeat,
    write_heartbeat,
)

ACCOUNT = "0x" + "ab" * 20


class FakeDispatcher:
    """The two public calls the exposure adapter reads, as the dispatcher answers them."""

    def __init__(self, positions: dict[str, str], orders: int) -> None:
        self.positions = SimpleNamespace(signed_sizes=lambda: positions)
        self.orders = SimpleNamespace(open_orders=lambda: [object()] * orders)


def test_writer_creates_the_folder_and_each_beat_moves_seq(tmp_path: Path):
    path = tmp_path / "run" / "hb.json"
    exposure = DispatcherExposure(FakeDispatcher({"xyz:AAA": "1.5", "xyz:BBB": "-2"}, 3))
    writer = HeartbeatWriter(
        path, account=ACCOUNT, network="sim", exposure=exposure, wall_ms=lambda: 1234
    )
    writer.prepare()
    first = read_heartbeat(path)
    writer.beat()
    second = read_heartbeat(path)
    writer.beat("stopped")
    last = read_heartbeat(path)
    assert first is not None and second is not None and last is not None
    assert (first.seq, second.seq, last.seq) == (1, 2, 3)
    assert first.pid == os.getpid() and first.pid_start == process_start_ticks(os.getpid())
    assert (first.account, first.network, first.time_ms) == (ACCOUNT, "sim", 1234)
    assert (second.positions, second.open_orders, second.exposed) == (2, 3, True)
    assert (second.state, last.state) == ("running", "stopped")
    assert [p.name for p in path.parent.iterdir()] == ["hb.json"]  # no temporary file left


def test_a_failed_write_is_logged_and_never_raises(tmp_path: Path, caplog):
    path = tmp_path / "hb.json"
    writer = HeartbeatWriter(path, account=ACCOUNT, network="sim")
    writer.prepare()
    path.unlink()
    (path / "blocker").mkdir(parents=True)  # a folder where the file was: rename fails
    for _ in range(5):
        writer.beat()
    assert writer.failures == 5
    assert len([r for r in caplog.records if "not written" in r.getMessage()]) == 3  # 1, 2, 4


def test_prepare_refuses_a_path_that_cannot_be_written(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError):
        HeartbeatWriter(blocker / "hb.json", account=ACCOUNT, network="sim").prepare()


def test_no_file_is_no_beat_and_a_bad_file_is_an_error_naming_it(tmp_path: Path):
    path = tmp_path / "hb.json"
    assert read_heartbeat(path) is None
    for text in ("{", "[]", '{"version": 1}', "x" * 5000):
        path.write_text(text)
        with pytest.raises(HeartbeatError, match=str(path)):
            read_heartbeat(path)
    writer = HeartbeatWriter(path, account=ACCOUNT, network="sim")
    writer.prepare()
    path.write_text(path.read_text().replace('"version":1', '"version":2'))
    with pytest.raises(HeartbeatError, match="version 2"):
        read_heartbeat(path)


def test_pid_alive_knows_this_process_a_dead_one_and_a_reused_pid():
    me = os.getpid()
    assert pid_alive(me, process_start_ticks(me))
    assert pid_alive(me, None)
    assert not pid_alive(me, (process_start_ticks(me) or 0) + 1)
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    assert not pid_alive(int(done.stdout), None)
    assert not pid_alive(0, None)


def test_an_unreaped_child_counts_as_dead():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        import time

        deadline = time.monotonic() + 10
        while pid_alive(child.pid, None) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not pid_alive(child.pid, None)  # exited, still a zombie until waited for
        assert child.poll() is not None
    finally:
        child.wait()


async def test_a_bot_whose_heartbeat_cannot_be_written_does_not_start(tmp_path: Path):
    """Run unguarded while the operator believes otherwise? No: one line, nothing sent."""
    import socket

    from hip3.app.bot import BotError, run_bot
    from hip3.config import load_config
    from hip3.keys import SigningKey

    blocker = tmp_path / "file"
    blocker.write_text("")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{s.getsockname()[1]}/ws"
    cfg = load_config(
        overrides={
            "ws_url": url,
            "journal.enabled": False,
            "guard.heartbeat_path": str(blocker / "hb.json"),
        }
    )
    with pytest.raises(BotError, match=r"guard.heartbeat_path .*: cannot write the heartbeat"):
        await run_bot(cfg, key=SigningKey.from_hex("0x" + "11" * 32), install_signals=False)


async def test_the_beat_task_beats_from_the_loop_and_stops_before_the_last_beat(tmp_path: Path):
    import asyncio

    from hip3.app.heartbeat import HeartbeatTask

    path = tmp_path / "hb.json"
    writer = HeartbeatWriter(path, account=ACCOUNT, network="sim")
    writer.prepare()
    task = HeartbeatTask(writer, 0.02)
    task.start()
    loop = asyncio.get_running_loop()
    end = loop.time() + 5
    while (beat := read_heartbeat(path)) is not None and beat.seq < 4 and loop.time() < end:
        await asyncio.sleep(0.01)
    assert beat is not None and beat.seq >= 4 and beat.state == "running"
    await task.stop()
    writer.beat("stopped")
    await asyncio.sleep(0.1)  # nothing written after the stop lands over the last beat
    last = read_heartbeat(path)
    assert last is not None and last.state == "stopped" and last.seq == writer.seq


async def test_a_blocked_loop_stops_the_beat(tmp_path: Path):
    """The beat is made on the event loop: while the loop is blocked no beat is written."""
    import asyncio
    import time

    from hip3.app.heartbeat import HeartbeatTask

    path = tmp_path / "hb.json"
    writer = HeartbeatWriter(path, account=ACCOUNT, network="sim")
    writer.prepare()
    task = HeartbeatTask(writer, 0.01)
    task.start()
    await asyncio.sleep(0.1)
    before = read_heartbeat(path)
    time.sleep(0.3)  # the loop hangs
    during = read_heartbeat(path)
    await task.stop()
    assert before is not None and during is not None
    assert during.seq <= before.seq + 1  # at most the write that was already in flight


def test_a_file_another_running_bot_beats_into_is_refused(tmp_path: Path):
    path = tmp_path / "hb.json"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        mine = HeartbeatWriter(path, account=ACCOUNT, network="sim").make("running")
        # the same beat, as the other process would have written it
        write_heartbeat(
            path,
            msgspec.structs.replace(mine, pid=other.pid, pid_start=process_start_ticks(other.pid)),
        )
        with pytest.raises(HeartbeatInUse, match=f"another running bot \\(pid {other.pid}\\)"):
            HeartbeatWriter(path, account=ACCOUNT, network="sim").prepare()
    finally:
        other.kill()
        other.wait()
    # once that bot is gone (or its last beat says it stopped) the file is free again
    HeartbeatWriter(path, account=ACCOUNT, network="sim").prepare()
    beat = read_heartbeat(path)
    assert beat is not None and beat.pid == os.getpid()
