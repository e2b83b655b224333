"""Info requests over the socket: markets, per-dex user state, order status, fills, fees."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from hip3.sim.harness import SimHarness
from tests.sim.doc_client import AAA, ETH, DocClient, InfoFailed, limit_order, seed_book, statuses

CLOID = "0x000000000000000000000000000000ff"


@pytest.fixture
async def client(sim: SimHarness) -> AsyncIterator[DocClient]:
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "100"), ("24.8", "30")], [("25.1", "100")])
    seed_book(sim.exchange, "ETH", [("2999", "10")], [("3001", "10")])
    async with await DocClient.connect(sim.ws_url, sim.account[1]) as c:
        yield c


async def test_perp_dexs_has_null_first(client: DocClient) -> None:
    dexs = await client.info({"type": "perpDexs"})
    assert dexs[0] is None
    assert dexs[1]["name"] == "xyz" and dexs[1]["deployerFeeScale"] == "1.0"
    assert len(dexs) == 2


async def test_meta_per_dex_and_asset_ids(client: DocClient) -> None:
    validator = await client.info({"type": "meta"})
    assert [a["name"] for a in validator["universe"]] == ["BTC", "ETH"]
    assert [a["szDecimals"] for a in validator["universe"]] == [5, 4]
    xyz = await client.info({"type": "meta", "dex": "xyz"})
    names = [a["name"] for a in xyz["universe"]]
    assert names[:4] == ["xyz:AAA", "xyz:BBB", "xyz:CCC", "xyz:DDD"]
    assert len({a["szDecimals"] for a in xyz["universe"]}) == 4
    assert all(a["marginMode"] == "strictIsolated" for a in xyz["universe"])
    assert any(a.get("growthMode") == "enabled" for a in xyz["universe"])
    # Asset id = 100000 + dex index * 10000 + meta index: xyz:AAA trades as 110000.
    assert "resting" in statuses(await client.order(limit_order(110000, True, "24", "1")))[0]
    assert (await client.info({"type": "openOrders", "user": client.address, "dex": "xyz"}))[0][
        "coin"
    ] == names[0]


async def test_meta_and_asset_ctxs_follow_oracle_and_book(
    sim: SimHarness, client: DocClient
) -> None:
    sim.exchange.set_oracle("xyz:AAA", Decimal("25.3"))
    meta, ctxs = await client.info({"type": "metaAndAssetCtxs", "dex": "xyz"})
    assert len(ctxs) == len(meta["universe"])
    ctx = ctxs[0]
    assert ctx["oraclePx"] == "25.3"
    assert ctx["midPx"] == "25"
    assert ctx["markPx"] == "25.1"  # oracle clamped into the spread
    assert ctx["impactPxs"] == ["24.9", "25.1"]
    for key in ("funding", "openInterest", "prevDayPx", "dayNtlVlm", "premium", "dayBaseVlm"):
        assert isinstance(ctx[key], str)


async def test_all_mids_per_dex(client: DocClient) -> None:
    default = await client.info({"type": "allMids"})
    assert set(default) == {"BTC", "ETH"} and default["ETH"] == "3000"
    xyz = await client.info({"type": "allMids", "dex": "xyz"})
    assert set(xyz) == {"xyz:AAA", "xyz:BBB", "xyz:CCC", "xyz:DDD"} and xyz["xyz:AAA"] == "25"


async def test_perp_dex_limits(client: DocClient) -> None:
    limits = await client.info({"type": "perpDexLimits", "dex": "xyz"})
    assert set(limits) == {"totalOiCap", "oiSzCapPerPerp", "maxTransferNtl", "coinToOiCap"}
    assert [c for c, _ in limits["coinToOiCap"]] == ["xyz:AAA", "xyz:BBB", "xyz:CCC", "xyz:DDD"]


async def test_hip3_state_only_with_its_dex(client: DocClient) -> None:
    user = client.address
    statuses(await client.order(limit_order(AAA, True, "25.1", "2", "Ioc")))
    statuses(await client.order(limit_order(AAA, True, "24", "1", cloid=CLOID)))
    statuses(await client.order(limit_order(ETH, True, "2900", "0.01")))

    default_state = await client.info({"type": "clearinghouseState", "user": user})
    assert default_state["assetPositions"] == []
    xyz_state = await client.info({"type": "clearinghouseState", "user": user, "dex": "xyz"})
    [position] = xyz_state["assetPositions"]
    assert position["position"]["coin"] == "xyz:AAA" and position["position"]["szi"] == "2"
    assert position["position"]["entryPx"] == "25.1"

    for kind in ("openOrders", "frontendOpenOrders"):
        default_orders = await client.info({"type": kind, "user": user})
        assert [o["coin"] for o in default_orders] == ["ETH"]
        xyz_orders = await client.info({"type": kind, "user": user, "dex": "xyz"})
        assert [o["coin"] for o in xyz_orders] == ["xyz:AAA"]
        assert xyz_orders[0]["cloid"] == CLOID
    frontend = (await client.info({"type": "frontendOpenOrders", "user": user, "dex": "xyz"}))[0]
    assert frontend["orderType"] == "Limit" and frontend["tif"] == "Gtc"
    assert frontend["isTrigger"] is False and frontend["reduceOnly"] is False


async def test_order_status_by_oid_and_cloid(client: DocClient) -> None:
    user = client.address
    [resting] = statuses(await client.order(limit_order(AAA, True, "24", "1", cloid=CLOID)))
    oid = resting["resting"]["oid"]
    by_oid = await client.info({"type": "orderStatus", "user": user, "oid": oid})
    assert by_oid["status"] == "order" and by_oid["order"]["status"] == "open"
    assert by_oid["order"]["order"]["oid"] == oid
    statuses(await client.action({"type": "cancel", "cancels": [{"a": AAA, "o": oid}]}))
    by_cloid = await client.info({"type": "orderStatus", "user": user, "oid": CLOID})
    assert (
        by_cloid["order"]["status"] == "canceled" and by_cloid["order"]["order"]["cloid"] == CLOID
    )
    [filled] = statuses(await client.order(limit_order(AAA, False, "24.9", "1", "Ioc")))
    done = await client.info({"type": "orderStatus", "user": user, "oid": filled["filled"]["oid"]})
    assert done["order"]["status"] == "filled"
    assert await client.info({"type": "orderStatus", "user": user, "oid": 12345}) == {
        "status": "unknownOid"
    }
    other = "0x" + "12" * 20
    assert await client.info({"type": "orderStatus", "user": other, "oid": oid}) == {
        "status": "unknownOid"
    }


async def test_user_fills_cover_every_dex_newest_first(client: DocClient) -> None:
    statuses(await client.order(limit_order(AAA, True, "25.1", "1", "Ioc")))
    statuses(await client.order(limit_order(ETH, True, "3001", "0.01", "Ioc")))
    fills = await client.info({"type": "userFills", "user": client.address})
    assert [f["coin"] for f in fills] == ["ETH", "xyz:AAA"]
    assert fills[0]["tid"] != fills[1]["tid"]


async def test_user_fees_shape(client: DocClient) -> None:
    fees = await client.info({"type": "userFees", "user": client.address})
    assert fees["userCrossRate"] == "0.00045" and fees["userAddRate"] == "0.00015"
    assert {"dailyUserVlm", "feeSchedule", "activeReferralDiscount"} <= set(fees)


async def test_l2_book_aggregates_levels(sim: SimHarness, client: DocClient) -> None:
    statuses(await client.order(limit_order(AAA, True, "24.9", "1")))
    book = await client.info({"type": "l2Book", "coin": "xyz:AAA"})
    assert book["coin"] == "xyz:AAA"
    bids, asks = book["levels"]
    assert bids[0] == {"px": "24.9", "sz": "101", "n": 2}
    assert bids[1] == {"px": "24.8", "sz": "30", "n": 1}
    assert asks == [{"px": "25.1", "sz": "100", "n": 1}]


async def test_l2book_of_an_unknown_coin_is_null_as_live(client: DocClient) -> None:
    assert await client.info({"type": "l2Book", "coin": "DOGE"}) is None


@pytest.mark.parametrize(
    ("payload", "mentions"),
    [
        ({"type": "wobble"}, "wobble"),
        ({"type": "meta", "dex": "nope"}, "nope"),
        ({"type": "clearinghouseState", "user": "alice"}, "user"),
        ({"type": "orderStatus", "user": "0x" + "12" * 20, "oid": 1.5}, "oid"),
        ({"type": "l2Book", "coin": 5}, "coin"),
    ],
)
async def test_bad_info_requests_name_the_problem(
    client: DocClient, payload: dict, mentions: str
) -> None:
    with pytest.raises(InfoFailed) as failure:
        await client.info(payload)
    assert mentions in str(failure.value)
    # The connection stays usable.
    assert (await client.info({"type": "perpDexs"}))[0] is None
