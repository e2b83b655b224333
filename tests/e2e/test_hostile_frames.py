"""Hostile frames over a real socket: the bot survives, counts them, and nothing changes.

A small websocket proxy sits between the real bot and the simulator. It forwards both ways,
and on demand injects a frame of its own, holds back a market-data channel (so a test can
tell that state did not move), or replaces the answer to one info request with garbage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from hip3.app.bot import run_bot
from hip3.events import OperatorCommand
from hip3.keys import SigningKey
from hip3.sim.harness import SimHarness

from .support import bot_config, wait_for

pytestmark = pytest.mark.e2e

COIN = "xyz:AAA"
# no entries: the only changes to positions or orders would come from the hostile frames
QUIET = {
    "detector": {"min_edge_bps": 100_000.0},
    "shutdown": {"flatten_on_exit": False, "cancel_on_exit": True},
}


class HostileProxy:
    """Forwards a client to the simulator and misbehaves where a test asks it to."""

    def __init__(self, upstream_url: str) -> None:
        self.upstream_url = upstream_url
        self.url = ""
        self.held_channels: set[str] = set()  # simulator frames of these channels are dropped
        self.garbage_answers: dict[str, Any] = {}  # info type -> data sent once instead
        self.replaced: list[str] = []
        self._info_posts: dict[int, str] = {}  # post id -> info type asked
        self._clients: set[Any] = set()
        self._server: Any = None

    async def __aenter__(self) -> HostileProxy:
        self._server = await serve(self._serve, "127.0.0.1", 0, max_size=None)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ws"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def inject(self, frame: str) -> None:
        for client in list(self._clients):
            await client.send(frame)

    async def _serve(self, client: Any) -> None:
        async with connect(self.upstream_url, max_size=None) as upstream:
            self._clients.add(client)
            try:
                pumps = [
                    asyncio.create_task(self._to_server(client, upstream)),
                    asyncio.create_task(self._to_client(upstream, client)),
                ]
                _done, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
            finally:
                self._clients.discard(client)

    async def _to_server(self, client: Any, upstream: Any) -> None:
        async for message in client:
            request = json.loads(message)
            if request.get("method") == "post" and request["request"]["type"] == "info":
                self._info_posts[request["id"]] = request["request"]["payload"]["type"]
            await upstream.send(message)

    async def _to_client(self, upstream: Any, client: Any) -> None:
        async for message in upstream:
            frame = json.loads(message)
            channel = frame.get("channel")
            if channel in self.held_channels:
                continue
            if channel == "post":
                asked = self._info_posts.pop(frame["data"]["id"], None)
                if asked in self.garbage_answers:
                    frame["data"]["response"]["payload"]["data"] = self.garbage_answers.pop(asked)
                    self.replaced.append(asked)
                    message = json.dumps(frame)
            await client.send(message)


async def run_bot_through(proxy: HostileProxy, sim: SimHarness, during) -> tuple[dict, Any]:
    """The real bot, connected through `proxy`; `during(d)` runs once the bot has a dispatcher
    and the bot is stopped (without flattening) when it returns."""
    cfg = bot_config(proxy.url, **QUIET)
    box: dict[str, Any] = {}
    bot = asyncio.create_task(
        run_bot(
            cfg,
            duration_s=60,
            install_signals=False,
            on_dispatcher=lambda d, _sim: box.setdefault("d", d),
            key=SigningKey.from_hex(sim.account[1]),
        )
    )
    assert await wait_for(lambda: "d" in box, 10)
    d = box["d"]
    try:
        await during(d)
    finally:
        d.put(OperatorCommand("shutdown", "test done"))
    summary = await asyncio.wait_for(bot, 30)
    return summary, d


def bad_frames(d: Any) -> int:
    return sum(d.decode_errors.values())


async def assert_survives(d: Any, frame: str, proxy: HostileProxy, snapshot) -> None:
    before, seen = snapshot(), bad_frames(d)
    await proxy.inject(frame)
    assert await wait_for(lambda: bad_frames(d) > seen, 5), "the bad frame was not counted"
    await asyncio.sleep(0.3)  # the frame is handled on arrival; give a wrong path time to act
    assert d.decode_errors["invalid"] >= 1
    assert d.counters["internal_errors"] == 0
    assert d.hardstop.is_armed and d.fatal is None
    assert snapshot() == before


async def test_a_bbo_price_abc_is_counted_and_changes_nothing() -> None:
    async with SimHarness(seed=21) as sim, HostileProxy(sim.ws_url) as proxy:

        async def during(d: Any) -> None:
            assert await wait_for(d.ready.trading, 15)
            proxy.held_channels.add("bbo")
            await asyncio.sleep(0.3)  # bbo frames already in flight land first
            st = d.markets[COIN]

            def book() -> tuple:
                return (st.bid_px, st.ask_px, st.bid_sz, st.bbo_time_ms, st.bbo_updates)

            bad = {
                "channel": "bbo",
                "data": {
                    "coin": COIN,
                    "time": st.bbo_time_ms + 1,
                    "bbo": [{"px": "abc", "sz": "1", "n": 1}, {"px": "101", "sz": "1", "n": 1}],
                },
            }
            await assert_survives(d, json.dumps(bad), proxy, book)
            proxy.held_channels.clear()

        summary, _d = await run_bot_through(proxy, sim, during)
    assert summary["fatal"] is None and summary["reconciled"] is True
    assert summary["hardstop"]["state"] == "armed"


async def test_an_oracle_nan_is_counted_and_changes_nothing() -> None:
    async with SimHarness(seed=22) as sim, HostileProxy(sim.ws_url) as proxy:

        async def during(d: Any) -> None:
            assert await wait_for(d.ready.trading, 15)
            proxy.held_channels.add("activeAssetCtx")
            await asyncio.sleep(0.3)
            st = d.markets[COIN]

            def ctx() -> tuple:
                return (st.oracle_px, st.mark_px, st.mid_px, st.ctx_updates)

            bad = {
                "channel": "activeAssetCtx",
                "data": {
                    "coin": COIN,
                    "ctx": {"oraclePx": "NaN", "markPx": "100", "funding": "0", "midPx": "100"},
                },
            }
            await assert_survives(d, json.dumps(bad), proxy, ctx)
            proxy.held_channels.clear()

        summary, _d = await run_bot_through(proxy, sim, during)
    assert summary["fatal"] is None and summary["hardstop"]["state"] == "armed"


async def test_a_fill_size_abc_is_counted_and_changes_nothing() -> None:
    async with SimHarness(seed=23) as sim, HostileProxy(sim.ws_url) as proxy:

        async def during(d: Any) -> None:
            assert await wait_for(d.ready.trading, 15)

            def account() -> tuple:
                return (d.positions.signed_sizes(), d.positions.fills_applied)

            fill = {
                "coin": COIN,
                "px": "100",
                "sz": "abc",
                "side": "B",
                "time": 1_764_000_000_000,
                "oid": 424242,
                "tid": 434343,
                "fee": "0.01",
                "closedPnl": "0",
                "crossed": True,
            }
            bad = {"channel": "userFills", "data": {"user": d.user, "fills": [fill]}}
            await assert_survives(d, json.dumps(bad), proxy, account)

        summary, _d = await run_bot_through(proxy, sim, during)
    assert summary["positions"] == {} and summary["reconciled"] is True
    assert summary["hardstop"]["state"] == "armed"


async def test_an_error_frame_naming_a_5000_digit_post_id_is_counted_and_changes_nothing() -> None:
    async with SimHarness(seed=26) as sim, HostileProxy(sim.ws_url) as proxy:

        async def during(d: Any) -> None:
            assert await wait_for(d.ready.trading, 15)
            before = (d.positions.signed_sizes(), len(d.wire.posts), d.executor.submitted)
            text = "too many pending post requests id=" + "9" * 5000
            await proxy.inject(json.dumps({"channel": "error", "data": text}))
            assert await wait_for(lambda: d.counters["error_frames"] >= 1, 5)
            await asyncio.sleep(0.3)
            assert d.counters["internal_errors"] == 0
            assert d.hardstop.is_armed and d.fatal is None
            after = (d.positions.signed_sizes(), len(d.wire.posts), d.executor.submitted)
            assert after[0] == before[0] and after[2] == before[2]

        summary, _d = await run_bot_through(proxy, sim, during)
    assert summary["fatal"] is None and summary["hardstop"]["state"] == "armed"


@pytest.mark.parametrize(
    ("info_type", "garbage"),
    [
        (
            "openOrders",
            [
                {
                    "coin": COIN,
                    "limitPx": "abc",
                    "oid": "abc",
                    "side": "Q",
                    "sz": "x",
                    "timestamp": -1,
                }
            ],
        ),
        (
            "clearinghouseState",
            {"assetPositions": [{"position": {"coin": COIN, "szi": "NaN", "entryPx": "abc"}}]},
        ),
    ],
)
async def test_a_garbage_reconciliation_answer_is_refused_and_asked_again(
    info_type: str, garbage: Any
) -> None:
    async with SimHarness(seed=24) as sim, HostileProxy(sim.ws_url) as proxy:
        proxy.garbage_answers[info_type] = garbage

        async def during(d: Any) -> None:
            # the first answer is garbage; the step fails, asks again, and the epoch gets READY
            assert await wait_for(d.ready.trading, 15)
            assert proxy.replaced == [info_type]
            assert d.decode_errors["bad_answer"] == 1
            assert d.counters["internal_errors"] == 0
            assert d.hardstop.is_armed and d.fatal is None
            assert d.counters["adopted_orders"] == 0
            assert list(d.orders.live_orders()) == []
            assert d.positions.signed_sizes() == {}

        summary, _d = await run_bot_through(proxy, sim, during)
    assert summary["reconciled"] is True and summary["hardstop"]["state"] == "armed"


async def test_40000_deep_frames_do_not_kill_the_bot_process(tmp_path: Path) -> None:
    """The bot runs as its own process (its recursion limit raised by eth-account, as in
    production), so a segfault shows as its exit status instead of killing pytest."""
    summary_path = tmp_path / "summary.json"
    config_path = tmp_path / "quiet.toml"
    config_path.write_text(
        "[detector]\nmin_edge_bps = 100000.0\n"
        "[shutdown]\nflatten_on_exit = false\ncancel_on_exit = true\n"
        "[journal]\nenabled = false\n"
    )
    async with SimHarness(seed=25) as sim, HostileProxy(sim.ws_url) as proxy:
        bot = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hip3",
            "bot",
            "--config",
            str(config_path),
            "--ws-url",
            proxy.url,
            "--key-env",
            "HIP3_TEST_KEY",
            "--duration",  # the longest it may run: the test stops it once both frames are handled
            "60",
            "--summary-json",
            str(summary_path),
            "--no-status",
            env={**os.environ, "HIP3_TEST_KEY": sim.account[1]},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        log: list[str] = []

        async def read_until(text: str) -> bool:
            while True:
                line = await bot.stderr.readline()
                if not line:
                    return False
                log.append(line.decode(errors="replace"))
                if text in log[-1]:
                    return True

        try:
            assert await asyncio.wait_for(read_until("READY-TRADING=True"), 30), "".join(log)
            depth = 40_000
            deep = '{"channel":"bbo","data":' + "[" * depth + "]" * depth + "}"
            await proxy.inject(deep)
            if not await asyncio.wait_for(read_until("(too_deep)"), 10):
                code = await bot.wait()
                pytest.fail(f"the bot died on the deep frame, exit status {code}")
            # the same nesting inside an error frame's text, which names a subscription
            nested = '{"type":"bbo","coin":' + "[" * depth + "]" * depth + "}"
            await proxy.inject(
                json.dumps({"channel": "error", "data": "Invalid subscription " + nested})
            )
            if not await asyncio.wait_for(read_until("exchange error frame #1"), 10):
                code = await bot.wait()
                pytest.fail(f"the bot died on the deep error text, exit status {code}")
            # both frames handled: the operator's stop (SIGTERM, graceful) ends the run
            bot.send_signal(signal.SIGTERM)
            rest = await asyncio.wait_for(bot.stderr.read(), 60)
            log.append(rest.decode(errors="replace"))
            code = await bot.wait()
        finally:
            if bot.returncode is None:
                bot.kill()
                await bot.wait()
    output = "".join(log)
    assert code == 0, f"bot exit status {code}\n{output[-3000:]}"
    assert "internal error" not in output
    summary = json.loads(summary_path.read_text())
    assert summary["hardstop"]["state"] == "armed"
    assert summary["fatal"] is None and summary["reconciled"] is True
    assert {c: Decimal(s) for c, s in summary["positions"].items()} == {}
