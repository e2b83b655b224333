"""When the guard counts the bot as gone: staleness on the guard's own clock, the verdict
rule, and the watch loop over a real heartbeat file."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from hip3.config import GuardConfig
from hip3.guard.heartbeat import Heartbeat, process_start_ticks, this_host, write_heartbeat
from hip3.guard.watcher import GuardMismatch, Staleness, Verdict, decide, watch

ACCOUNT = "0x" + "ab" * 20


def beat(*, seq: int = 1, time_ms: int = 10_000, state: str = "running", **kw) -> Heartbeat:
    fields = {
        "version": 1,
        "pid": 4242,
        "host": "here",
        "pid_start": 77,
        "account": ACCOUNT,
        "network": "sim",
        "time_ms": time_ms,
        "seq": seq,
        "state": state,
        "positions": 1,
        "open_orders": 0,
    }
    fields.update(kw)
    return Heartbeat(**fields)


# --- staleness: worked numbers ---------------------------------------------------------------


def test_first_beat_is_as_old_as_its_wall_clock_stamp():
    s = Staleness()
    # written at wall 10.000 s, read at wall 12.500 s: 2.5 s old, whatever the monotonic clock
    assert s.observe(beat(time_ms=10_000), now_s=100.0, now_wall_ms=12_500) == pytest.approx(2.5)


def test_a_beat_that_does_not_move_keeps_ageing_on_the_monotonic_clock():
    s = Staleness()
    s.observe(beat(seq=1, time_ms=10_000), now_s=100.0, now_wall_ms=12_500)  # 2.5 s old
    # the wall clock jumps back an hour: it does not matter, only seq and the monotonic clock do
    assert s.observe(beat(seq=1, time_ms=10_000), now_s=101.0, now_wall_ms=-3_600_000) == (
        pytest.approx(3.5)
    )


def test_a_new_seq_is_a_fresh_beat_even_with_an_old_wall_stamp():
    s = Staleness()
    s.observe(beat(seq=1, time_ms=10_000), now_s=100.0, now_wall_ms=12_500)
    assert s.observe(beat(seq=2, time_ms=0), now_s=102.0, now_wall_ms=99_999_999) == 0.0
    assert s.observe(beat(seq=2, time_ms=0), now_s=102.75, now_wall_ms=0) == pytest.approx(0.75)


def test_a_restarted_bot_with_the_same_seq_is_a_new_beat():
    s = Staleness()
    s.observe(beat(seq=5, pid=1), now_s=100.0, now_wall_ms=10_000)
    assert s.observe(beat(seq=5, pid=2), now_s=107.0, now_wall_ms=10_000) == 0.0


def test_a_beat_stamped_in_the_future_is_not_older_than_zero():
    s = Staleness()
    assert s.observe(beat(time_ms=20_000), now_s=100.0, now_wall_ms=10_000) == 0.0


# --- the verdict ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "local", "alive", "state", "expected"),
    [
        (5.0, True, True, "running", Verdict.ALIVE),  # exactly the timeout: not yet
        (5.01, True, True, "running", Verdict.STALE),
        (0.0, True, False, "running", Verdict.GONE),  # its process is gone: at once
        (0.0, False, False, "running", Verdict.ALIVE),  # another host: a pid means nothing
        (9.0, False, False, "running", Verdict.STALE),
        (0.0, True, True, "stopped", Verdict.STOPPED),  # its last beat said it ended
    ],
)
def test_decide(age, local, alive, state, expected):
    assert decide(beat(state=state), age, 5.0, local=local, alive=alive) is expected


# --- the watch loop over a real file ----------------------------------------------------------


def fast(**kw) -> GuardConfig:
    base = {"timeout_s": 0.3, "poll_interval_s": 0.01, "start_deadline_s": 0.2}
    return GuardConfig(**{**base, **kw})


def me(**kw) -> Heartbeat:
    """A beat of this very process, written now, on this host."""
    fields = {
        "pid": os.getpid(),
        "host": this_host(),
        "pid_start": process_start_ticks(os.getpid()),
        "time_ms": time.time_ns() // 1_000_000,
    }
    fields.update(kw)
    return beat(**fields)


async def test_no_heartbeat_before_the_start_deadline_is_never_seen(tmp_path: Path):
    result = await watch(tmp_path / "hb.json", fast(), account=ACCOUNT, network="sim")
    assert result.verdict is Verdict.NEVER_SEEN and result.beat is None


async def test_a_hung_bot_here_found_at_start_is_stale_at_once(tmp_path: Path):
    path = tmp_path / "hb.json"
    # this very process, alive, last beat 10 s ago: hung; no reason to wait for another run
    write_heartbeat(path, me(time_ms=time.time_ns() // 1_000_000 - 10_000))
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await watch(path, fast(start_deadline_s=5), account=ACCOUNT, network="sim")
    assert result.verdict is Verdict.STALE and result.age_s >= 10
    assert loop.time() - started < 1


async def test_an_ended_run_found_at_start_is_acted_on_after_the_start_deadline(tmp_path: Path):
    path = tmp_path / "hb.json"
    # a stale beat from another host: nothing says a new run is coming
    write_heartbeat(path, me(time_ms=time.time_ns() // 1_000_000 - 10_000))
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await watch(path, fast(), account=ACCOUNT, network="sim", host="elsewhere")
    assert result.verdict is Verdict.STALE and result.age_s >= 10
    assert loop.time() - started >= 0.2  # the start deadline


async def test_a_new_run_after_an_ended_one_is_the_run_watched(tmp_path: Path):
    """The guard started before the bot, beside the last run's final beat: it waits for the
    new run and watches that one, instead of acting on the old beat and leaving."""
    path = tmp_path / "hb.json"
    write_heartbeat(path, beat(pid=2**22 + 7, host=this_host(), pid_start=None, state="stopped"))

    async def new_run() -> None:
        await asyncio.sleep(0.1)
        for seq in range(1, 11):
            write_heartbeat(path, me(seq=seq))
            await asyncio.sleep(0.03)

    writer = asyncio.get_running_loop().create_task(new_run())
    result = await watch(
        path, fast(start_deadline_s=5, timeout_s=0.15), account=ACCOUNT, network="sim"
    )
    await writer
    assert result.verdict is Verdict.STALE
    assert result.beat is not None and result.beat.pid == os.getpid() and result.beat.seq == 10


async def test_a_beating_bot_is_watched_until_it_stops_beating(tmp_path: Path):
    path = tmp_path / "hb.json"
    beats = 0

    async def bot() -> None:
        nonlocal beats
        for seq in range(1, 21):  # 20 beats, 0.03 s apart: 0.6 s, four timeouts
            write_heartbeat(path, me(seq=seq))
            beats = seq
            await asyncio.sleep(0.03)

    loop = asyncio.get_running_loop()
    writer = loop.create_task(bot())
    started = loop.time()
    result = await watch(path, fast(timeout_s=0.15), account=ACCOUNT, network="sim")
    await writer
    assert result.verdict is Verdict.STALE
    assert beats == 20  # the guard was still watching when the last beat was written
    assert loop.time() - started >= 0.6 + 0.15 - 0.05


async def test_a_dead_process_on_this_host_is_gone_without_waiting_for_the_timeout(
    tmp_path: Path,
):
    path = tmp_path / "hb.json"
    # this pid, but another start time: a process that reused the pid is not the bot
    write_heartbeat(path, me(pid_start=(process_start_ticks(os.getpid()) or 0) + 1))
    result = await asyncio.wait_for(
        watch(path, fast(timeout_s=60), account=ACCOUNT, network="sim"), 5
    )
    assert result.verdict is Verdict.GONE and result.age_s < 1


async def test_a_heartbeat_of_another_account_is_refused(tmp_path: Path):
    path = tmp_path / "hb.json"
    write_heartbeat(path, me(account="0x" + "cd" * 20))
    with pytest.raises(GuardMismatch, match="from account 0xcdcd"):
        await watch(path, fast(), account=ACCOUNT, network="sim")


async def test_a_garbled_file_is_no_beat_and_the_last_good_one_keeps_ageing(tmp_path: Path):
    path = tmp_path / "hb.json"
    write_heartbeat(path, me())

    async def garble() -> None:
        await asyncio.sleep(0.05)
        path.write_text("{not json")

    task = asyncio.get_running_loop().create_task(garble())
    result = await watch(path, fast(), account=ACCOUNT, network="sim")
    await task
    assert result.verdict is Verdict.STALE and result.beat is not None
