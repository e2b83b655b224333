"""`userRole` and `extraAgents` over the socket, answered from the simulator's own accounts and
agent approvals: the facts a bot checks before its first order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from eth_account import Account

from hip3.sim.harness import SimHarness, wall_clock_ms
from tests.sim.doc_client import DocClient, InfoFailed


@pytest.fixture
async def client(sim: SimHarness) -> AsyncIterator[DocClient]:
    async with await DocClient.connect(sim.ws_url, sim.account[1]) as c:
        yield c


async def test_user_role_of_an_account_a_stranger_and_an_agent(client: DocClient) -> None:
    assert await client.info({"type": "userRole", "user": client.address}) == {"role": "user"}
    stranger = Account.create().address
    assert await client.info({"type": "userRole", "user": stranger}) == {"role": "missing"}
    agent = Account.create().address
    assert (await client.approve_agent(agent.lower()))["status"] == "ok"
    # any case in the request; lowercase in the answer
    assert await client.info({"type": "userRole", "user": agent}) == {
        "role": "agent",
        "data": {"user": client.address.lower()},
    }


async def test_extra_agents_lists_named_and_unnamed_agents_with_their_expiry(
    client: DocClient,
) -> None:
    assert await client.info({"type": "extraAgents", "user": client.address}) == []
    unnamed, named = Account.create().address.lower(), Account.create().address.lower()
    until = wall_clock_ms() + 3_600_000
    assert (await client.approve_agent(unnamed))["status"] == "ok"
    assert (await client.approve_agent(named, name=f"hip3bot valid_until {until}"))[
        "status"
    ] == "ok"
    listed = await client.info({"type": "extraAgents", "user": client.address})
    assert sorted(listed, key=lambda a: a["name"]) == [
        {"name": "", "address": unnamed, "validUntil": None},
        {"name": "hip3bot", "address": named, "validUntil": until},
    ]
    # the agents belong to the account, not to a stranger
    stranger = Account.create().address
    assert await client.info({"type": "extraAgents", "user": stranger}) == []


async def test_an_expired_agent_is_gone_from_both_answers(client: DocClient) -> None:
    agent = Account.create().address.lower()
    until = wall_clock_ms() + 800
    assert (await client.approve_agent(agent, name=f"short valid_until {until}"))["status"] == "ok"
    assert (await client.info({"type": "userRole", "user": agent}))["role"] == "agent"
    while wall_clock_ms() <= until:
        await asyncio.sleep(0.1)
    assert await client.info({"type": "userRole", "user": agent}) == {"role": "missing"}
    assert await client.info({"type": "extraAgents", "user": client.address}) == []


async def test_user_role_needs_an_address(client: DocClient) -> None:
    with pytest.raises(InfoFailed) as failed:
        await client.info({"type": "userRole", "user": "nobody"})
    assert "address" in str(failed.value)
