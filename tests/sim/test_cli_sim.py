"""`hip3 sim` as a user runs it: a subprocess that prints how to reach it, then serves."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys

import websockets
from eth_account import Account

START_S = 30


def _start(*extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hip3", "sim", "--port", "0", "--seed", "3", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def _read_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), START_S)


async def test_prints_three_lines_serves_and_stops_on_sigterm():
    proc = _start("--fund", "0x" + "12" * 20 + ":500")
    try:
        lines = [(await _read_line(proc)).strip() for _ in range(3)]
        assert re.fullmatch(r"ws_url=ws://127\.0\.0\.1:\d+/ws", lines[0]), lines
        assert re.fullmatch(r"address=0x[0-9a-f]{40}", lines[1]), lines
        assert re.fullmatch(r"private_key=0x[0-9a-f]{64}", lines[2]), lines[:2]
        address = lines[1].removeprefix("address=")
        key = lines[2].removeprefix("private_key=")
        assert Account.from_key(key).address.lower() == address
        url = lines[0].removeprefix("ws_url=")
        async with websockets.connect(url) as ws:
            await ws.send(
                json.dumps(
                    {"method": "subscribe", "subscription": {"type": "bbo", "coin": "xyz:AAA"}}
                )
            )
            # Feeds are running: the book has makers on both sides.
            async with asyncio.timeout(10):
                while True:
                    frame = json.loads(await ws.recv())
                    if frame["channel"] == "bbo" and None not in frame["data"]["bbo"]:
                        break
            await ws.send(
                json.dumps(
                    {
                        "method": "post",
                        "id": 1,
                        "request": {
                            "type": "info",
                            "payload": {
                                "type": "clearinghouseState",
                                "user": "0x" + "12" * 20,
                                "dex": "",  # --fund deposits on the first perp dex only
                            },
                        },
                    }
                )
            )
            async with asyncio.timeout(10):
                while (frame := json.loads(await ws.recv()))["channel"] != "post":
                    pass
            state = frame["data"]["response"]["payload"]["data"]
            assert state["marginSummary"]["accountValue"] in ("500", "500.0")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(asyncio.to_thread(proc.wait), START_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_fault_spec_exits_2_with_a_message():
    proc = subprocess.run(
        [sys.executable, "-m", "hip3", "sim", "--port", "0", "--faults", "explode=1"],
        capture_output=True,
        text=True,
        timeout=START_S,
    )
    assert proc.returncode == 2
    assert "unknown fault 'explode'" in proc.stderr
    assert proc.stdout == ""


def test_bad_fund_argument_is_refused():
    proc = subprocess.run(
        [sys.executable, "-m", "hip3", "sim", "--fund", "0x12:abc"],
        capture_output=True,
        text=True,
        timeout=START_S,
    )
    assert proc.returncode == 2
    assert "expected ADDR:USDC" in proc.stderr
