"""The account check before the first order, end to end: the bot asks the simulator (over its
socket) whether the signing key is the account or an approved, unexpired agent of it, and
whether the account has margin on the traded dex; otherwise the start stops with one line
naming both addresses, exit code 4, and nothing sent."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from eth_account import Account

from hip3.app.bot import run_bot
from hip3.app.exit_codes import ExitCode, code_for_summary
from hip3.sim.harness import SimHarness, wall_clock_ms
from tests.sim.doc_client import DocClient

from .support import bot_config, run_against, stop_when, truth_positions, wait_for

pytestmark = pytest.mark.e2e


def assert_refused(summary: dict, *, signer: str, user: str, words: str) -> None:
    problem = summary["account_refused"]
    assert problem and words in problem, summary
    assert signer.lower() in problem and user.lower() in problem, problem
    assert "\n" not in problem
    assert summary["actions_sent"] == 0
    assert summary["orders_submitted"] == 0
    assert code_for_summary(summary) is ExitCode.ACCOUNT_REFUSED


async def approve(sim: SimHarness, agent: str, name: str = "") -> None:
    async with await DocClient.connect(sim.ws_url, sim.account[1]) as owner:
        assert (await owner.approve_agent(agent, name=name))["status"] == "ok"


async def test_key_that_is_not_an_agent_of_the_account_is_refused_and_sends_nothing():
    """The reviewer's run: account.user is the simulator's account, the key is another funded
    account. Before the check, its orders filled on the key's own account while the summary
    showed nothing; now nothing is sent and the run says why."""
    async with SimHarness(seed=11) as sim:
        other_address, other_key = sim.new_account(Decimal(100000))
        summary, _d = await run_against(
            sim, duration_s=8, key=other_key, account={"user": sim.account[0]}
        )
        assert sim.exchange.user_fills(other_address) == []
        assert sim.exchange.open_orders(other_address) == []
        assert sim.exchange.user_fills(sim.account[0]) == []
    assert_refused(summary, signer=other_address, user=sim.account[0], words="own")


async def test_key_of_an_account_that_does_not_exist_is_refused():
    stranger = Account.create()
    async with SimHarness(seed=11) as sim:
        summary, _d = await run_against(sim, duration_s=8, key=stranger.key.hex())
    address = stranger.address.lower()
    assert_refused(summary, signer=address, user=address, words="does not exist")


async def test_account_without_margin_on_the_traded_dex_is_refused():
    """The account exists (funded on the first perp dex only), but a HIP-3 dex keeps its own
    balance: with nothing on xyz the run is refused before the first order."""
    poor = Account.create()
    address = poor.address.lower()
    async with SimHarness(seed=11) as sim:
        sim.exchange.fund(address, Decimal(1000), "")
        summary, _d = await run_against(sim, duration_s=8, key=poor.key.hex())
    assert_refused(summary, signer=address, user=address, words="no margin on dex xyz")


async def test_expired_agent_is_refused():
    agent = Account.create()
    async with SimHarness(seed=11) as sim:
        until = wall_clock_ms() + 800
        await approve(sim, agent.address.lower(), name=f"hip3bot valid_until {until}")
        while wall_clock_ms() <= until:
            await asyncio.sleep(0.1)
        summary, _d = await run_against(
            sim, duration_s=8, key=agent.key.hex(), account={"user": sim.account[0]}
        )
        assert sim.exchange.user_fills(sim.account[0]) == []
    assert_refused(
        summary, signer=agent.address, user=sim.account[0], words="not an approved agent"
    )


async def test_agent_expiring_within_the_margin_is_refused():
    """An approval that ends in 30 s would expire in the middle of the run: refused, saying
    when it expires."""
    agent = Account.create()
    async with SimHarness(seed=11) as sim:
        until = wall_clock_ms() + 30_000
        await approve(sim, agent.address.lower(), name=f"hip3bot valid_until {until}")
        summary, _d = await run_against(
            sim, duration_s=8, key=agent.key.hex(), account={"user": sim.account[0]}
        )
    assert_refused(summary, signer=agent.address, user=sim.account[0], words=f"expires at {until}")


async def test_valid_agent_trades_the_account():
    """A named agent valid for an hour: the check passes, the bot trades the account (fills
    land there, not on the agent), and the run ends reconciled with exit code 0."""
    agent = Account.create()
    async with SimHarness(seed=11) as sim:
        until = wall_clock_ms() + 3_600_000
        await approve(sim, agent.address.lower(), name=f"hip3bot valid_until {until}")
        summary, d = await run_against(
            sim,
            duration_s=20,
            until=lambda d: d.executor.submitted >= 1 and d.positions.fills_applied >= 1,
            key=agent.key.hex(),
            account={"user": sim.account[0]},
        )
        assert sim.exchange.user_fills(sim.account[0]), "no fill on the account"
        assert sim.exchange.user_fills(agent.address.lower()) == []
        assert truth_positions(sim) == {}
    assert summary["account_refused"] is None
    assert summary["orders_submitted"] >= 1 and summary["fills"] >= 1
    assert summary["reconciled"] is True
    assert code_for_summary(summary) is ExitCode.OK
    assert d.account_check is not None and d.account_check.passed_once


async def test_unnamed_agent_trades_the_account():
    agent = Account.create()
    async with SimHarness(seed=11) as sim:
        await approve(sim, agent.address.lower())
        summary, _d = await run_against(
            sim,
            duration_s=20,
            until=lambda d: d.executor.submitted >= 1,
            key=agent.key.hex(),
            account={"user": sim.account[0]},
        )
    assert summary["account_refused"] is None and summary["orders_submitted"] >= 1
    assert code_for_summary(summary) is ExitCode.OK


async def test_observation_needs_no_key_and_skips_the_check(monkeypatch):
    monkeypatch.delenv("HIP3_PRIVATE_KEY", raising=False)
    async with SimHarness(seed=11) as sim:
        cfg = bot_config(sim.ws_url, mode="observation")
        summary = await run_bot(
            cfg,
            duration_s=15,
            install_signals=False,
            on_dispatcher=stop_when(lambda d: bool(d.ready_latency_ms)),  # READY, then stop
        )
    assert summary["account_refused"] is None and summary["actions_sent"] == 0
    assert summary["signals"] >= 0 and summary["fatal"] is None
    assert code_for_summary(summary) is ExitCode.OK


async def test_agent_replaced_mid_run_is_refused_at_the_next_reconnect():
    """The check runs on every epoch: the account approves another unnamed agent (which
    replaces the bot's), the connection drops, and the new epoch's check refuses the key
    before READY-TRADING, stopping the run."""
    agent, successor = Account.create(), Account.create()

    async def during(d, sim):
        assert await wait_for(d.ready.trading, 10.0)
        await approve(sim, successor.address.lower())
        epoch = d.conn.epoch
        sim.faults.drop_all()
        assert await wait_for(lambda: d.fatal is not None, 10.0), d.conn.state
        assert d.conn.epoch > epoch
        assert d.ready_latency_ms.get(d.conn.epoch) is None  # that epoch never went live

    async with SimHarness(seed=11) as sim:
        await approve(sim, agent.address.lower())
        summary, _d = await run_against(
            sim,
            duration_s=20,
            during=during,
            key=agent.key.hex(),
            account={"user": sim.account[0]},
            markets=[{"coin": "xyz:AAA"}],
            detector={"min_edge_bps": 5000.0},
        )
    assert "not an approved agent" in summary["account_refused"]
    assert summary["fatal"].startswith("account check failed")
