"""`sim.fund_usdc` funds the built-in simulator's account: the bot started without a URL runs
against an in-process simulator whose account holds exactly that much on every dex."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from hip3.app.bot import run_bot
from hip3.config import load_config

from .support import stop_when

pytestmark = pytest.mark.e2e


async def account_values(ws_url: str, user: str) -> dict[str, str]:
    """accountValue per dex, asked over the simulator's socket like any client would."""
    out: dict[str, str] = {}
    async with websockets.connect(ws_url) as ws:
        for i, dex in enumerate(("", "xyz"), start=1):
            payload = {"type": "clearinghouseState", "user": user, "dex": dex}
            request = {"type": "info", "payload": payload}
            await ws.send(json.dumps({"method": "post", "id": i, "request": request}))
        while len(out) < 2:
            msg = json.loads(await ws.recv())
            if msg.get("channel") == "post":
                dex = ("", "xyz")[msg["data"]["id"] - 1]
                state = msg["data"]["response"]["payload"]["data"]
                out[dex] = state["marginSummary"]["accountValue"]
    return out


async def test_fund_usdc_sets_the_built_in_simulators_account_balance():
    seen: dict[str, dict[str, str]] = {}

    def on_dispatcher(d, sim):
        async def ask():
            seen["values"] = await account_values(sim.ws_url, sim.account[0])

        seen["task"] = asyncio.ensure_future(ask())
        stop_when(lambda _d: "values" in seen)(d, sim)

    cfg = load_config(
        overrides={
            "network": "sim",
            "mode": "observation",
            "journal": {"enabled": False},
            "sim": {"fund_usdc": 2500.0},
        }
    )
    summary = await run_bot(cfg, duration_s=15, install_signals=False, on_dispatcher=on_dispatcher)
    await seen["task"]
    assert summary["fatal"] is None
    assert {dex: float(v) for dex, v in seen["values"].items()} == {"": 2500.0, "xyz": 2500.0}
