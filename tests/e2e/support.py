"""End-to-end helpers: the real bot over real websockets against the simulator on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hip3.app.bot import run_bot
from hip3.config import load_config
from hip3.keys import SigningKey
from hip3.sim.harness import SimHarness


def bot_config(ws_url: str, **overrides: Any):
    base: dict[str, Any] = {
        "network": "sim",
        "ws_url": ws_url,
        "journal": {"enabled": False},
        "websocket": {"backoff_min_s": 0.2, "backoff_max_s": 1.0, "handshake_timeout_s": 5.0},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return load_config(overrides=base)


async def run_against(
    sim: SimHarness,
    *,
    duration_s: float,
    during: Callable[[Any, SimHarness], Any] | None = None,
    key: str | None = None,
    **overrides: Any,
) -> tuple[dict, Any]:
    """Run the bot against `sim` for `duration_s`; `during(dispatcher, sim)` runs alongside.
    A `ws_url` override connects through something else (a relay) to the same simulator;
    `key` signs with another key than the simulator account's."""
    cfg = bot_config(overrides.pop("ws_url", sim.ws_url), **overrides)
    box: dict[str, Any] = {}

    def grab(d: Any, _sim: Any) -> None:
        box["d"] = d

    task = asyncio.create_task(
        run_bot(
            cfg,
            duration_s=duration_s,
            install_signals=False,
            on_dispatcher=grab,
            key=SigningKey.from_hex(key or sim.account[1]),
        )
    )
    side = None
    if during is not None:
        while "d" not in box:
            await asyncio.sleep(0.01)
        side = asyncio.create_task(during(box["d"], sim))
    summary = await asyncio.wait_for(task, timeout=duration_s + 60)
    if side is not None:
        await side
    return summary, box["d"]


def truth_positions(sim: SimHarness) -> dict[str, Decimal]:
    return {c: s for c, s in sim.exchange.positions(sim.account[0]).items() if s != 0}


async def wait_for(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.02) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while loop.time() < end:
        if predicate():
            return True
        await asyncio.sleep(step_s)
    return predicate()
