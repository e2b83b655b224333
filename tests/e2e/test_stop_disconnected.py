"""A stop asked for while the exchange cannot be reached: it keeps reconnecting until its
deadline to cancel and flatten; when it cannot, the run says so (not reconciled, what may still
be open, the exposure exit code) instead of exiting 0 with a position on the book."""

from __future__ import annotations

import asyncio
import json

import pytest

from hip3.app.exit_codes import ExitCode, code_for_summary
from hip3.app.summary import render
from hip3.events import OperatorCommand
from hip3.sim.harness import SimHarness

from .relay import Relay
from .support import run_against, truth_positions, wait_for
from .test_connection_health import QUIET, open_position_outside_the_bot, sim_port

pytestmark = pytest.mark.e2e

# Flat, the backoff grows from 0.25 s to a minute; no epoch lives long enough to reset it.
GROWING_BACKOFF = {"backoff_min_s": 0.25, "backoff_max_s": 60.0, "exposed_backoff_max_s": 0.5}


async def drop_repeatedly(d, sim, times: int) -> None:
    """Drop the connection as soon as it is live, `times` times: the attempt count grows as
    it did when the reviewer saw backoff past 25 s."""
    for _ in range(times):
        assert await wait_for(lambda: d.conn.state == "live", 10.0), d.conn.state
        epoch = d.conn.epoch
        sim.faults.drop_all()
        assert await wait_for(lambda e=epoch: d.conn.epoch > e, 10.0)


async def test_stop_while_unreachable_reports_what_may_be_open():
    """The exchange becomes unreachable, then the stop is asked for. The stop keeps trying to
    reconnect (several epochs inside its 3 s deadline), cannot, and the summary says so:
    not reconciled (text and JSON), the position it last knew, the exposure exit code."""
    relay = None
    epochs_at_stop = 0

    async def during(d, sim):
        nonlocal epochs_at_stop
        await drop_repeatedly(d, sim, 4)
        assert await wait_for(lambda: d.conn.state == "live", 10.0)
        await relay.sever()
        assert await wait_for(lambda: d.conn.state == "backoff", 5.0), d.conn.state
        epochs_at_stop = d.conn.epoch
        d.put(OperatorCommand("shutdown", "test"))

    async with SimHarness(seed=11) as sim:
        open_position_outside_the_bot(sim)
        relay = await Relay(sim_port(sim)).start()
        try:
            summary, d = await run_against(
                sim,
                duration_s=30,
                during=during,
                websocket=GROWING_BACKOFF,
                shutdown={"timeout_s": 3.0},
                ws_url=relay.ws_url,
                **QUIET,
            )
        finally:
            await relay.sever()
        assert truth_positions(sim)  # the position is really still there
    assert d.conn.epoch - epochs_at_stop >= 3, "the stop gave up reconnecting early"
    assert summary["stop_timed_out"] is True
    assert summary["reconciled"] is False
    assert summary["reconcile_error"]  # the final check could not reach the exchange either
    assert summary["positions"] == {"xyz:DDD": "0.02"}
    assert code_for_summary(summary) is ExitCode.EXPOSED
    assert "reconciled: False" in render(summary)
    assert json.loads(json.dumps(summary))["reconciled"] is False


async def test_stop_while_disconnected_reconnects_flattens_and_ends_clean():
    """The reviewer's run: repeated drops grew the backoff, then the stop came while the
    exchange was unreachable. It comes back 2 s later; the stop reconnects within its 8 s
    deadline, flattens, verifies, and the run ends reconciled with nothing open: exit 0."""
    relay = None

    async def during(d, sim):
        await drop_repeatedly(d, sim, 6)
        assert await wait_for(lambda: d.conn.state == "live", 10.0)
        await relay.sever()
        assert await wait_for(lambda: d.conn.state == "backoff", 5.0), d.conn.state
        d.put(OperatorCommand("shutdown", "test"))
        await asyncio.sleep(2.0)
        await relay.start()

    async with SimHarness(seed=11) as sim:
        open_position_outside_the_bot(sim)
        relay = await Relay(sim_port(sim)).start()
        try:
            summary, _d = await run_against(
                sim,
                duration_s=30,
                during=during,
                websocket=GROWING_BACKOFF,
                shutdown={"timeout_s": 8.0},
                ws_url=relay.ws_url,
                **QUIET,
            )
        finally:
            await relay.sever()
        assert truth_positions(sim) == {}
        assert sim.exchange.open_orders(sim.account[0]) == []
    assert summary["stop_timed_out"] is False
    assert summary["hardstop"]["state"] == "halted"
    assert summary["reconciled"] is True
    assert summary["exchange_positions"] == {} and summary["exchange_open_orders"] == []
    assert code_for_summary(summary) is ExitCode.OK
