"""The trading loop closes, and stays closed through faults (seed bot review item 1:
docs/design.md#the-seed-bot)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from hip3.app.bot import BotError, run_bot
from hip3.config import load_config
from hip3.events import OperatorCommand
from hip3.sim.harness import SimHarness

from .support import run_against, truth_positions, wait_for

pytestmark = pytest.mark.e2e


def sizes(d: dict) -> dict[str, Decimal]:
    return {c: Decimal(s) for c, s in d.items() if Decimal(s) != 0}


async def test_loop_closes_positions_equal_truth():
    """(a) / blocker 1: signals become orders, post responses and streams drive orders and
    positions, and what the bot holds at the end is what the exchange says it holds."""
    async with SimHarness(seed=11) as sim:
        summary, d = await run_against(
            sim,
            duration_s=20,
            until=lambda d: d.executor.submitted >= 3 and d.positions.fills_applied >= 3,
            shutdown={"flatten_on_exit": False, "cancel_on_exit": True},
        )
        assert summary["orders_submitted"] >= 3, summary
        assert summary["fills"] >= 3, summary
        assert sum(summary["orders"].values()) == summary["orders_submitted"]
        assert sizes(summary["positions"]) == truth_positions(sim)
        assert summary["reconciled"] is True
        # every fill the exchange made for us was applied exactly once
        exchange_tids = {f["tid"] for f in sim.exchange.user_fills(sim.account[0])}
        assert d.positions.fills_applied == len(exchange_tids)
        assert d.positions.duplicates == 0 or d.positions.fills_applied == len(exchange_tids)


async def test_make_run_default_flattens_and_reconciles():
    """The default run (what `make run` does, shortened): trades, flattens on exit, reconciled."""
    async with SimHarness(seed=5) as sim:
        summary, _d = await run_against(
            sim, duration_s=20, until=lambda d: d.executor.submitted >= 1
        )
        assert summary["orders_submitted"] >= 1
        assert summary["hardstop"]["state"] == "halted"
        assert summary["positions"] == {}
        assert truth_positions(sim) == {}
        assert sim.exchange.open_orders(sim.account[0]) == []
        assert summary["reconciled"] is True


async def test_reconnect_storm_no_fill_lost_or_doubled():
    """(b) / item D: connections dropped every ~1.5 s while trading. READY is regained every
    epoch, snapshot overlap never double counts, positions equal truth at the end."""
    async with SimHarness(seed=3, faults="drop_every_s=1.5,seed=4") as sim:
        summary, d = await run_against(
            sim,
            duration_s=20,
            until=lambda d: d.reconnects >= 2 and d.executor.submitted >= 2,
            shutdown={"flatten_on_exit": False},
        )
        assert summary["reconnects"] >= 2, summary
        assert summary["orders_submitted"] >= 2, summary
        exchange_tids = {f["tid"] for f in sim.exchange.user_fills(sim.account[0])}
        assert d.positions.fills_applied == len(exchange_tids)
        assert sizes(summary["positions"]) == truth_positions(sim)
        assert summary["reconciled"] is True
        # every epoch that stayed up through its handshake became READY
        assert len(summary["ready_latency_ms"]) >= summary["epochs"] - 1


async def test_withheld_snapshot_blocks_entries_until_delivered():
    """(c): no entry order before the userFills snapshot; READY right after it."""

    async def during(d, sim):
        # opportunities come and READY refuses them
        assert await wait_for(lambda: d.executor.blocked["not_ready"] > 0, 10.0)
        assert d.executor.submitted == 0
        assert not d.ready.trading()
        assert "userFills (acked)" in d.readiness.missing()
        assert d.signals_seen > 0  # there were opportunities; READY refused them
        sim.faults.release_snapshots()
        assert await wait_for(d.ready.trading, 3.0)
        assert await wait_for(lambda: d.executor.submitted >= 1, 10.0)

    async with SimHarness(seed=11, faults="withhold_snapshot=1") as sim:
        summary, d = await run_against(sim, duration_s=15, during=during)
        assert summary["orders_submitted"] >= 1
        assert d.executor.blocked["not_ready"] > 0
        assert summary["reconciled"] is True


async def test_delayed_ack_during_resubscription_still_reaches_ready():
    """Blocker 3 (the drain deadlock): acks held back during (re)subscription, then delivered,
    reach the one dispatcher and READY follows."""

    async def during(d, sim):
        await wait_for(lambda: d.ready.trading(), 3.0)
        sim.faults.withhold_ack = True
        sim.faults.drop_all()
        assert await wait_for(lambda: d.conn.epoch >= 2 and d.conn.state == "subscribing", 3.0)
        await asyncio.sleep(0.5)
        assert not d.ready.trading()
        sim.faults.release_acks()
        assert await wait_for(d.ready.trading, 3.0), d.ready.describe()

    async with SimHarness(seed=2) as sim:
        summary, _d = await run_against(
            sim, duration_s=6, during=during, websocket={"handshake_timeout_s": 10.0}
        )
        assert "2" in summary["ready_latency_ms"]
        assert summary["reconciled"] is True


async def test_hardstop_cancels_resting_and_flattens():
    """(d) / item A: with resting orders (placed outside the bot, adopted at reconciliation)
    and open positions, HardStop leaves the exchange with no open order and zero positions,
    then stays halted."""

    async def during(d, sim):
        user = sim.account[0]
        assert await wait_for(lambda: len(truth_positions(sim)) >= 1, 6.0), "no position opened"
        # resting orders the bot did not place: the exchange knows them, so must HardStop
        await place_resting_orders(sim)
        sim.faults.drop_all()  # the next epoch's reconciliation adopts them
        assert await wait_for(lambda: d.orders.open_orders() and d.ready.trading(), 5.0)
        d.put(OperatorCommand("hardstop", "test"))
        assert await wait_for(lambda: d.hardstop.state == "halted", 10.0), d.hardstop.state
        assert sim.exchange.open_orders(user) == []
        assert truth_positions(sim) == {}
        await asyncio.sleep(0.5)
        assert d.hardstop.state == "halted"  # latched: nothing re-arms it

    async with SimHarness(seed=11) as sim:
        summary, _d = await run_against(
            sim, duration_s=12, during=during, shutdown={"flatten_on_exit": False}
        )
        assert summary["hardstop"]["state"] == "halted"
        assert summary["positions"] == {}
        assert summary["reconciled"] is True


async def place_resting_orders(sim: SimHarness) -> None:
    """Two far-from-market GTC orders on xyz:AAA, signed by the account itself."""
    from hip3.protocol.actions import limit_order_wire, order_action
    from hip3.protocol.numbers import Rounding, format_price
    from hip3.protocol.signing import FastSigner, NonceSource

    signer = FastSigner(bytes.fromhex(sim.account[1].removeprefix("0x")))
    nonces = NonceSource()
    coin = "xyz:AAA"
    bid = Decimal(sim.exchange.bbo(coin)["bbo"][0]["px"])
    px = format_price(bid * Decimal("0.8"), sz_decimals=2, is_buy=True, rounding=Rounding.PASSIVE)
    wires = [
        limit_order_wire(asset=110000, is_buy=True, px=px, sz="1", reduce_only=False, tif="Gtc")
    ]
    action = order_action(wires * 2)
    nonce = nonces.next()
    resp = sim.exchange.action(
        {
            "action": action,
            "nonce": nonce,
            "signature": signer.sign_l1(action, nonce, mainnet=False),
        }
    )
    assert resp["status"] == "ok", resp
    assert all("resting" in s for s in resp["response"]["data"]["statuses"]), resp


async def test_post_timeouts_go_unknown_then_reconcile_without_duplicates():
    """(e): order posts whose answers come after the timeout are not resent blindly (one
    exchange order per bot order); whatever was left unknown is settled, and the positions
    equal the exchange's.

    The delay starts once the bot is READY and ends after a few order posts timed out: the
    simulator delays every post, the info requests of a reconciliation too, so a delay from
    the start keeps the run from ever becoming READY (and no order is sent at all)."""

    async def during(d, sim):
        assert await wait_for(d.ready.trading, 10.0), d.ready.describe()
        submitted, timeouts = d.executor.submitted, d.wire.posts.timeouts
        sim.faults.delay_post_ms = 1500
        assert await wait_for(
            lambda: d.executor.submitted >= submitted + 2 and d.wire.posts.timeouts > timeouts,
            15.0,
        ), (d.executor.submitted, d.wire.posts.timeouts)
        sim.faults.delay_post_ms = 0
        assert await wait_for(lambda: not d.orders.unknown_orders() and d.ready.trading(), 15.0)

    async with SimHarness(seed=11) as sim:
        summary, d = await run_against(
            sim,
            duration_s=40,
            during=during,
            outbound={"post_timeout_s": 0.5},
            websocket={"handshake_timeout_s": 10.0},
            shutdown={"flatten_on_exit": False},
        )
        assert d.wire.posts.timeouts >= 1
        # bot orders == exchange orders: every fill maps to an order the bot sent
        cloids_sent = set(d.orders.info) | set(d.orders.terminal_states())
        fills = sim.exchange.user_fills(sim.account[0])
        assert fills, "no order filled: nothing was checked"
        assert all(f.get("cloid") in cloids_sent for f in fills)
        assert "unknown" not in summary["orders"], summary["orders"]
        assert sizes(summary["positions"]) == truth_positions(sim)


async def test_trading_without_account_fails_fast_naming_the_setting(monkeypatch):
    """Blocker 2: trading mode with no user address and no key refuses to start and says why."""
    monkeypatch.delenv("HIP3_PRIVATE_KEY", raising=False)
    cfg = load_config(
        overrides={
            "network": "testnet",
            "ws_url": "ws://127.0.0.1:9/ws",
            "journal": {"enabled": False},
        }
    )
    with pytest.raises(BotError) as exc:
        await run_bot(cfg, install_signals=False)
    assert "HIP3_PRIVATE_KEY" in str(exc.value)


async def test_trading_subscriptions_sent_every_epoch():
    """Blocker 2: orderUpdates, userFills and userEvents are subscribed on every connection."""

    async def during(d, sim):
        for _ in range(2):
            assert await wait_for(d.ready.trading, 5.0)
            assert {"orderUpdates", "userFills", "userEvents"} <= set(d.readiness.keys)
            assert all(
                d.readiness.keys[k] == "ready" for k in ("orderUpdates", "userFills", "userEvents")
            )
            sim.faults.drop_all()
            await asyncio.sleep(0.3)
        assert await wait_for(d.ready.trading, 5.0)

    async with SimHarness(seed=1) as sim:
        summary, _d = await run_against(sim, duration_s=5, during=during)
        assert summary["epochs"] >= 3


async def test_missing_pongs_mean_reconnect():
    """Heartbeat: a quiet connection is pinged; no pong in time means a new epoch."""

    async def during(d, sim):
        assert await wait_for(d.ready.trading, 5.0)
        sim.faults.no_pong = True
        assert await wait_for(lambda: d.conn.epoch >= 2, 8.0), d.conn.state
        sim.faults.no_pong = False
        assert await wait_for(d.ready.trading, 5.0)

    async with SimHarness(seed=3, feeds=False) as sim:
        summary, d = await run_against(
            sim, duration_s=9, during=during, websocket={"ping_after_s": 0.5, "pong_timeout_s": 1.0}
        )
        assert d.counters["epoch_end:heartbeat timeout"] >= 1, dict(d.counters)
        assert summary["reconnects"] >= 1


async def test_dead_mans_switch_is_renewed_at_the_exchange():
    """With the dead man's switch on, the exchange holds a scheduled cancel a lead time ahead."""

    async def during(d, sim):
        assert await wait_for(d.ready.trading, 5.0)
        user = sim.account[0]
        assert await wait_for(lambda: user in sim.exchange._scheduled, 3.0)
        first = sim.exchange._scheduled[user]
        assert await wait_for(lambda: sim.exchange._scheduled.get(user, first) > first, 3.0)
        assert d.counters["dms_refused"] == 0
        assert d.dead_mans_switch.state == "active"

    # The exchange refuses scheduleCancel until an account has traded $1M; this one may.
    async with SimHarness(seed=3, feeds=False, schedule_cancel_min_volume=Decimal(0)) as sim:
        await run_against(
            sim,
            duration_s=5,
            during=during,
            dead_mans_switch={"enabled": True, "interval_s": 1.0, "lead_s": 10.0},
        )


