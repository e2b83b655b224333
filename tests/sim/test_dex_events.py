"""Scenario events and account modes, over the socket: a deployer's disableDex, a market
delisted at a rediscovery, and the userAbstraction a scenario gives the test account."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import pytest
from eth_account import Account
from hyperliquid.exchange import Exchange as SdkExchange
from hyperliquid.info import Info
from hyperliquid.utils.signing import sign_usd_class_transfer_action

from hip3.sim.scenario import ScenarioError, parse_scenario
from tests.sim.doc_client import DocClient, limit_order, seed_book, statuses

TWO_DEXES = """
[[dexes]]
name = ""
[[dexes.assets]]
name = "ETH"
sz_decimals = 4
start_px = "3000"

[[dexes]]
name = "xyz"
[[dexes.assets]]
name = "AAA"
sz_decimals = 2
start_px = "25"
[[dexes.assets]]
name = "BBB"
sz_decimals = 1
start_px = "180"
[[dexes.assets]]
name = "CCC"
sz_decimals = 0
start_px = "4"

[[dexes]]
name = "abc"
collateral = "USDT"
[[dexes.assets]]
name = "QQQ"
sz_decimals = 2
start_px = "50"
"""
AAA, BBB, CCC, QQQ, ETH = 110000, 110001, 110002, 120000, 0


async def until_delisted(client: DocClient, dex: str, index: int) -> dict:
    async with asyncio.timeout(5):
        while True:
            meta = await client.info({"type": "meta", "dex": dex})
            if meta["universe"][index].get("isDelisted"):
                return meta
            await asyncio.sleep(0.05)


async def test_disable_dex_cancels_settles_and_keeps_every_asset_id(make_sim) -> None:
    scenario = parse_scenario(TWO_DEXES + '\n[[events]]\nat_s = 0.5\ndisable_dex = "xyz"\n')
    sim = await make_sim(scenario=scenario)
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "100")], [("25.1", "100")])
    seed_book(sim.exchange, "abc:QQQ", [("49.9", "100")], [("50.1", "100")])
    async with await DocClient.connect(sim.ws_url, sim.account[1]) as client:
        user = client.address
        await client.subscribe({"type": "orderUpdates", "user": user})
        [resting] = statuses(await client.order(limit_order(AAA, True, "24", "2")))
        oid = resting["resting"]["oid"]
        [filled] = statuses(await client.order(limit_order(AAA, True, "25.1", "3", "Ioc")))
        assert filled["filled"]["totalSz"] == "3"
        meta = await until_delisted(client, "xyz", 0)
        assert all(entry.get("isDelisted") for entry in meta["universe"])
        canceled = await client.wait_for(
            lambda f: (
                f.get("channel") == "orderUpdates"
                and any(u["order"]["oid"] == oid and u["status"] == "canceled" for u in f["data"])
            )
        )
        assert canceled
        assert await client.info({"type": "openOrders", "user": user, "dex": "xyz"}) == []
        state = await client.info({"type": "clearinghouseState", "user": user, "dex": "xyz"})
        assert state["assetPositions"] == []  # settled at mark
        dexs = await client.info({"type": "perpDexs"})
        assert [d and d["name"] for d in dexs] == [None, "xyz", "abc"]  # the slot stays
        [refused] = statuses(await client.order(limit_order(AAA, True, "24", "1")))
        assert refused == {"error": "Trading is halted for xyz:AAA."}
        [other_dex] = statuses(await client.order(limit_order(QQQ, True, "49", "1")))
        assert "resting" in other_dex  # abc's asset ids did not move
        assert sim.exchange.positions(user) == {}


async def test_a_delisted_market_keeps_its_slot_and_its_neighbours_trade(make_sim) -> None:
    scenario = parse_scenario(TWO_DEXES + '\n[[events]]\nat_s = 0.3\ndelist = "xyz:BBB"\n')
    sim = await make_sim(scenario=scenario)
    seed_book(sim.exchange, "xyz:CCC", [("3", "100")], [("5", "100")])
    async with await DocClient.connect(sim.ws_url, sim.account[1]) as client:
        meta = await until_delisted(client, "xyz", 1)
        assert [entry.get("isDelisted", False) for entry in meta["universe"]] == [
            False,
            True,
            False,
        ]
        assert [entry["name"] for entry in meta["universe"]] == ["xyz:AAA", "xyz:BBB", "xyz:CCC"]
        assert "resting" in statuses(await client.order(limit_order(CCC, True, "3", "5")))[0]
        [refused] = statuses(await client.order(limit_order(BBB, True, "170", "1")))
        assert refused == {"error": "Trading is halted for xyz:BBB."}


async def test_a_unified_account_reads_one_balance_per_token_on_spot(make_sim) -> None:
    scenario = parse_scenario('account_abstraction = "unifiedAccount"\n' + TWO_DEXES)
    sim = await make_sim(scenario=scenario, account_usdc=Decimal(1000))
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "100")], [("25.1", "100")])
    stranger, _ = sim.new_account(Decimal(10))
    async with await DocClient.connect(sim.ws_url, sim.account[1]) as client:
        user = client.address
        assert await client.info({"type": "userAbstraction", "user": user}) == "unifiedAccount"
        assert await client.info({"type": "userAbstraction", "user": stranger}) == "disabled"
        spot = await client.info({"type": "spotClearinghouseState", "user": user})
        totals = {row["coin"]: Decimal(row["total"]) for row in spot["balances"]}
        assert totals == {"USDC": 2000, "USDT": 1000}  # two USDC dexes, one USDT dex
        xyz = await client.info({"type": "clearinghouseState", "user": user, "dex": "xyz"})
        assert Decimal(xyz["withdrawable"]) == 0  # per-dex states are not meaningful here
        # 24 x 60 = 1440 resting at 10x holds 144 of the one USDC balance
        assert "resting" in statuses(await client.order(limit_order(AAA, True, "24", "60")))[0]
        spot = await client.info({"type": "spotClearinghouseState", "user": user})
        [usdc] = [row for row in spot["balances"] if row["coin"] == "USDC"]
        assert (Decimal(usdc["total"]), Decimal(usdc["hold"])) == (2000, 144)
        nonce = client.next_nonce()
        action = {"type": "usdClassTransfer", "amount": "5", "toPerp": False, "nonce": nonce}
        signature = sign_usd_class_transfer_action(Account.from_key(sim.account[1]), action, False)
        answer = await client.post(
            "action",
            {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None},
        )
        assert answer["payload"] == {
            "status": "err",
            "response": "Action disabled when unified account is active.",
        }


def test_bad_event_and_abstraction_keys_name_the_problem() -> None:
    with pytest.raises(ScenarioError, match="disable_dex 'nope' is not a HIP-3 dex"):
        parse_scenario(TWO_DEXES + '\n[[events]]\nat_s = 1\ndisable_dex = "nope"\n')
    with pytest.raises(ScenarioError, match="needs exactly one of disable_dex, delist"):
        parse_scenario(TWO_DEXES + "\n[[events]]\nat_s = 1\n")
    with pytest.raises(ScenarioError, match="account_abstraction must be one of disabled"):
        parse_scenario('account_abstraction = "dexAbstraction"\n')


async def test_user_set_abstraction_from_the_sdk_pools_balances_on_spot(make_sim) -> None:
    sim = await make_sim(scenario=parse_scenario(TWO_DEXES))
    user, key = sim.new_account(Decimal(700))
    base = sim.http_url

    def session() -> list[Any]:
        sdk = SdkExchange(Account.from_key(key), base, perp_dexs=["", "xyz", "abc"])
        info = Info(base, skip_ws=True, perp_dexs=["", "xyz", "abc"])
        answers: list[Any] = [info.query_user_abstraction_state(user)]
        answers.append(sdk.user_set_abstraction(user, "portfolioMargin"))
        answers.append(info.query_user_abstraction_state(user))
        answers.append(info.spot_user_state(user)["balances"])
        answers.append(info.user_state(user)["withdrawable"])
        time.sleep(0.003)
        answers.append(sdk.user_set_abstraction("0x" + "11" * 20, "disabled"))
        return answers

    before, switched, after, spot, withdrawable, other = await asyncio.to_thread(session)
    assert before == "disabled"
    assert switched == {"status": "ok", "response": {"type": "default"}}
    assert after == "portfolioMargin"
    assert [(row["coin"], Decimal(row["total"])) for row in spot] == [("USDC", Decimal(700))]
    assert Decimal(withdrawable) == 0
    assert other["status"] == "err" and "only the signer's own account" in other["response"]
