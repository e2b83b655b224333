"""Positions are the exchange's truth after every reconciliation, over real sockets.

The bot's entry order executes while its socket is cut (the connection dies between the
execution and the answer). After the reconnect the `clearinghouseState` answer already holds
the fill; the userFills snapshot is withheld, so the fill reaches the bot only afterwards, in
the `userFills` info answer and later in the snapshot. It must not be counted on top of the
state the bot has just adopted.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from hip3.sim.harness import SimHarness

from .support import run_against, truth_positions, wait_for

pytestmark = pytest.mark.e2e


def _is_entry_order(raw: bytes) -> bool:
    if b'"order"' not in raw:
        return False
    msg = json.loads(raw)
    request = msg.get("request") or {}
    action = (request.get("payload") or {}).get("action") or {}
    return action.get("type") == "order" and not any(o["r"] for o in action["orders"])


def _tracked(d) -> dict[str, Decimal]:
    return {c: p.size for c, p in d.positions.positions.items() if p.size != 0}


async def test_fill_during_outage_not_counted_again_when_fills_arrive_after_the_state():
    seen: dict[str, object] = {}

    async def during(d, sim):
        assert await wait_for(d.ready.trading, 8.0), d.ready.describe()

        def cut_on_entry(raw: bytes) -> None:
            if "cut" not in seen and _is_entry_order(raw):
                seen["cut"] = d.conn.epoch
                sim.faults.withhold_snapshot = True  # the snapshot comes after the state
                sim.faults.drop_all()  # before the exchange executes and answers

        sim.server.on_client_frame = cut_on_entry
        assert await wait_for(lambda: "cut" in seen, 20.0), "the bot sent no entry"
        sim.server.on_client_frame = None
        truth = truth_positions(sim)
        assert truth, "the entry did not fill while the socket was cut"
        # the next epoch reconciles (state, open orders, fills) and goes live
        assert await wait_for(
            lambda: d.conn.epoch > seen["cut"] and d.conn.state == "live", 10.0
        ), d.conn.state
        seen["after_reconcile"] = (_tracked(d), truth_positions(sim))
        sim.faults.release_snapshots()
        assert await wait_for(d.ready.trading, 5.0), d.ready.describe()
        seen["after_snapshot"] = (_tracked(d), truth_positions(sim))

    async with SimHarness(seed=11) as sim:
        summary, d = await run_against(
            sim,
            duration_s=14,
            during=during,
            markets=[{"coin": "xyz:AAA"}],
            # one position, held: nothing else moves the account while the test looks
            exits={"time_stop_s": 120.0, "mark_regression_enabled": False},
            shutdown={"flatten_on_exit": True},
        )
        fills = sim.exchange.user_fills(sim.account[0])
    ours, theirs = seen["after_reconcile"]
    assert ours == theirs, f"after the reconnect's reconciliation: bot {ours}, exchange {theirs}"
    ours, theirs = seen["after_snapshot"]
    assert ours == theirs, f"after the late snapshot: bot {ours}, exchange {theirs}"
    assert summary["positions"] == {} and summary["reconciled"] is True, summary
    assert summary["position_divergences"] == [], summary
    # realized PnL and fees: every fill of the account once (the account is new this run)
    assert Decimal(summary["fees"]) == sum(Decimal(f["fee"]) for f in fills)
    assert Decimal(summary["realized_pnl"]) == sum(Decimal(f["closedPnl"]) for f in fills)
    assert d.positions.fills_already_in_state >= 1  # the outage fill came after the state
