"""Ending a hung bot: only the process that wrote the beat, with SIGKILL, and say whether it
is gone."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

from hip3.guard.heartbeat import Heartbeat, process_start_ticks, this_host
from hip3.guard.reaper import kill_stale_bot


def beat_of(pid: int, start: int | None) -> Heartbeat:
    return Heartbeat(
        version=1, pid=pid, host=this_host(), pid_start=start, account="0x" + "ab" * 20,
        network="sim", time_ms=0, seq=1, state="running", positions=1, open_orders=0,
    )  # fmt: skip


async def test_a_stopped_process_is_killed_and_seen_gone():
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(60)"
    )
    try:
        child.send_signal(signal.SIGSTOP)  # hung: alive, but it will never beat again
        assert await kill_stale_bot(beat_of(child.pid, process_start_ticks(child.pid)))
        assert await asyncio.wait_for(child.wait(), 5) == -signal.SIGKILL
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


async def test_a_process_already_gone_is_not_signalled():
    sent: list[tuple[int, int]] = []
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    gone = beat_of(int(done.stdout), None)
    assert await kill_stale_bot(gone, kill=lambda pid, sig: sent.append((pid, sig)))
    assert sent == []


async def test_another_process_that_reused_the_pid_is_not_signalled():
    sent: list[tuple[int, int]] = []
    import os

    me = os.getpid()
    reused = beat_of(me, (process_start_ticks(me) or 0) + 1)
    assert await kill_stale_bot(reused, kill=lambda pid, sig: sent.append((pid, sig)))
    assert sent == []


async def test_a_process_that_survives_or_cannot_be_signalled_is_reported():
    def refuse(_pid: int, _sig: int) -> None:
        raise PermissionError("not yours")

    stubborn = beat_of(4242, 1)
    assert not await kill_stale_bot(stubborn, alive=lambda _p, _s: True, kill=refuse)
    sent: list[tuple[int, int]] = []
    assert not await kill_stale_bot(
        stubborn,
        wait_s=0.1,
        alive=lambda _p, _s: True,
        kill=lambda pid, sig: sent.append((pid, sig)),
    )
    assert sent == [(4242, signal.SIGKILL)]
