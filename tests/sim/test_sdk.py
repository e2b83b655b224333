"""The official Python SDK (hyperliquid-python-sdk), unmodified, against the simulator's HTTP.

The SDK signs for mainnet only when its base_url is the mainnet URL; pointed at
http://127.0.0.1:PORT it signs L1 actions with source "b" and user-signed ones for
"Testnet", which is what the simulator (testnet-like by default) recovers. The SDK is
synchronous (requests), so each session runs in a worker thread while the simulator serves
on the test's event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import eth_account
import pytest
from hyperliquid.exchange import Exchange as SdkExchange
from hyperliquid.info import Info
from hyperliquid.utils.types import Cloid

from hip3.sim.harness import SimHarness

MAKER = "0x" + "5a" * 20
AAA = "xyz:AAA"  # asset 110000, szDecimals 2, isolated only, max leverage 10


async def in_thread(session: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(session)


def pause() -> None:
    # The SDK uses the wall clock in ms as the nonce; two actions in one ms would share one.
    time.sleep(0.003)


def statuses(answer: dict[str, Any]) -> list[Any]:
    assert answer["status"] == "ok", answer
    return answer["response"]["data"]["statuses"]


@pytest.fixture
async def quoted(make_sim) -> SimHarness:
    sim = await make_sim(seed=11)
    sim.exchange.replace_maker_quotes(
        AAA, MAKER, [(Decimal("24.9"), Decimal("100"))], [(Decimal("25.1"), Decimal("100"))]
    )
    sim.exchange.replace_maker_quotes(
        "BTC", MAKER, [(Decimal("59990"), Decimal("1"))], [(Decimal("60010"), Decimal("1"))]
    )
    return sim


async def test_info_construction_and_user_state(quoted: SimHarness) -> None:
    base = quoted.http_url
    user, _ = quoted.account

    def session() -> None:
        plain = Info(base, skip_ws=True)
        assert plain.name_to_asset("BTC") == 0 and plain.name_to_asset("ETH") == 1
        both = Info(base, skip_ws=True, perp_dexs=["", "xyz"])
        assert both.name_to_asset(AAA) == 110000
        assert both.name_to_asset("xyz:DDD") == 110003
        validator = both.user_state(user)
        builder = both.user_state(user, dex="xyz")
        assert Decimal(validator["marginSummary"]["accountValue"]) == Decimal("100000")
        assert Decimal(builder["withdrawable"]) == Decimal("100000")
        assert both.open_orders(user) == [] and both.open_orders(user, dex="xyz") == []
        mids = both.all_mids(dex="xyz")
        assert mids[AAA] == "25"
        assert both.spot_user_state(user) == {"balances": []}

    await in_thread(session)


async def test_orders_cancels_and_modifies(quoted: SimHarness) -> None:
    base = quoted.http_url
    user, key = quoted.account
    wallet = eth_account.Account.from_key(key)
    cloid = Cloid.from_str("0x" + "c1" * 16)

    def session() -> dict[str, Any]:
        ex = SdkExchange(wallet, base, perp_dexs=["", "xyz"])
        out: dict[str, Any] = {}
        gtc = statuses(ex.order(AAA, True, 2.0, 24.0, {"limit": {"tif": "Gtc"}}))[0]
        out["gtc"] = gtc["resting"]["oid"]
        pause()
        alo = ex.order(AAA, True, 2.0, 23.5, {"limit": {"tif": "Alo"}}, cloid=cloid)
        out["alo"] = statuses(alo)[0]["resting"]["oid"]
        pause()
        crossing_alo = ex.order(AAA, True, 2.0, 25.2, {"limit": {"tif": "Alo"}})
        out["crossing_alo"] = statuses(crossing_alo)[0]
        pause()
        ioc = statuses(ex.order(AAA, True, 1.0, 25.2, {"limit": {"tif": "Ioc"}}))[0]
        out["ioc"] = ioc["filled"]
        pause()
        open_now = Info(base, skip_ws=True).open_orders(user, dex="xyz")
        out["open"] = sorted(o["oid"] for o in open_now)
        modified = ex.modify_order(out["gtc"], AAA, True, 3.0, 24.1, {"limit": {"tif": "Gtc"}})
        out["modified"] = statuses(modified)[0]
        pause()
        new_oid = out["modified"]["resting"]["oid"]
        bulk = ex.bulk_modify_orders_new(
            [
                {
                    "oid": new_oid,
                    "order": {
                        "coin": AAA,
                        "is_buy": True,
                        "sz": 4.0,
                        "limit_px": 24.2,
                        "order_type": {"limit": {"tif": "Gtc"}},
                        "reduce_only": False,
                        "cloid": None,
                    },
                },
                {
                    "oid": 1,  # never placed
                    "order": {
                        "coin": AAA,
                        "is_buy": True,
                        "sz": 1.0,
                        "limit_px": 24.0,
                        "order_type": {"limit": {"tif": "Gtc"}},
                        "reduce_only": False,
                        "cloid": None,
                    },
                },
            ]
        )
        out["bulk"] = statuses(bulk)
        pause()
        out["cancel"] = statuses(ex.cancel(AAA, out["bulk"][0]["resting"]["oid"]))
        pause()
        out["cancel_by_cloid"] = statuses(ex.cancel_by_cloid(AAA, cloid))
        pause()
        out["cancel_again"] = statuses(ex.cancel(AAA, out["gtc"]))
        return out

    out = await in_thread(session)
    assert out["crossing_alo"] == {
        "error": "Post only order would have immediately matched, bbo was 24.9@25.1. asset=110000"
    }
    assert out["ioc"]["totalSz"] == "1" and out["ioc"]["avgPx"] == "25.1"
    assert out["open"] == sorted([out["gtc"], out["alo"]])
    assert out["bulk"][1] == {"error": "Cannot modify canceled or filled order"}
    assert out["cancel"] == ["success"] and out["cancel_by_cloid"] == ["success"]
    assert out["cancel_again"] == [
        {"error": "Order was never placed, already canceled, or filled. asset=110000"}
    ]
    assert quoted.exchange.open_orders(user) == []
    assert quoted.exchange.positions(user) == {AAA: Decimal("1")}


async def test_leverage_schedule_cancel_and_trading_as_an_approved_agent(
    quoted: SimHarness,
) -> None:
    base = quoted.http_url
    user, key = quoted.account
    wallet = eth_account.Account.from_key(key)

    def session() -> dict[str, Any]:
        ex = SdkExchange(wallet, base, perp_dexs=["", "xyz"])
        out: dict[str, Any] = {}
        out["leverage"] = ex.update_leverage(5, AAA, is_cross=False)
        pause()
        out["cross_on_isolated"] = ex.update_leverage(5, AAA, is_cross=True)
        pause()
        out["btc_leverage"] = ex.update_leverage(10, "BTC")
        pause()
        out["schedule_refused"] = ex.schedule_cancel(int(time.time() * 1000) + 60_000)
        pause()
        approved, agent_key = ex.approve_agent("sdkbot")
        out["approve"] = approved
        pause()
        agent = SdkExchange(
            eth_account.Account.from_key(agent_key),
            base,
            account_address=user,
            perp_dexs=["", "xyz"],
        )
        out["agent_order"] = statuses(
            agent.order("BTC", False, 0.001, 59990.0, {"limit": {"tif": "Ioc"}})
        )
        out["agent"] = eth_account.Account.from_key(agent_key).address.lower()
        return out

    out = await in_thread(session)
    ok = {"status": "ok", "response": {"type": "default"}}
    assert out["leverage"] == ok and out["btc_leverage"] == ok
    assert out["cross_on_isolated"]["status"] == "err"
    # The account had traded nothing when it asked: the live volume gate refuses the switch.
    assert out["schedule_refused"] == {
        "status": "err",
        "response": "Cannot set scheduled cancel time until enough volume traded. "
        "Required: $1000000. Traded: $0.",
    }
    quoted.exchange.credit_traded_volume(user, Decimal(1_000_000))

    def with_volume() -> tuple[Any, Any]:
        ex = SdkExchange(wallet, base)
        deadline = int(time.time() * 1000) + 60_000
        scheduled = ex.schedule_cancel(deadline)
        pause()
        return scheduled, ex.schedule_cancel(None)

    scheduled, cleared = await in_thread(with_volume)
    assert scheduled == ok and cleared == ok
    assert out["approve"] == ok
    assert quoted.exchange.agents[out["agent"]][:2] == (user, "sdkbot")
    assert out["agent_order"][0]["filled"]["totalSz"] == "0.001"
    assert quoted.exchange.positions(user) == {"BTC": Decimal("-0.001")}
