"""Info requests, state and history feeds, and updateIsolatedMargin, through the socket.

Candles and funding come from what the simulator executed: trades a test makes through the
socket, and funding hours the exchange pays (set up on the core, read through the socket).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from hip3.sim.harness import SimHarness
from tests.sim.doc_client import AAA, BTC, DocClient, InfoFailed, limit_order, seed_book, statuses

MINUTE_MS = 60_000


@pytest.fixture
async def client(sim: SimHarness) -> AsyncIterator[DocClient]:
    async with await DocClient.connect(sim.ws_url, sim.account[1]) as c:
        yield c


async def buy_ioc(client: DocClient, asset: int, px: str, sz: str) -> dict:
    [status] = statuses(await client.order(limit_order(asset, True, px, sz, "Ioc")))
    assert "filled" in status, status
    return status["filled"]


async def test_candle_snapshot_is_built_from_executed_trades(
    sim: SimHarness, client: DocClient
) -> None:
    seed_book(sim.exchange, "xyz:AAA", [], [("25.1", "1"), ("25.3", "1"), ("25.2", "5")])
    await buy_ioc(client, AAA, "25.3", "1.5")  # 25.1 x1, then 25.2 x0.5
    await buy_ioc(client, AAA, "25.3", "2")  # 25.2 x2
    fills = await client.info({"type": "userFills", "user": client.address})
    first_time = min(f["time"] for f in fills)
    minute = first_time - first_time % MINUTE_MS
    req = {"coin": "xyz:AAA", "interval": "1m", "startTime": minute}
    candles = await client.info({"type": "candleSnapshot", "req": req})
    assert len(candles) in (1, 2)  # both trades may fall in one minute or two
    merged = await client.info({"type": "candleSnapshot", "req": {**req, "interval": "1d"}})
    day = merged[0]
    assert len(merged) == 1
    assert day["s"] == "xyz:AAA" and day["i"] == "1d"
    assert day["t"] % (1440 * MINUTE_MS) == 0 and day["T"] == day["t"] + 1440 * MINUTE_MS - 1
    assert (day["o"], day["h"], day["l"], day["c"]) == ("25.1", "25.2", "25.1", "25.2")
    assert Decimal(day["v"]) == Decimal("3.5") and day["n"] == 3
    # A range that starts a minute after the trades, within the same day, gets the whole day
    # (unless the trades fell in the day's last minute, 1 run in 1440).
    last_time = max(f["time"] for f in fills)
    next_minute = last_time - last_time % MINUTE_MS + MINUTE_MS
    if next_minute <= day["T"]:
        tail = {**req, "interval": "1d", "startTime": next_minute}
        assert await client.info({"type": "candleSnapshot", "req": tail}) == merged
    later = await client.info({"type": "candleSnapshot", "req": {**req, "startTime": day["T"] + 1}})
    assert later == []


async def test_candle_snapshot_refuses_an_undocumented_interval(client: DocClient) -> None:
    req = {"coin": "xyz:AAA", "interval": "2m", "startTime": 0}
    with pytest.raises(InfoFailed, match="interval"):
        await client.info({"type": "candleSnapshot", "req": req})


async def test_candle_feed_pushes_the_current_candle_on_a_trade(
    sim: SimHarness, client: DocClient
) -> None:
    ack = await client.subscribe({"type": "candle", "coin": "xyz:AAA", "interval": "5m"})
    assert ack["data"]["subscription"] == {"type": "candle", "coin": "xyz:AAA", "interval": "5m"}
    seed_book(sim.exchange, "xyz:AAA", [], [("25.1", "2")])
    await buy_ioc(client, AAA, "25.1", "1")
    frame = await client.wait_for(lambda f: f["channel"] == "candle")
    candle = frame["data"]
    assert candle["s"] == "xyz:AAA" and candle["i"] == "5m" and candle["n"] == 1
    assert candle["o"] == candle["c"] == "25.1" and candle["v"] == "1"
    assert candle["T"] - candle["t"] == 5 * MINUTE_MS - 1


async def test_funding_history_and_user_funding_and_user_fundings_feed(
    sim: SimHarness, client: DocClient
) -> None:
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "10")], [("25.1", "10")])
    await buy_ioc(client, AAA, "25.1", "2")
    hour = 3_600_000 * 500_000
    sim.exchange.funding.pay(hour)
    history = await client.info({"type": "fundingHistory", "coin": "xyz:AAA", "startTime": 0})
    [entry] = history
    assert entry["coin"] == "xyz:AAA" and entry["time"] == hour
    assert Decimal(entry["fundingRate"]) and "premium" in entry
    paid = await client.info({"type": "userFunding", "user": client.address, "startTime": 0})
    [payment] = paid
    assert payment["time"] == hour and payment["delta"]["type"] == "funding"
    assert payment["delta"]["coin"] == "xyz:AAA" and payment["delta"]["szi"] == "2"
    expected = -(Decimal(2) * sim.exchange.oracle["xyz:AAA"] * Decimal(entry["fundingRate"]))
    assert Decimal(payment["delta"]["usdc"]) == expected.quantize(Decimal("0.000001"))
    after = await client.info(
        {"type": "userFunding", "user": client.address, "startTime": hour + 1}
    )
    assert after == []

    await client.subscribe({"type": "userFundings", "user": client.address})
    snapshot = await client.wait_for(lambda f: f["channel"] == "userFundings")
    assert snapshot["data"]["isSnapshot"] is True
    assert [f["time"] for f in snapshot["data"]["fundings"]] == [hour]
    sim.exchange.funding.pay(hour + 3_600_000)
    update = await client.wait_for(lambda f: f["channel"] == "userFundings")
    assert "isSnapshot" not in update["data"]
    assert [f["time"] for f in update["data"]["fundings"]] == [hour + 3_600_000]


async def test_active_asset_data_info_and_feed(sim: SimHarness, client: DocClient) -> None:
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "100")], [("25.1", "100")])
    data = await client.info({"type": "activeAssetData", "user": client.address, "coin": "xyz:AAA"})
    assert data["user"] == client.address and data["coin"] == "xyz:AAA"
    assert data["leverage"]["type"] == "isolated"  # HIP-3 markets here are strictIsolated
    available = Decimal(data["availableToTrade"][0])
    leverage = data["leverage"]["value"]
    mark = Decimal(data["markPx"])
    assert available > 0
    assert Decimal(data["maxTradeSzs"][0]) == (available * leverage / mark).quantize(
        Decimal("0.01"), rounding="ROUND_DOWN"
    )

    await client.subscribe({"type": "activeAssetData", "user": client.address, "coin": "xyz:AAA"})
    first = await client.wait_for(lambda f: f["channel"] == "activeAssetData")
    assert first["data"]["availableToTrade"] == data["availableToTrade"]
    await buy_ioc(client, AAA, "25.1", "4")
    changed = await client.wait_for(lambda f: f["channel"] == "activeAssetData")
    # Long 4 now: the sell side can also close it, the buy side has less margin left.
    buy, sell = (Decimal(x) for x in changed["data"]["maxTradeSzs"])
    assert sell - buy >= Decimal(4) - Decimal("0.01")
    assert Decimal(changed["data"]["availableToTrade"][0]) < available


async def test_user_abstraction_is_a_bare_string(client: DocClient) -> None:
    answer = await client.info({"type": "userAbstraction", "user": client.address})
    assert answer == "disabled"


async def test_ledger_updates_snapshot_and_stream(sim: SimHarness, client: DocClient) -> None:
    ack = await client.subscribe({"type": "userNonFundingLedgerUpdates", "user": client.address})
    assert ack["channel"] == "subscriptionResponse"
    snapshot = await client.wait_for(lambda f: f["channel"] == "userNonFundingLedgerUpdates")
    assert snapshot["data"]["isSnapshot"] is True
    deposits = snapshot["data"]["nonFundingLedgerUpdates"]
    assert deposits and all(u["delta"]["type"] == "deposit" for u in deposits)
    sim.exchange.fund(client.address, Decimal("12.5"))
    update = await client.wait_for(lambda f: f["channel"] == "userNonFundingLedgerUpdates")
    [deposit] = update["data"]["nonFundingLedgerUpdates"]
    assert deposit["delta"] == {"type": "deposit", "usdc": "12.5"}
    assert deposit["hash"].startswith("0x") and len(deposit["hash"]) == 66
    listed = await client.info(
        {"type": "userNonFundingLedgerUpdates", "user": client.address, "startTime": 0}
    )
    assert listed[-1] == deposit and len(listed) == len(deposits) + 1


async def test_clearinghouse_state_feed_pushes_the_dex_state_on_a_fill(
    sim: SimHarness, client: DocClient
) -> None:
    sub = {"type": "clearinghouseState", "user": client.address.upper().replace("0X", "0x")}
    ack = await client.subscribe({**sub, "dex": "xyz"})
    assert ack["data"]["subscription"] == {
        "type": "clearinghouseState",
        "user": client.address,
        "dex": "xyz",
    }
    first = await client.wait_for(lambda f: f["channel"] == "clearinghouseState")
    assert first["data"]["dex"] == "xyz" and first["data"]["user"] == client.address
    assert first["data"]["clearinghouseState"]["assetPositions"] == []
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "10")], [("25.1", "10")])
    await buy_ioc(client, AAA, "25.1", "2")
    pushed = await client.wait_for(
        lambda f: (
            f["channel"] == "clearinghouseState"
            and bool(f["data"]["clearinghouseState"]["assetPositions"])
        )
    )
    [position] = pushed["data"]["clearinghouseState"]["assetPositions"]
    assert position["position"]["coin"] == "xyz:AAA" and position["position"]["szi"] == "2"
    state = await client.info({"type": "clearinghouseState", "user": client.address, "dex": "xyz"})
    assert state["assetPositions"] == pushed["data"]["clearinghouseState"]["assetPositions"]


async def test_clearinghouse_state_feed_does_not_repeat_an_unchanged_state(
    sim: SimHarness, client: DocClient
) -> None:
    await client.subscribe({"type": "clearinghouseState", "user": client.address, "dex": ""})
    await client.wait_for(lambda f: f["channel"] == "clearinghouseState")
    # A book change on another dex moves no mark of this (empty) account.
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "10")], [("25.1", "10")])
    await client.drain(0.2)
    assert client.seen(lambda f: f["channel"] == "clearinghouseState") == []


async def test_open_orders_feed_pushes_the_full_list(sim: SimHarness, client: DocClient) -> None:
    await client.subscribe({"type": "openOrders", "user": client.address, "dex": "xyz"})
    first = await client.wait_for(lambda f: f["channel"] == "openOrders")
    assert first["data"] == {"dex": "xyz", "user": client.address, "orders": []}
    [resting] = statuses(await client.order(limit_order(AAA, True, "20", "1")))
    oid = resting["resting"]["oid"]
    listed = await client.wait_for(lambda f: f["channel"] == "openOrders")
    [order] = listed["data"]["orders"]
    assert order["oid"] == oid and order["isTrigger"] is False and order["orderType"] == "Limit"
    await client.action({"type": "cancel", "cancels": [{"a": AAA, "o": oid}]})
    emptied = await client.wait_for(lambda f: f["channel"] == "openOrders")
    assert emptied["data"]["orders"] == []


async def test_web_data3_and_notification_subscriptions(client: DocClient) -> None:
    await client.subscribe({"type": "webData3", "user": client.address})
    frame = await client.wait_for(lambda f: f["channel"] == "webData3")
    state = frame["data"]["userState"]
    assert state["user"] == client.address and state["isVault"] is False
    assert isinstance(state["serverTime"], int) and Decimal(state["cumLedger"]) > 0
    assert len(frame["data"]["perpDexStates"]) >= 2
    ack = await client.subscribe({"type": "notification", "user": client.address})
    assert ack["data"]["subscription"] == {"type": "notification", "user": client.address}


@pytest.mark.parametrize(
    "subscription",
    [
        {"type": "candle", "coin": "xyz:NOPE", "interval": "1m"},
        {"type": "clearinghouseState", "user": "0x12", "dex": ""},
        {"type": "openOrders", "user": "0x" + "11" * 20, "dex": "nope"},
        {"type": "activeAssetData", "user": "0x" + "11" * 20, "coin": "NOPE"},
    ],
)
async def test_bad_subscriptions_name_the_subscription(
    client: DocClient, subscription: dict
) -> None:
    frame = await client.subscribe(subscription)
    assert frame["channel"] == "error"
    assert frame["data"].startswith("Invalid subscription ")


# ---------------------------------------------------------------- updateIsolatedMargin


def isolated_margin(asset: int, usd: str) -> dict:
    return {
        "type": "updateIsolatedMargin",
        "asset": asset,
        "isBuy": True,
        "ntli": int(Decimal(usd) * 1_000_000),
    }


async def margin_used(client: DocClient, dex: str = "") -> Decimal:
    state = await client.info({"type": "clearinghouseState", "user": client.address, "dex": dex})
    [position] = state["assetPositions"]
    return Decimal(position["position"]["marginUsed"])


async def test_isolated_margin_added_and_removed_moves_the_position_margin(
    sim: SimHarness, client: DocClient
) -> None:
    lev = {"type": "updateLeverage", "asset": BTC, "isCross": False, "leverage": 10}
    assert (await client.action(lev))["status"] == "ok"
    px = sim.exchange.mark_px("BTC")
    seed_book(sim.exchange, "BTC", [(str(px - 10), "1")], [(str(px + 10), "1")])
    await buy_ioc(client, BTC, str(px + 10), "0.01")
    before = await margin_used(client)
    added = await client.action(isolated_margin(BTC, "50"))
    assert added == {"status": "ok", "response": {"type": "default"}}
    assert await margin_used(client) == before + 50
    removed = await client.action(isolated_margin(BTC, "-20"))
    assert removed["status"] == "ok"
    assert await margin_used(client) == before + 30
    too_much = await client.action(isolated_margin(BTC, "-31"))
    assert (
        too_much["status"] == "err" and "Cannot remove more isolated margin" in too_much["response"]
    )
    assert await margin_used(client) == before + 30


async def test_isolated_margin_refusals(sim: SimHarness, client: DocClient) -> None:
    none = await client.action(isolated_margin(AAA, "10"))
    assert none["status"] == "err" and none["response"].startswith("No open position on xyz:AAA")
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "10")], [("25.1", "10")])
    await buy_ioc(client, AAA, "25.1", "2")
    strict = await client.action(isolated_margin(AAA, "-1"))
    assert strict["status"] == "err" and "strictIsolated" in strict["response"]
    state = await client.info({"type": "clearinghouseState", "user": client.address, "dex": "xyz"})
    free = Decimal(state["withdrawable"])
    over = await client.action(isolated_margin(AAA, str((free + 1).quantize(Decimal(1)))))
    assert over == {
        "status": "err",
        "response": "Insufficient margin to add to the isolated position.",
    }
    ok = await client.action(isolated_margin(AAA, "5"))
    assert ok["status"] == "ok"
    assert await margin_used(client, "xyz") > 0
    px = sim.exchange.mark_px("BTC")
    seed_book(sim.exchange, "BTC", [(str(px - 10), "1")], [(str(px + 10), "1")])
    await buy_ioc(client, BTC, str(px + 10), "0.01")  # BTC is cross by default
    cross = await client.action(isolated_margin(BTC, "5"))
    assert cross["status"] == "err" and "cross margin" in cross["response"]


async def test_isolated_margin_zero_amount_is_malformed(client: DocClient) -> None:
    text = await client.unparsable(client.signed_payload(isolated_margin(AAA, "0")))
    assert "ntli" in text


async def test_clearinghouse_state_feed_pushes_when_the_mark_moves_a_position(
    sim: SimHarness, client: DocClient
) -> None:
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "10")], [("25.1", "10")])
    await buy_ioc(client, AAA, "25.1", "2")
    await client.subscribe({"type": "clearinghouseState", "user": client.address, "dex": "xyz"})
    first = await client.wait_for(lambda f: f["channel"] == "clearinghouseState")
    [held] = first["data"]["clearinghouseState"]["assetPositions"]
    # No action of the user: the market moves, and the position's value with it.
    sim.exchange.set_oracle("xyz:AAA", Decimal("26"))
    seed_book(sim.exchange, "xyz:AAA", [("25.9", "10")], [("26.1", "10")])
    moved = await client.wait_for(
        lambda f: (
            f["channel"] == "clearinghouseState"
            and f["data"]["clearinghouseState"]["assetPositions"][0]["position"]["unrealizedPnl"]
            != held["position"]["unrealizedPnl"]
        )
    )
    [position] = moved["data"]["clearinghouseState"]["assetPositions"]
    assert Decimal(position["position"]["unrealizedPnl"]) == 2 * (Decimal(26) - Decimal("25.1"))
