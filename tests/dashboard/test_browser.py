"""The dashboard in a real headless Chromium, served by a running bot on the simulator.

The page must show the bot's live values (a market's READY and bbo, then the new bbo after the
market moves), refuse the HardStop button with a wrong token, trip the bot's HardStop with the
right one, and reset it once halted. Chromium is the distribution's package; outside CI a
machine without it skips this test, under CI (`CI=true`) that is a failure.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
from decimal import Decimal
from pathlib import Path

import pytest
from e2e.support import bot_config, wait_for

from dashboard.browser import Chromium, find_chromium
from hip3.app.bot import run_bot
from hip3.events import OperatorCommand
from hip3.keys import SigningKey
from hip3.sim.harness import SimHarness

pytestmark = pytest.mark.e2e

TOKEN = "browser-test-token-0123456789"
MAKER = "0x" + "5d" * 20


def _chromium() -> str:
    path = find_chromium()
    if path is None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail("chromium is not installed; .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium not found (apt-get install chromium); CI installs it and runs this")
    return path


class _Urls(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = re.search(r"dashboard on (http://\S+)", record.getMessage())
        if found:
            self.urls.append(found.group(1))


def _plain(x: Decimal) -> str:
    return format(x.normalize(), "f")


def _cell(coin: str, field: str, attr: str = "textContent") -> str:
    sel = json.dumps(f'#markets tr[data-coin="{coin}"] td[data-field="{field}"]')
    getter = "el.dataset.px" if attr == "px" else "el.textContent"
    return f"(() => {{ const el = document.querySelector({sel}); return el && {getter}; }})()"


async def test_page_shows_live_values_and_its_button_trips_the_hardstop(monkeypatch):
    executable = _chromium()
    monkeypatch.setenv("HIP3_DASHBOARD_TOKEN", TOKEN)
    urls = _Urls()
    server_log = logging.getLogger("hip3.dashboard.server")
    server_log.addHandler(urls)
    server_log.setLevel(logging.INFO)
    try:
        async with SimHarness(seed=5, feeds=False) as sim:
            cfg = bot_config(
                sim.ws_url,
                dashboard={"enabled": True, "port": 0},
                # the test moves prices itself: books must not go stale between its moves
                freshness={"max_bbo_age_s": 60, "max_ctx_age_s": 60},
                shutdown={"flatten_on_exit": False},
            )
            box: dict = {}
            task = asyncio.create_task(
                run_bot(
                    cfg,
                    duration_s=60,
                    install_signals=False,
                    on_dispatcher=lambda d, _sim: box.setdefault("d", d),
                    key=SigningKey.from_hex(sim.account[1]),
                )
            )
            try:
                assert await wait_for(lambda: "d" in box and bool(urls.urls), 5.0)
                d = box["d"]
                assert await wait_for(d.ready.trading, 5.0)
                await _drive_the_page(executable, urls.urls[-1], d, sim)
            finally:
                if "d" in box:
                    box["d"].put(OperatorCommand("shutdown", "test"))
                summary = await asyncio.wait_for(task, 30)
        assert summary["stop"] == "stopped", summary["stop"]
        # the run is over: so is its dashboard
        port = int(urls.urls[-1].rsplit(":", 1)[1].strip("/"))
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        server_log.removeHandler(urls)


async def _drive_the_page(executable: str, url: str, d, sim) -> None:
    coin = next(iter(d.markets))
    st = d.markets[coin]
    # without feeds the book starts empty: a maker quotes around the oracle
    assert await wait_for(lambda: st.oracle_px is not None, 3.0)
    _quote(sim, coin, st.oracle_px, Decimal("0.0005"))
    assert await wait_for(lambda: st.bid_px is not None and st.ask_px is not None, 3.0)
    async with Chromium(executable) as browser:
        await browser.open(url)
        # the bot's READY and bbo, as the page draws them
        await browser.wait_for(_cell(coin, "ready") + " === 'yes'", 5)
        assert d.ready.market(coin)
        shown = await browser.wait_for(_cell(coin, "bid", "px"), 5)
        assert shown == _plain(st.bid_px)
        assert await browser.evaluate(_cell(coin, "ask", "px")) == _plain(st.ask_px)
        assert await browser.evaluate(_cell(coin, "oracle_px")) == _plain(st.oracle_px)
        assert await browser.evaluate("document.getElementById('hs-state').textContent") == (
            "armed"
        )

        # the market moves: a maker quotes inside the spread, and the page follows
        before = st.bid_px
        _quote(sim, coin, st.oracle_px, Decimal("0.0002"))
        assert await wait_for(lambda: st.bid_px != before, 3.0), "the bot never saw the move"
        moved = _plain(st.bid_px)
        await browser.wait_for(_cell(coin, "bid", "px") + f" === {json.dumps(moved)}", 5)
        # the PnL and fees charts have samples
        await browser.wait_for("document.querySelector('#chart-fees polyline') !== null", 5)

        # a wrong token: the server refuses, the HardStop stays armed
        await _set_token(browser, "not-the-token-at-all-xyz")
        await browser.click("#btn-hardstop")
        await browser.click("#btn-hardstop")  # the second click confirms
        await browser.wait_for("document.getElementById('op-msg').textContent.includes('401')", 5)
        assert d.hardstop.state == "armed"

        # the right token: the HardStop trips, by the operator, and the page shows it
        await _set_token(browser, TOKEN)
        await browser.click("#btn-hardstop")
        await browser.click("#btn-hardstop")
        assert await wait_for(lambda: d.hardstop.state != "armed", 5.0)
        assert d.hardstop.reasons == ["operator: dashboard"]
        await browser.wait_for("document.getElementById('hs-state').textContent !== 'armed'", 5)
        # halted (cancelled, flattened, verified): the reset button brings it back to armed
        assert await wait_for(lambda: d.hardstop.state == "halted", 5.0), d.hardstop.state
        await browser.wait_for("!document.getElementById('btn-reset').disabled", 5)
        shot = os.environ.get("HIP3_DASHBOARD_SCREENSHOT")
        if shot:  # for a person to look at; never part of the repository
            Path(shot).write_bytes(await browser.screenshot())
        await browser.click("#btn-reset")
        await browser.click("#btn-reset")
        assert await wait_for(lambda: d.hardstop.state == "armed", 5.0), d.hardstop.state
        await browser.wait_for("document.getElementById('hs-state').textContent === 'armed'", 5)
        assert not [line for line in browser.console if line.startswith("exception")]


def _quote(sim, coin: str, oracle: Decimal, half_spread: Decimal) -> None:
    bid, ask = oracle * (1 - half_spread), oracle * (1 + half_spread)
    sim.exchange.replace_maker_quotes(coin, MAKER, [(bid, Decimal(5))], [(ask, Decimal(5))])


async def _set_token(browser: Chromium, token: str) -> None:
    await browser.evaluate("document.getElementById('token').value = ''")
    await browser.click("#token")
    await browser.type_text(token)
    await browser.click("#token-form button")
    await browser.wait_for(
        "document.getElementById('op-msg').textContent === 'token set for this tab'", 3
    )
