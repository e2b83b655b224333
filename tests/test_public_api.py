"""What a user may import is named and kept: a public name that disappears fails here, and
the pytest plugin that gives `hip3_sim` is registered by the package's entry point."""

from __future__ import annotations

import importlib.metadata

import hip3.api

PUBLIC = {
    # the strategy API
    "Strategy", "Context", "Action", "Bbo", "Book", "AssetCtx", "OrderUpdate", "Fill", "Timer",
    "ReadyChange", "MarketView", "OrderView", "PositionView", "Signal", "Tif", "TIFS",
    "DislocationTaker",
    # configuration
    "load_config", "Config", "ConfigError",
    # running a bot
    "run_bot", "BotError",
    # the simulator harness
    "SimHarness", "run_on_sim", "sim_config",
}  # fmt: skip


def test_every_public_name_is_exported_and_importable():
    assert set(hip3.api.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(hip3.api, name) is not None, name


def test_the_pytest_plugin_is_registered_by_entry_point():
    (plugin,) = [e for e in importlib.metadata.entry_points(group="pytest11") if e.name == "hip3"]
    assert plugin.value == "hip3.testing"
    assert callable(plugin.load().hip3_sim)


async def test_hip3_sim_is_a_started_simulator(hip3_sim):
    assert hip3_sim.ws_url.startswith("ws://127.0.0.1:")
    address, _key = hip3_sim.account
    assert hip3_sim.exchange.open_orders(address) == []
