"""The benchmarks measure what they claim: small runs, checked for pairing and accounting.

No timing is asserted (machines are noisy); these check that every trigger was paired with
exactly the order it caused, that no IOC filled (so every trigger is a fresh entry), and that
the ingest step counts every frame the simulator wrote, that the soak compares the bot's
fills and positions with the simulator's own (in its own process), that the priority
benchmark's counts and priority paid come from the simulator and agree with the bot's journal,
and that the in-process hot path times every trigger against the simulator's exchange core,
which refuses each IOC; and that the timer-tick benchmark's cases hold what they claim
(READY and flat; a position open; one order resting) and send nothing while timed.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bench import hot_path, ingest, priority, soak, tick, tick_to_post

pytestmark = pytest.mark.e2e


async def test_tick_to_post_pairs_every_trigger_with_its_order():
    r = await tick_to_post.run(signals=25, gap_s=0.005, profile=False)
    assert r["missed"] == 0, {k: v for k, v in r.items() if k not in ("pings", "latencies")}
    assert len(r["latencies"]) == 25
    assert all(x > 0 for x in r["latencies"])
    assert r["submitted"] == 25  # one order per trigger, none for anything else
    assert r["orders"] == {"rejected": 25}  # the IOC met the restored book: no position
    assert len(r["pings"]) == 500 and all(x > 0 for x in r["pings"])


async def test_ingest_applies_every_frame_at_a_modest_rate():
    (step,) = await ingest.run([500], step_s=0.5)
    assert step["rate"] == 500
    assert step["sent"] >= 200
    assert step["applied"] == step["sent"]
    assert step["kept_up"]


async def test_soak_accounts_for_every_fill_against_the_simulator_process():
    r = await soak.run(minutes=0.1, faults=soak.DEFAULT_FAULTS, seed=3)
    assert r["truth_fills"] > 0  # it traded, so the comparison below means something
    assert r["lost"] == 0 and r["applied"] == r["truth_fills"]
    assert r["positions_match"]
    assert r["ready"] and len(r["ready"]) == r["epochs"]


def test_hot_path_times_every_trigger_against_the_exchange_core():
    r = hot_path.run(triggers=20, warmup=5, step_ms=50.0, profile=False)
    assert r["missed"] == 0 and len(r["e2e"]) == 20 and all(x > 0 for x in r["e2e"])
    assert all(len(xs) == 20 for xs in r["stages"].values())  # the staged pass too
    assert r["orders"] == 45  # one order per trigger over warm-up and both passes
    # the exchange's matching met every IOC with the restored book: nothing filled
    assert r["order_states"] == {"rejected": 45}
    assert r["exchange_positions"] == {}


def test_percentile_picks_ranks():
    values = list(range(1, 101))
    assert tick_to_post.percentile(values, 0.5) == 51
    assert tick_to_post.percentile(values, 0.99) == 100
    assert tick_to_post.percentile([7], 0.99) == 7


async def test_priority_bench_counts_entries_and_priority_paid_from_the_simulator(tmp_path: Path):
    r = await priority.one_run("fixed8", 6.0, 7, "contested", tmp_path)
    assert r["reconciled"] is True and r["open_positions"] == 0
    assert r["entries"] == r["sent_by_bot"] > 0  # every entry the bot sent is in its journal
    assert r["with_priority"] + r["without_priority"] == r["entries"]
    assert r["filled"] == r["with_priority_filled"] + r["without_priority_filled"]
    # what the exchange took (HYPE rounded up to 1e-8 per order, at 40 USD) is what the
    # journal computed, to that rounding
    assert abs(r["priority_usd"] - r["journal_priority_usd"]) <= r["filled"] * Decimal("4E-7")
    assert (r["priority_usd"] > 0) == (r["with_priority_filled"] > 0)
    assert r["pnl_net"] == r["pnl_after_fees"] - r["priority_usd"]


@pytest.mark.parametrize("case", [tick.idle, tick.position, tick.resting])
def test_each_tick_case_is_timed_in_its_state_with_nothing_sent(case) -> None:
    assert case(ticks=5, rounds=2) > 0  # the case raises if its state or the wire moved
