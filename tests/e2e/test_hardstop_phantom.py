"""A position the bot believes in but the exchange does not hold cannot be flattened: the
HardStop must not loop on it. Over real websockets against the simulator, the reduce-only
flatten is refused ("would increase position"), the HardStop moves on to verification, adopts
the exchange's positions and halts, and the summary's positions equal the exchange's; the
phantom is reported as a divergence."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hip3.events import OperatorCommand
from hip3.sim.harness import SimHarness

from .support import run_against, truth_positions, wait_for

pytestmark = pytest.mark.e2e


async def test_hardstop_with_a_phantom_position_halts_with_the_exchange_positions():
    seen: dict = {}

    async def during(d, sim):
        assert await wait_for(d.ready.trading, 5.0), d.ready.describe()
        coin = d.coins[0]
        # the bot now believes in 0.5 more than the exchange holds on this coin
        held = truth_positions(sim).get(coin, Decimal(0))
        d.positions.position(coin).size = held + Decimal("0.5")
        d.put(OperatorCommand("hardstop", "phantom test"))
        assert await wait_for(lambda: d.hardstop.state == "halted", 15.0), (
            d.hardstop.state,
            {c: fm.state for c, fm in d.flatten.items()},
        )
        seen["coin"] = coin
        seen["reduce_only_refusals"] = d.counters["flatten_gave_up"]
        seen["positions_at_halt"] = {c: Decimal(s) for c, s in d.positions.signed_sizes().items()}
        seen["exchange_at_halt"] = truth_positions(sim)

    async with SimHarness(seed=11) as sim:
        summary, d = await run_against(
            sim,
            duration_s=20,
            during=during,
            shutdown={"flatten_on_exit": False},
            flatten={"retry_backoff_s": 0.2, "retry_backoff_max_s": 0.5},
        )
    assert summary["hardstop"]["state"] == "halted"
    assert summary["hardstop"]["reasons"][0] == "operator: phantom test"
    assert seen["reduce_only_refusals"] >= 1
    assert seen["coin"] in d.hardstop.given_up
    # at the halt and at the end, what the bot holds is what the exchange holds: nothing
    assert seen["positions_at_halt"] == seen["exchange_at_halt"] == {}
    assert summary["positions"] == {} and summary["exchange_positions"] == {}
    # The positions agree again, but the run did hold a belief no fill explained: the summary
    # says so rather than call the run reconciled.
    assert summary["reconciled"] is False
    assert [t for t in d.positions.divergence_report() if t.startswith(seen["coin"])], (
        d.positions.divergence_report()
    )
