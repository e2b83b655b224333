"""`hip3 bot` and its dashboard: a dashboard that cannot listen stops the start in one line."""

from __future__ import annotations

import socket

import pytest
from e2e.support import bot_config

from hip3.app.bot import BotError, run_bot
from hip3.keys import SigningKey
from hip3.sim.harness import SimHarness

pytestmark = pytest.mark.e2e


async def test_a_dashboard_that_cannot_listen_stops_the_start_in_one_line():
    async with SimHarness(seed=3, feeds=False) as sim:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            cfg = bot_config(sim.ws_url, dashboard={"enabled": True, "port": port})
            with pytest.raises(BotError) as err:
                await run_bot(
                    cfg,
                    duration_s=5,
                    install_signals=False,
                    key=SigningKey.from_hex(sim.account[1]),
                )
    text = str(err.value)
    assert text.startswith(f"dashboard: cannot listen on 127.0.0.1:{port}: ")
    assert text.endswith("(set [dashboard] port)") and "\n" not in text
