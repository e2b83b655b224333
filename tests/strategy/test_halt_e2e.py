"""A deployer halt as the exchange shows it, over real sockets: the simulator's `halt=COIN@S`
fault cancels every order on the market, so its book goes empty. The bot names the market
halted and blocks entries there, the other market trades on, and when the makers quote again
the halt is released without a restart."""

from __future__ import annotations

import pytest

from hip3.market.gates import HALTED
from hip3.sim.harness import SimHarness
from tests.e2e.support import run_against, wait_for

pytestmark = pytest.mark.e2e

COIN, OTHER = "xyz:BBB", "xyz:AAA"


async def test_a_halt_blocks_its_market_until_the_book_returns():
    async def during(d, sim):
        assert await wait_for(d.ready.trading, 5.0), d.ready.describe()
        st, gate = d.markets[COIN], d.gates[COIN]
        assert not st.halted
        assert await wait_for(lambda: st.halted, 6.0)  # the halt fires 2 s after the start
        assert await wait_for(lambda: gate.counts[HALTED] > 0, 3.0), dict(gate.counts)
        assert not d.markets[OTHER].halted
        sim.exchange.resume_market(COIN)  # the deployer lifts the halt; makers quote again
        assert await wait_for(lambda: not st.halted, 3.0)
        assert await wait_for(lambda: d.ready.market(COIN), 3.0)
        assert await wait_for(lambda: gate.check(st, d.clock.now_ns()).reason != HALTED, 1.0)

    async with SimHarness(seed=5, faults=f"halt={COIN}@2") as sim:
        _summary, d = await run_against(sim, duration_s=7, during=during)
    assert d.fatal is None
