"""End-to-end helpers: the real bot over real websockets against the simulator on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hip3.app.bot import run_bot
from hip3.events import OperatorCommand
from hip3.keys import SigningKey
from hip3.sim.harness import SimHarness
from hip3.testing import config_for_url


def bot_config(ws_url: str, **overrides: Any):
    """The public test configuration (hip3.testing) with a shorter handshake deadline."""
    websocket = {"handshake_timeout_s": 5.0, **overrides.pop("websocket", {})}
    return config_for_url(ws_url, websocket=websocket, **overrides)


async def run_against(
    sim: SimHarness,
    *,
    duration_s: float,
    during: Callable[[Any, SimHarness], Any] | None = None,
    until: Callable[[Any], bool] | None = None,
    key: str | None = None,
    **overrides: Any,
) -> tuple[dict, Any]:
    """Run the bot against `sim`; `during(dispatcher, sim)` runs alongside.

    The run ends with the operator's graceful stop (the one `--duration` sends too) as soon as
    `during` has returned (or failed) or `until(dispatcher)` holds, whichever comes first;
    `duration_s` is only the longest it may take, so a test waits for what it checks rather
    than for a fixed time. A test that gives neither runs the whole `duration_s`.
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
    side = stopper = None
    if during is not None or until is not None:
        while "d" not in box and not task.done():
            await asyncio.sleep(0.01)
    if "d" in box and during is not None:
        side = asyncio.create_task(during(box["d"], sim))
    if "d" in box and (during is not None or until is not None):
        stopper = asyncio.create_task(_stop_when_done(box["d"], side, until))
    try:
        summary = await asyncio.wait_for(task, timeout=duration_s + 60)
    finally:
        if stopper is not None:
            stopper.cancel()
    if side is not None:
        await side
    return summary, box["d"]


_stoppers: set[asyncio.Task] = set()


def stop_when(until: Callable[[Any], bool]) -> Callable[[Any, Any], None]:
    """An `on_dispatcher` for `run_bot`: the operator's graceful stop as soon as
    `until(dispatcher)` holds, so the run's `duration_s` is only the longest it may take."""

    def hook(d: Any, _sim: Any) -> None:
        task = asyncio.ensure_future(_stop_when_done(d, None, until))
        _stoppers.add(task)
        task.add_done_callback(_stoppers.discard)

    return hook


async def _stop_when_done(d: Any, side: asyncio.Task | None, until: Callable[[Any], bool] | None):
    while not (side is not None and side.done()) and not (until is not None and until(d)):
        if d.finished.is_set():
            return  # the run ended on its own (a fatal error, its duration)
        await asyncio.sleep(0.01)
    d.put(OperatorCommand("shutdown", "the test has seen what it waited for"))


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