async def test_dead_mans_switch_below_the_volume_gate_is_reported_unavailable():
    """The simulator refuses scheduleCancel to an account that has not traded $1M, as the
    exchange does: the bot stops renewing on its fast loop and says the switch is unavailable."""

    async def during(d, sim):
        assert await wait_for(lambda: d.dead_mans_switch.state == "unavailable", 5.0)
        await asyncio.sleep(1.0)  # interval_s 0.2: the fast loop would have asked ~5 times
        assert d.counters["dms_refused"] == 1
        assert d.ready.trading()  # not required: it trades on, unprotected, and says so

    async with SimHarness(seed=3, feeds=False) as sim:
        summary, _d = await run_against(
            sim,
            duration_s=3,
            during=during,
            dead_mans_switch={"enabled": True, "interval_s": 0.2, "lead_s": 10.0},
        )
    assert summary["dead_mans_switch"]["state"] == "unavailable"
    assert "hip3 guard" in summary["dead_mans_switch"]["detail"]


async def test_one_hardstop_blocks_every_entry_path():
    """Item B: the machine the operator trips is the one the executor asks; once it is not
    armed no entry leaves, however many signals the running bot sees."""

    async def during(d, sim):
        assert await wait_for(d.ready.trading, 5.0)
        assert d.executor.hardstop is d.hardstop
        d.put(OperatorCommand("hardstop", "test"))
        assert await wait_for(lambda: not d.hardstop.is_armed, 2.0)
        entries_before = d.executor.entries_sent
        signals = d.signals_seen
        blocked = d.executor.blocked["hardstop"]
        assert await wait_for(
            lambda: d.signals_seen > signals and d.executor.blocked["hardstop"] > blocked, 10.0
        )
        assert d.signals_seen > signals  # opportunities kept coming ...
        assert d.executor.entries_sent == entries_before  # ... and no entry left
        assert d.executor.blocked["hardstop"] > 0  # the one HardStop refused them

    async with SimHarness(seed=11) as sim:
        await run_against(sim, duration_s=5, during=during, shutdown={"flatten_on_exit": False})


