"""hip3's public surface: what a program or a test built on hip3 may import.

Everything named here is documented (README, docs/guides/) and kept: a name that disappears
fails tests/test_public_api.py. Anything else in the package is internal and may change.

- The strategy API (hip3/strategy/api.py): `Strategy` and the `Context` it acts through, the
  callbacks' types, `Action`, the read-only views.
- Configuration: `load_config`, `Config`, `ConfigError`.
- Running a bot: `run_bot` (what `hip3 bot` runs), `BotError`.
- The simulator harness: `SimHarness`; `run_on_sim` and `sim_config` run the bot against it
  (hip3/testing.py, which is also the pytest plugin giving the `hip3_sim` fixture).
- The built-in strategy, `DislocationTaker`.
"""

from __future__ import annotations

from hip3.app.bot import BotError, run_bot
from hip3.config import Config, ConfigError, load_config
from hip3.sim.harness import SimHarness
from hip3.strategy.api import (
    TIFS,
    Action,
    AssetCtx,
    Bbo,
    Book,
    Context,
    Fill,
    MarketView,
    OrderUpdate,
    OrderView,
    PositionView,
    ReadyChange,
    Signal,
    Strategy,
    Tif,
    Timer,
)
from hip3.strategy.taker import DislocationTaker
from hip3.testing import run_on_sim, sim_config

__all__ = [
    "TIFS",
    "Action",
    "AssetCtx",
    "Bbo",
    "Book",
    "BotError",
    "Config",
    "ConfigError",
    "Context",
    "DislocationTaker",
    "Fill",
    "MarketView",
    "OrderUpdate",
    "OrderView",
    "PositionView",
    "ReadyChange",
    "Signal",
    "SimHarness",
    "Strategy",
    "Tif",
    "Timer",
    "load_config",
    "run_bot",
    "run_on_sim",
    "sim_config",
]
