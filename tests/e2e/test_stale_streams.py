"""A stalled stream on a real socket: the simulator keeps the connection (and every other
stream) alive while one market's context stops; the bot marks that market stale, resubscribes
the stream, and replaces the connection when resubscribing does not help."""

from __future__ import annotations

from hip3.sim.harness import SimHarness
from tests.e2e.support import run_against, wait_for

COIN = "xyz:AAA"
KEY = "activeAssetCtx:" + COIN
FAST = {"max_ctx_age_s": 0.5, "resubscribe_wait_s": 0.3, "max_resubscribes": 1}


async def test_a_stalled_context_is_healed_by_resubscribing_it():
    async def during(d, sim):
        assert await wait_for(d.ready.trading, 5.0), d.ready.describe()
        assert sim.faults.stall("activeAssetCtx", COIN) == 1
        assert await wait_for(lambda: d.streams.retry_counts.get(KEY, 0) >= 1, 3.0)
        assert await wait_for(lambda: d.ready.market(COIN), 3.0), d.ready.stale_markets()
        assert d.conn.epoch == 1  # no reconnect was needed
        assert d.streams.silence_counts[KEY] == 1

    async with SimHarness(seed=2) as sim:
        await run_against(sim, duration_s=3, during=during, freshness=FAST)


async def test_a_context_silent_through_its_resubscribes_replaces_the_connection():
    async def during(d, sim):
        assert await wait_for(d.ready.trading, 5.0), d.ready.describe()
        sim.faults.stall("activeAssetCtx", COIN, through_resubscribe=True)
        assert await wait_for(lambda: d.conn.epoch >= 2, 5.0), d.conn.state
        assert d.streams.reconnect_counts == {KEY: 1}
        assert d.counters["epoch_end:stale stream"] == 1
        assert await wait_for(lambda: d.ready.market(COIN), 5.0), d.ready.stale_markets()

    async with SimHarness(seed=2) as sim:
        summary, _d = await run_against(sim, duration_s=4, during=during, freshness=FAST)
    assert summary["stale_streams"]["reconnects"] == {KEY: 1}
