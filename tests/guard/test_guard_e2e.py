"""`hip3 guard` end to end: the real bot and the real guard as processes, the simulator on a
real port in this process, and every check of the account made as an outside client (the
official SDK over the simulator's HTTP API).

The bot is configured to hold what it buys (a time stop of ten minutes, no mark-regression
exit), and the account also gets a resting order placed through the SDK, so when the bot is
killed with SIGKILL there is both a position and an order for the guard to deal with."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hyperliquid.exchange import Exchange as SdkExchange
from hyperliquid.info import Info

from hip3.app.exit_codes import ExitCode
from hip3.sim.harness import SimHarness

pytestmark = pytest.mark.e2e

KEY_ENV = "HIP3_GUARD_TEST_KEY"
RESTING_COIN = "xyz:BBB"
# The guard's timeout here: short for a fast test, long enough that a bot slowed by a busy
# machine (the suite runs on two shared cores) is not mistaken for a hung one.
TIMEOUT_S = 1.5


def config_text(sim: SimHarness, heartbeat: Path, *, timeout_s: float) -> str:
    return f"""
network = "sim"
ws_url = "{sim.ws_url}"
[account]
key_env = "{KEY_ENV}"
[journal]
enabled = false
[exits]
time_stop_s = 600.0
min_hold_s = 599.0
mark_regression_enabled = false
[oracle_exit]
enabled = false
[guard]
heartbeat_path = "{heartbeat}"
heartbeat_interval_s = 0.2
timeout_s = {timeout_s}
poll_interval_s = 0.05
retry_backoff_s = 0.2
start_deadline_s = 30.0
report_interval_s = 0.5
"""


async def start(
    *args: str, tmp: Path, env: dict[str, str], log_name: str
) -> tuple[asyncio.subprocess.Process, Path]:
    log = tmp / log_name
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hip3", *args,
        cwd=tmp, env=env, stdout=asyncio.subprocess.PIPE, stderr=log.open("wb"),
    )  # fmt: skip
    return proc, log


async def until(predicate: Any, timeout_s: float, what: str, step_s: float = 0.05) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(step_s)


def open_positions(sim: SimHarness) -> dict[str, Decimal]:
    return {c: s for c, s in sim.exchange.positions(sim.account[0]).items() if s != 0}


def place_resting_order(sim: SimHarness) -> int:
    """A buy far below the book (half the mid, inside the exchange's price band), placed as an
    outside client with the account's key; returns its oid."""
    import eth_account

    user, key = sim.account
    info = Info(sim.http_url, skip_ws=True, perp_dexs=["", "xyz"])
    mid = Decimal(info.all_mids(dex="xyz")[RESTING_COIN])
    px = float(round(mid / 2, 2))
    size = float(round(Decimal(15) / Decimal(str(px)) + 1, 1))
    exchange = SdkExchange(
        eth_account.Account.from_key(key),
        sim.http_url,
        account_address=user,
        perp_dexs=["", "xyz"],
    )
    answer = exchange.order(RESTING_COIN, True, size, px, {"limit": {"tif": "Gtc"}})
    assert answer["status"] == "ok", answer
    (status,) = answer["response"]["data"]["statuses"]
    assert "resting" in status, status
    return status["resting"]["oid"]


def exchange_view(sim: SimHarness) -> tuple[dict[str, str], list[dict]]:
    """Positions and open orders on the xyz dex, asked over HTTP as any client would."""
    user = sim.account[0]
    info = Info(sim.http_url, skip_ws=True, perp_dexs=["", "xyz"])
    state = info.user_state(user, dex="xyz")
    positions = {
        p["position"]["coin"]: p["position"]["szi"]
        for p in state["assetPositions"]
        if Decimal(p["position"]["szi"]) != 0
    }
    return positions, info.open_orders(user, dex="xyz")


async def run_bot_and_guard(tmp: Path, sim: SimHarness, *, timeout_s: float = TIMEOUT_S):
    heartbeat = tmp / "heartbeat.json"
    config = tmp / "bot.toml"
    config.write_text(config_text(sim, heartbeat, timeout_s=timeout_s))
    env = {**os.environ, KEY_ENV: sim.account[1], "PYTHONUNBUFFERED": "1"}
    bot, _bot_log = await start(
        "bot", "--no-status", "--config", str(config), tmp=tmp, env=env, log_name="bot.log"
    )
    guard, guard_log = await start(
        "guard", "--config", str(config), tmp=tmp, env=env, log_name="guard.log"
    )
    return bot, guard, guard_log, heartbeat


async def reap(*procs: asyncio.subprocess.Process) -> None:
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.parametrize("how", ["kill -9", "hung"])
async def test_guard_cancels_flattens_and_verifies_when_the_bot_dies(tmp_path: Path, how: str):
    """kill -9: the bot's process is gone; before that, for longer than the guard's timeout
    with the bot alive and holding a position and a resting order, the guard sends nothing.
    hung: the bot is stopped (SIGSTOP), so it stays alive but beats no more; the guard must
    SIGKILL it first."""
    async with SimHarness(seed=11) as sim:
        bot, guard, guard_log, heartbeat = await run_bot_and_guard(tmp_path, sim)
        try:
            await until(lambda: open_positions(sim), 25, "the bot to hold a position")
            oid = await asyncio.to_thread(place_resting_order, sim)
            positions, orders = await asyncio.to_thread(exchange_view, sim)
            assert positions and oid in [o["oid"] for o in orders]
            if how == "kill -9":
                await only_watches(sim, guard, guard_log, heartbeat, oid)
            assert guard.returncode is None, guard_log.read_text()
            if how == "kill -9":
                os.kill(bot.pid, signal.SIGKILL)
                await bot.wait()
            else:
                os.kill(bot.pid, signal.SIGSTOP)
            out, _ = await asyncio.wait_for(guard.communicate(), 20)
            if how == "hung":
                # the guard ended the hung bot itself: SIGKILL, not the test's kill
                assert await asyncio.wait_for(bot.wait(), 5) == -signal.SIGKILL
        finally:
            await reap(bot, guard)
        log = guard_log.read_text()
        assert guard.returncode == ExitCode.OK, log
        assert "hip3 guard: verified with the exchange" in out.decode(), log
        positions, orders = await asyncio.to_thread(exchange_view, sim)
        assert positions == {} and orders == [], (positions, orders, log)
        assert "cancelled 1 of 1 order(s)" in log, log
        assert "flatten: sell" in log or "flatten: buy" in log, log
        expected = {"kill -9": "is gone", "hung": "stopped beating"}[how]
        assert f"pid {bot.pid} {expected}" in log, log
        if how == "hung":
            assert "sending SIGKILL" in log, log
        assert sim.account[1][2:] not in log  # the key never reaches the guard's output


async def only_watches(
    sim: SimHarness, guard: Any, guard_log: Path, heartbeat: Path, oid: int
) -> None:
    """While the bot beats the guard sends nothing: the bot's positions and the resting order
    stay over more than the guard's timeout."""
    await until(
        lambda: b'"positions":0' not in heartbeat.read_bytes(),
        5,
        "the heartbeat to report the position",
    )
    held = open_positions(sim)
    await asyncio.sleep(TIMEOUT_S + 0.5)
    assert guard.returncode is None, guard_log.read_text()
    positions, orders = await asyncio.to_thread(exchange_view, sim)
    assert oid in [o["oid"] for o in orders]
    # the bot may trade on, but nothing it held was closed (its exits are off)
    assert set(held) <= set(positions), (held, positions)
    log = guard_log.read_text()
    assert "guard: watching pid" in log and "acting" not in log, log
    assert "cancelled" not in log and "flatten:" not in log, log


async def test_a_bot_that_ends_its_run_says_so_in_its_last_beat(tmp_path: Path):
    """The bot's heartbeat from start to end, in-process: it beats while it runs and its last
    beat says `stopped`, which the guard takes at once, without waiting for a timeout."""
    from hip3.app.bot import run_bot
    from hip3.config import GuardConfig, load_config
    from hip3.guard.heartbeat import read_heartbeat
    from hip3.guard.watcher import Verdict, watch
    from hip3.keys import SigningKey

    heartbeat = tmp_path / "hb.json"
    async with SimHarness(seed=3, feeds=False) as sim:
        cfg = load_config(
            overrides={
                "ws_url": sim.ws_url,
                "journal.enabled": False,
                "guard.heartbeat_path": str(heartbeat),
                "guard.heartbeat_interval_s": 0.05,
            }
        )
        summary = await run_bot(
            cfg, duration_s=1.0, install_signals=False, key=SigningKey.from_hex(sim.account[1])
        )
    assert summary["reconciled"] is True
    last = read_heartbeat(heartbeat)
    assert last is not None and last.state == "stopped" and last.pid == os.getpid()
    assert last.seq >= 10  # about 20 beats in one second, and the last one
    assert last.account == sim.account[0].lower() and last.network == "sim"
    result = await asyncio.wait_for(
        watch(heartbeat, GuardConfig(timeout_s=60), account=sim.account[0], network="sim"), 5
    )
    assert result.verdict is Verdict.STOPPED
