"""Testing a strategy against the simulator.

`run_on_sim` runs the real bot (the same dispatcher, gates and order machines as `hip3 bot`)
over a real websocket against a started `SimHarness`, with the simulator's funded account,
for `duration_s`, and returns the run's summary and its dispatcher. The pytest plugin this
module also is (registered by the `pytest11` entry point of the hip3 package) gives a test the
fixture `hip3_sim`: a started `SimHarness`, stopped after the test. The guide is
docs/guides/test-with-the-simulator.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from hip3.config import load_config
from hip3.sim.harness import SimHarness

__all__ = ["config_for_url", "hip3_sim", "run_on_sim", "sim_config"]


def sim_config(sim: SimHarness, **overrides: Any) -> Any:
    """A bot configuration for `sim`: its websocket, no journal, quick reconnects; tables in
    `overrides` merge key by key into those defaults."""
    return config_for_url(sim.ws_url, **overrides)


def config_for_url(ws_url: str, **overrides: Any) -> Any:
    """`sim_config` for a simulator known only by its websocket URL."""
    base: dict[str, Any] = {
        "network": "sim",
        "ws_url": ws_url,
        "journal": {"enabled": False},
        "websocket": {"backoff_min_s": 0.2, "backoff_max_s": 1.0},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return load_config(overrides=base)


async def run_on_sim(
    sim: SimHarness,
    *,
    duration_s: float,
    strategy: type | None = None,
    params: dict[str, Any] | None = None,
    strategy_options: dict[str, Any] | None = None,
    during: Callable[[Any, SimHarness], Awaitable[None]] | None = None,
    **overrides: Any,
) -> tuple[dict, Any]:
    """Run the bot against `sim` for `duration_s` seconds (then a clean stop).

    `strategy` is a Strategy class, given `params` checked against its Params as a
    `[strategy.params]` table would be; None runs what the configuration names (`overrides`
    are configuration tables, e.g. `markets=[{"coin": "xyz:AAA"}]`; `strategy_options` the
    `[strategy]` table's other keys, e.g. `{"book": True}`). `during(dispatcher, sim)` runs
    alongside the bot; its assertion errors are the caller's."""
    from hip3.app.bot import run_bot
    from hip3.keys import SigningKey
    from hip3.strategy.loader import strategy_params

    if strategy_options:
        overrides["strategy"] = dict(strategy_options)
    cfg = sim_config(sim, **overrides)
    factory = None
    if strategy is not None:
        checked = strategy_params(strategy, params)

        def factory(ctx: Any) -> Any:
            return strategy(ctx, checked)

    box: dict[str, Any] = {}

    def grab(d: Any, _sim: Any) -> None:
        box["d"] = d

    task = asyncio.create_task(
        run_bot(
            cfg,
            duration_s=duration_s,
            install_signals=False,
            on_dispatcher=grab,
            key=SigningKey.from_hex(sim.account[1]),
            strategy=factory,
        )
    )
    side = None
    if during is not None:
        while "d" not in box and not task.done():
            await asyncio.sleep(0.01)
        if "d" in box:
            side = asyncio.create_task(during(box["d"], sim))
    try:
        summary = await asyncio.wait_for(task, timeout=duration_s + 60)
    finally:
        if side is not None and not side.done():
            side.cancel()
    if side is not None and not side.cancelled():
        await side  # its assertion errors are the test's
    return summary, box.get("d")


async def _started_sim() -> AsyncIterator[SimHarness]:
    """A started simulator (seed 7, its feeds running), stopped after the test."""
    async with SimHarness(seed=7) as sim:
        yield sim


try:
    import pytest_asyncio
except ImportError:  # the fixture is async: without pytest-asyncio it cannot run, say so
    import pytest

    @pytest.fixture
    def hip3_sim() -> None:
        raise pytest.UsageError(
            "the hip3_sim fixture needs pytest-asyncio (pip install hip3[test])"
        )

else:
    hip3_sim = pytest_asyncio.fixture(_started_sim, name="hip3_sim")