async def test_one_ready_for_executor_and_write_path():
    """Item C: the executor, the flatten path and the summary all read the same READY, which
    follows each new epoch's machine."""

    async def during(d, sim):
        assert await wait_for(d.ready.trading, 5.0)
        assert d.executor.ready is d.ready
        first = d.ready.machine
        sim.faults.drop_all()
        assert await wait_for(lambda: d.ready.machine is not first and d.ready.trading(), 5.0)
        assert d.ready.machine is d.readiness and d.readiness.epoch == d.conn.epoch

    async with SimHarness(seed=4) as sim:
        await run_against(sim, duration_s=5, during=during)


async def test_hardstop_flattens_a_position_in_a_coin_the_bot_does_not_trade():
    """The account holds xyz:DDD from elsewhere; the bot trades only xyz:AAA. HardStop still
    leaves the exchange flat: it looks up a price for the coin it does not stream."""
    from hip3.protocol.actions import limit_order_wire, order_action
    from hip3.protocol.numbers import Rounding, format_price
    from hip3.protocol.signing import FastSigner, NonceSource

    async def during(d, sim):
        assert await wait_for(d.ready.trading, 5.0)
        assert "xyz:DDD" in truth_positions(sim)
        assert "xyz:DDD" not in d.markets
        d.put(OperatorCommand("hardstop", "test"))
        assert await wait_for(lambda: d.hardstop.state == "halted", 10.0), (
            d.hardstop.state,
            dict(d.counters),
        )
        assert truth_positions(sim) == {}

    async with SimHarness(seed=11) as sim:
        signer = FastSigner(bytes.fromhex(sim.account[1].removeprefix("0x")))
        ask = Decimal(sim.exchange.bbo("xyz:DDD")["bbo"][1]["px"])
        px = format_price(
            ask * Decimal("1.01"), sz_decimals=3, is_buy=True, rounding=Rounding.PASSIVE
        )
        action = order_action(
            [
                limit_order_wire(
                    asset=110003, is_buy=True, px=px, sz="0.02", reduce_only=False, tif="Ioc"
                )
            ]
        )
        nonce = NonceSource().next()
        resp = sim.exchange.action(
            {
                "action": action,
                "nonce": nonce,
                "signature": signer.sign_l1(action, nonce, mainnet=False),
            }
        )
        assert "filled" in resp["response"]["data"]["statuses"][0], resp
        summary, _d = await run_against(
            sim,
            duration_s=8,
            during=during,
            markets=[{"coin": "xyz:AAA"}],
            shutdown={"flatten_on_exit": False},
        )
        assert summary["hardstop"]["state"] == "halted"
        assert summary["reconciled"] is True
