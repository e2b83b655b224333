"""Actions over the socket: order rules and texts, fills, fees, cancels, modify, dead man's switch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from hip3.sim.harness import SimHarness, wall_clock_ms
from tests.sim.doc_client import (
    AAA,
    BTC,
    CCC,
    ETH,
    MAKER,
    DocClient,
    limit_order,
    seed_book,
    statuses,
)

CLOID_1 = "0x0000000000000000000000000000000a"
CLOID_2 = "0x0000000000000000000000000000000b"


@pytest.fixture
async def client(sim: SimHarness) -> AsyncIterator[DocClient]:
    seed_book(
        sim.exchange,
        "xyz:AAA",
        [("24.9", "100"), ("24.8", "50")],
        [("25.1", "100"), ("25.2", "50")],
    )
    seed_book(sim.exchange, "ETH", [("2999", "10")], [("3001", "10")])
    async with await DocClient.connect(sim.ws_url, sim.account[1]) as c:
        yield c


def is_channel(name: str):
    return lambda frame: frame.get("channel") == name


async def test_ioc_fill_reports_fill_position_and_hip3_fee(
    sim: SimHarness, client: DocClient
) -> None:
    user = client.address
    await client.subscribe({"type": "userFills", "user": user})
    await client.subscribe({"type": "orderUpdates", "user": user})
    await client.subscribe({"type": "userEvents", "user": user})
    snapshot = await client.wait_for(is_channel("userFills"))
    assert snapshot["data"]["isSnapshot"] is True

    response = await client.order(limit_order(AAA, True, "25.2", "3", "Ioc", cloid=CLOID_1))

    [status] = statuses(response)
    assert status == {
        "filled": {
            "totalSz": "3",
            "avgPx": "25.1",
            "oid": status["filled"]["oid"],
            "cloid": CLOID_1,
        }
    }
    fills = await client.wait_for(is_channel("userFills"))
    assert "isSnapshot" not in fills["data"]
    [fill] = fills["data"]["fills"]
    # HIP-3 dex with deployerFeeScale 1.0 pays twice the base taker rate (0.045%).
    expected_fee = Decimal("25.1") * 3 * Decimal("0.00045") * 2
    assert fill["coin"] == "xyz:AAA" and fill["px"] == "25.1" and fill["sz"] == "3"
    assert fill["side"] == "B" and fill["dir"] == "Open Long" and fill["startPosition"] == "0"
    assert fill["crossed"] is True and fill["feeToken"] == "USDC" and fill["cloid"] == CLOID_1
    assert Decimal(fill["fee"]) == expected_fee
    assert (
        isinstance(fill["tid"], int) and fill["hash"].startswith("0x") and len(fill["hash"]) == 66
    )
    update = await client.wait_for(is_channel("orderUpdates"))
    assert update["data"][0]["status"] == "filled"
    event = await client.wait_for(is_channel("user"))
    assert event["data"] == {"fills": [fill]}
    assert sim.exchange.positions(user) == {"xyz:AAA": Decimal(3)}
    state = await client.info({"type": "clearinghouseState", "user": user, "dex": "xyz"})
    assert Decimal(state["marginSummary"]["totalRawUsd"]) == Decimal(100000) - expected_fee
    book = sim.exchange.l2_book("xyz:AAA")
    assert book["levels"][1][0] == {"px": "25.1", "sz": "97", "n": 1}


async def test_growth_mode_asset_pays_a_tenth_of_the_hip3_fee(
    sim: SimHarness, client: DocClient
) -> None:
    seed_book(sim.exchange, "xyz:CCC", [("4.1", "1000")], [("4.3", "1000")])
    response = await client.order(limit_order(CCC, True, "4.3", "10", "Ioc"))
    assert "filled" in statuses(response)[0]
    [fill] = sim.exchange.user_fills(client.address)
    assert Decimal(fill["fee"]) == Decimal("4.3") * 10 * Decimal("0.00045") * 2 * Decimal("0.1")


async def test_gtc_rests_then_cancel_and_second_cancel_fails(
    sim: SimHarness, client: DocClient
) -> None:
    await client.subscribe({"type": "orderUpdates", "user": client.address})
    [status] = statuses(await client.order(limit_order(AAA, True, "24.5", "2")))
    oid = status["resting"]["oid"]
    opened = await client.wait_for(is_channel("orderUpdates"))
    assert opened["data"][0]["status"] == "open" and opened["data"][0]["order"]["oid"] == oid
    assert [o["oid"] for o in sim.exchange.open_orders(client.address)] == [oid]
    assert sim.exchange.l2_book("xyz:AAA")["levels"][0][1] == {"px": "24.8", "sz": "50", "n": 1}
    assert sim.exchange.l2_book("xyz:AAA")["levels"][0][0]["px"] == "24.9"

    cancel = await client.action({"type": "cancel", "cancels": [{"a": AAA, "o": oid}]})
    assert statuses(cancel) == ["success"]
    canceled = await client.wait_for(is_channel("orderUpdates"))
    assert canceled["data"][0]["status"] == "canceled"
    again = await client.action({"type": "cancel", "cancels": [{"a": AAA, "o": oid}]})
    assert statuses(again) == [
        {"error": "Order was never placed, already canceled, or filled. asset=110000"}
    ]
    assert sim.exchange.open_orders(client.address) == []


async def test_cancel_by_cloid_and_duplicate_cloid(sim: SimHarness, client: DocClient) -> None:
    first = statuses(await client.order(limit_order(AAA, False, "26", "1", cloid=CLOID_2)))
    assert first[0]["resting"]["cloid"] == CLOID_2
    duplicate = statuses(await client.order(limit_order(AAA, False, "26.5", "1", cloid=CLOID_2)))
    assert "error" in duplicate[0] and "cloid" in duplicate[0]["error"]
    cancel = await client.action(
        {"type": "cancelByCloid", "cancels": [{"asset": AAA, "cloid": CLOID_2}]}
    )
    assert statuses(cancel) == ["success"]
    # The cloid is free again once its order is gone.
    reused = statuses(await client.order(limit_order(AAA, False, "26", "1", cloid=CLOID_2)))
    assert "resting" in reused[0]


@pytest.mark.parametrize(
    ("order", "error"),
    [
        (
            limit_order(AAA, True, "24.12345", "1"),
            "Price must be divisible by tick size. asset=110000",
        ),
        (
            limit_order(BTC, True, "60000.5", "0.001"),
            "Price must be divisible by tick size. asset=0",
        ),
        (limit_order(AAA, True, "24.5", "1.001"), "Order has invalid size."),
        (limit_order(AAA, True, "24.5", "0"), "Order has zero size."),
        (limit_order(AAA, True, "24.5", "0.00"), "Order has zero size."),
        (limit_order(AAA, True, "0", "1"), "Price must be divisible by tick size. asset=110000"),
        (
            limit_order(AAA, True, "24.5", "0.4"),
            "Order must have minimum value of $10. asset=110000",
        ),
        (
            limit_order(AAA, True, "24.5", "1", reduce_only=True),
            "Reduce only order would increase position. asset=110000",
        ),
        (
            limit_order(AAA, True, "25", "1", "Ioc"),
            "Order could not immediately match against any resting orders. asset=110000",
        ),
        (
            limit_order(AAA, True, "25.1", "1", "Alo"),
            "Post only order would have immediately matched, bbo was 24.9@25.1. asset=110000",
        ),
        (
            limit_order(AAA, False, "24.9", "1", "Alo"),
            "Post only order would have immediately matched, bbo was 24.9@25.1. asset=110000",
        ),
        (
            limit_order(AAA, True, "24", "100000"),
            "Insufficient margin to place order. asset=110000",
        ),
    ],
)
async def test_per_order_errors_have_exchange_texts(
    sim: SimHarness, client: DocClient, order: dict, error: str
) -> None:
    response = await client.order(order)
    assert statuses(response) == [{"error": error}]
    assert sim.exchange.open_orders(client.address) == []
    assert sim.exchange.positions(client.address) == {}


async def test_integer_price_with_many_digits_is_valid(client: DocClient) -> None:
    [status] = statuses(await client.order(limit_order(BTC, True, "123456", "0.001")))
    assert "error" not in status


async def test_unknown_asset_is_a_clear_error(client: DocClient) -> None:
    [status] = statuses(await client.order(limit_order(120000, True, "10", "2")))
    assert "120000" in status["error"] and "does not exist" in status["error"]


async def test_unfunded_dex_cannot_trade(sim: SimHarness) -> None:
    address, key = sim.exchange.new_account(Decimal(0))
    sim.exchange.fund(address, Decimal(5000), "")  # validator dex only
    async with await DocClient.connect(sim.ws_url, key) as client:
        ok = await client.order(limit_order(ETH, True, "2900", "0.01"))
        assert "resting" in statuses(ok)[0]
        refused = await client.order(limit_order(AAA, True, "24", "1"))
        assert statuses(refused) == [{"error": "Insufficient margin to place order. asset=110000"}]


async def test_batch_statuses_follow_request_order(client: DocClient) -> None:
    response = await client.order(
        limit_order(AAA, True, "24", "1"),
        limit_order(AAA, True, "24.123456", "1"),
        limit_order(AAA, False, "24.9", "1", "Ioc"),
    )
    first, second, third = statuses(response)
    assert "resting" in first
    assert second == {"error": "Price must be divisible by tick size. asset=110000"}
    assert third["filled"]["totalSz"] == "1"


async def test_gtc_crossing_fills_then_rests_remainder(sim: SimHarness, client: DocClient) -> None:
    [status] = statuses(await client.order(limit_order(AAA, True, "25.2", "200")))
    oid = status["resting"]["oid"]
    assert sim.exchange.positions(client.address) == {"xyz:AAA": Decimal(150)}
    [resting] = sim.exchange.open_orders(client.address)
    assert resting["oid"] == oid and resting["sz"] == "50" and resting["origSz"] == "200"
    assert sim.exchange.bbo("xyz:AAA")["bbo"][0]["px"] == "25.2"


async def test_two_users_trade_with_maker_and_taker_sides(
    sim: SimHarness, client: DocClient
) -> None:
    other_address, other_key = sim.exchange.new_account(Decimal(10000), every_dex=True)
    [resting] = statuses(await client.order(limit_order(AAA, False, "25.05", "4")))
    async with await DocClient.connect(sim.ws_url, other_key) as other:
        await other.subscribe({"type": "trades", "coin": "xyz:AAA"})
        [taken] = statuses(await other.order(limit_order(AAA, True, "25.05", "4", "Ioc")))
        assert taken["filled"] == {"totalSz": "4", "avgPx": "25.05", "oid": taken["filled"]["oid"]}
        trades = await other.wait_for(
            lambda f: f.get("channel") == "trades" and f["data"][0]["px"] == "25.05"
        )
        assert trades["data"][0]["users"] == [other_address, client.address]
        assert trades["data"][0]["side"] == "B"
    [maker_fill] = sim.exchange.user_fills(client.address)
    [taker_fill] = sim.exchange.user_fills(other_address)
    assert maker_fill["oid"] == resting["resting"]["oid"] and maker_fill["crossed"] is False
    assert taker_fill["crossed"] is True and maker_fill["tid"] == taker_fill["tid"]
    notional = Decimal("25.05") * 4
    assert Decimal(maker_fill["fee"]) == notional * Decimal("0.00015") * 2
    assert sim.exchange.positions(client.address) == {"xyz:AAA": Decimal(-4)}
    assert sim.exchange.positions(other_address) == {"xyz:AAA": Decimal(4)}


async def test_reduce_only_closes_and_reports_closed_pnl(
    sim: SimHarness, client: DocClient
) -> None:
    statuses(await client.order(limit_order(AAA, True, "25.1", "2", "Ioc")))
    seed_book(sim.exchange, "xyz:AAA", [("26", "100")], [("26.2", "100")])
    [closed] = statuses(
        await client.order(limit_order(AAA, False, "26", "5", "Ioc", reduce_only=True))
    )
    assert closed["filled"]["totalSz"] == "2"  # clamped to the position
    assert sim.exchange.positions(client.address) == {}
    last = sim.exchange.user_fills(client.address)[0]
    assert last["dir"] == "Close Long" and last["startPosition"] == "2"
    assert Decimal(last["closedPnl"]) == (Decimal("26") - Decimal("25.1")) * 2


async def test_batch_modify_replaces_the_order(sim: SimHarness, client: DocClient) -> None:
    [status] = statuses(await client.order(limit_order(AAA, True, "24", "1", cloid=CLOID_1)))
    old = status["resting"]["oid"]
    response = await client.action(
        {
            "type": "batchModify",
            "modifies": [
                {"oid": old, "order": limit_order(AAA, True, "24.5", "2", cloid=CLOID_1)},
                {"oid": 42, "order": limit_order(AAA, True, "24.5", "2")},
            ],
        }
    )
    assert response["response"]["type"] == "order"
    replaced, missing = statuses(response)
    assert replaced["resting"]["cloid"] == CLOID_1 and replaced["resting"]["oid"] != old
    assert "error" in missing
    [order] = sim.exchange.open_orders(client.address)
    assert order["limitPx"] == "24.5" and order["sz"] == "2"


async def test_schedule_cancel_needs_a_million_traded_then_is_allowed(
    sim: SimHarness, client: DocClient
) -> None:
    deadline = wall_clock_ms() + 60_000
    [fill] = statuses(await client.order(limit_order(AAA, True, "25.1", "1", "Ioc")))
    assert fill["filled"]["totalSz"] == "1"
    refused = await client.action({"type": "scheduleCancel", "time": deadline})
    assert refused == {
        "status": "err",
        "response": "Cannot set scheduled cancel time until enough volume traded. "
        "Required: $1000000. Traded: $25.1.",
    }
    assert client.address not in sim.exchange.scheduled.deadlines
    # Clearing needs no volume.
    assert (await client.action({"type": "scheduleCancel"}))["status"] == "ok"
    sim.exchange.credit_traded_volume(client.address, Decimal("999974.9"))
    allowed = await client.action({"type": "scheduleCancel", "time": deadline})
    assert allowed == {"status": "ok", "response": {"type": "default"}}
    assert sim.exchange.scheduled.deadlines[client.address] == deadline


async def test_schedule_cancel_volume_requirement_is_settable(make_sim) -> None:
    sim = await make_sim(schedule_cancel_min_volume=Decimal(0))
    async with await DocClient.connect(sim.ws_url, sim.account[1]) as fresh:
        answer = await fresh.action({"type": "scheduleCancel", "time": wall_clock_ms() + 60_000})
    assert answer == {"status": "ok", "response": {"type": "default"}}


async def test_schedule_cancel_fires_with_status_scheduled_cancel(
    sim: SimHarness, client: DocClient
) -> None:
    sim.exchange.credit_traded_volume(client.address, Decimal(1_000_000))
    await client.subscribe({"type": "orderUpdates", "user": client.address})
    statuses(
        await client.order(
            limit_order(AAA, True, "24", "1"), limit_order(ETH, True, "2900", "0.01")
        )
    )
    too_soon = await client.action({"type": "scheduleCancel", "time": wall_clock_ms() + 1000})
    assert too_soon["status"] == "err" and "5 seconds" in too_soon["response"]
    deadline = wall_clock_ms() + 6000
    assert await client.action({"type": "scheduleCancel", "time": deadline}) == {
        "status": "ok",
        "response": {"type": "default"},
    }
    sim.exchange.tick(deadline - 1)
    assert len(sim.exchange.open_orders(client.address)) == 2
    sim.exchange.tick(deadline)  # drive the exchange clock past the deadline
    assert sim.exchange.open_orders(client.address) == []
    fired = await client.wait_for(
        lambda f: f.get("channel") == "orderUpdates" and f["data"][0]["status"] == "scheduledCancel"
    )
    coins = {u["order"]["coin"] for u in fired["data"]}
    assert coins == {"xyz:AAA", "ETH"}


async def test_schedule_cancel_without_time_clears_the_switch(
    sim: SimHarness, client: DocClient
) -> None:
    sim.exchange.credit_traded_volume(client.address, Decimal(1_000_000))
    statuses(await client.order(limit_order(AAA, True, "24", "1")))
    deadline = wall_clock_ms() + 6000
    scheduled = await client.action({"type": "scheduleCancel", "time": deadline})
    assert scheduled == {"status": "ok", "response": {"type": "default"}}
    cleared = await client.action({"type": "scheduleCancel"})
    assert cleared == {"status": "ok", "response": {"type": "default"}}
    sim.exchange.tick(deadline + 1000)
    assert len(sim.exchange.open_orders(client.address)) == 1


async def test_update_leverage_rules(client: DocClient) -> None:
    cross = await client.action(
        {"type": "updateLeverage", "asset": AAA, "isCross": True, "leverage": 3}
    )
    assert cross["status"] == "err" and "isolated" in cross["response"]
    too_high = await client.action(
        {"type": "updateLeverage", "asset": AAA, "isCross": False, "leverage": 11}
    )
    assert too_high["status"] == "err" and "1..10" in too_high["response"]
    ok = await client.action(
        {"type": "updateLeverage", "asset": AAA, "isCross": False, "leverage": 3}
    )
    assert ok == {"status": "ok", "response": {"type": "default"}}
    statuses(await client.order(limit_order(AAA, True, "25.1", "3", "Ioc")))
    state = await client.info({"type": "clearinghouseState", "user": client.address, "dex": "xyz"})
    leverage = state["assetPositions"][0]["position"]["leverage"]
    assert leverage["type"] == "isolated" and leverage["value"] == 3


async def test_noop_uses_the_nonce(client: DocClient) -> None:
    nonce = client.next_nonce()
    assert await client.action({"type": "noop"}, nonce=nonce) == {
        "status": "ok",
        "response": {"type": "default"},
    }
    replay = await client.order(limit_order(AAA, True, "24", "1"), nonce=nonce)
    assert replay == {"status": "err", "response": f"Invalid nonce: duplicate nonce {nonce}"}


@pytest.mark.parametrize(
    ("action", "names"),
    [
        (
            {
                "type": "order",
                "orders": [{"a": AAA, "b": True, "p": "24", "s": "1", "r": False}],
                "grouping": "na",
            },
            "'t'",
        ),
        (
            {
                "type": "order",
                "orders": [
                    {
                        "a": AAA,
                        "b": "yes",
                        "p": "24",
                        "s": "1",
                        "r": False,
                        "t": {"limit": {"tif": "Gtc"}},
                    }
                ],
                "grouping": "na",
            },
            ".b",
        ),
        (
            {
                "type": "order",
                "orders": [
                    {
                        "a": AAA,
                        "b": True,
                        "p": 24.0,
                        "s": "1",
                        "r": False,
                        "t": {"limit": {"tif": "Gtc"}},
                    }
                ],
                "grouping": "na",
            },
            ".p",
        ),
        (
            {
                "type": "order",
                "orders": [
                    {
                        "a": AAA,
                        "b": True,
                        "p": "abc",
                        "s": "1",
                        "r": False,
                        "t": {"limit": {"tif": "Gtc"}},
                    }
                ],
                "grouping": "na",
            },
            ".p",
        ),
        (
            {
                "type": "order",
                "orders": [
                    {
                        "a": AAA,
                        "b": True,
                        "p": "24",
                        "s": "1",
                        "r": False,
                        "t": {"limit": {"tif": "Day"}},
                    }
                ],
                "grouping": "na",
            },
            "tif",
        ),
        ({"type": "order", "orders": [], "grouping": "na"}, "Orders are empty."),
        ({"type": "cancel", "cancels": [{"a": AAA}]}, "'o'"),
        ({"type": "cancel", "cancels": [{"a": AAA, "o": 1}], "f": False}, ".f"),
        ({"type": "cancelByCloid", "cancels": [{"asset": AAA, "cloid": "0x12"}]}, "cloid"),
        ({"type": "updateLeverage", "asset": AAA, "isCross": False}, "'leverage'"),
        ({"type": "transmogrify"}, "transmogrify"),
    ],
)
async def test_malformed_actions_are_top_level_errors(
    sim: SimHarness, client: DocClient, action: dict, names: str
) -> None:
    before = sim.exchange.l2_book("xyz:AAA")["levels"]
    response = await client.post("action", client.signed_payload(action))
    if names == "Orders are empty.":
        # A well-formed action the exchange refuses: an action answer with status err.
        assert response["type"] == "action", response
        assert response["payload"] == {"status": "err", "response": names}
    else:
        # An action that does not fit the schema (HTTP 422) is a post `error` response.
        assert response["type"] == "error", response
        assert names in response["payload"]
    assert sim.exchange.open_orders(client.address) == []
    assert sim.exchange.l2_book("xyz:AAA")["levels"] == before


async def test_more_than_200_entries_is_refused_whole_and_nothing_executes(
    sim: SimHarness, client: DocClient
) -> None:
    orders = [limit_order(AAA, True, "24", "1") for _ in range(201)]
    refused = await client.order(*orders)
    assert refused == {"status": "err", "response": "Signed action over weight limit of 200."}
    assert sim.exchange.open_orders(client.address) == []
    cancels = [{"a": AAA, "o": n} for n in range(201)]
    refused = await client.action({"type": "cancel", "cancels": cancels})
    assert refused == {"status": "err", "response": "Signed action over weight limit of 200."}
    accepted = await client.order(*orders[:200])
    assert len(statuses(accepted)) == 200


@pytest.mark.parametrize(
    ("px", "sz", "named"),
    [("-24", "1", "negative"), ("24", "-1", "negative"), ("24.000000001", "1", "8 decimals")],
)
async def test_numbers_the_exchange_cannot_deserialize(
    sim: SimHarness, client: DocClient, px: str, sz: str, named: str
) -> None:
    action = {"type": "order", "orders": [limit_order(AAA, True, px, sz)], "grouping": "na"}
    text = await client.unparsable(client.signed_payload(action))
    assert named in text
    assert text.startswith("Failed to deserialize the JSON body")
    assert sim.exchange.open_orders(client.address) == []


async def test_zeros_padded_beyond_8_decimals_are_still_a_number(client: DocClient) -> None:
    [status] = statuses(await client.order(limit_order(AAA, True, "24.000000000", "1")))
    assert "resting" in status


async def test_malformed_envelope_is_top_level_error(client: DocClient) -> None:
    payload = client.signed_payload({"type": "noop"})
    payload["nonce"] = "soon"
    assert "nonce" in await client.unparsable(payload)
    del payload["signature"]
    payload["nonce"] = client.next_nonce()
    assert "signature" in await client.unparsable(payload)


async def test_injected_rejections_then_normal_service(sim: SimHarness, client: DocClient) -> None:
    sim.exchange.reject_next_orders(1, "Order price too far from oracle")
    first = statuses(await client.order(limit_order(AAA, True, "24", "1")))
    assert first == [{"error": "Order price too far from oracle"}]
    second = statuses(await client.order(limit_order(AAA, True, "24", "1")))
    assert "resting" in second[0]


async def test_halt_market_cancels_orders_and_settles_at_mark(
    sim: SimHarness, client: DocClient
) -> None:
    await client.subscribe({"type": "orderUpdates", "user": client.address})
    statuses(await client.order(limit_order(AAA, True, "25.1", "2", "Ioc")))
    statuses(await client.order(limit_order(AAA, True, "24", "1")))
    balance_before = sim.exchange.accounts[client.address].balance("xyz")
    mark = sim.exchange.mark_px("xyz:AAA")
    sim.exchange.halt_market("xyz:AAA")
    assert sim.exchange.positions(client.address) == {}
    assert sim.exchange.open_orders(client.address) == []
    balance_after = sim.exchange.accounts[client.address].balance("xyz")
    assert balance_after - balance_before == 2 * (mark - Decimal("25.1"))
    canceled = await client.wait_for(
        lambda f: f.get("channel") == "orderUpdates" and f["data"][0]["status"] == "canceled"
    )
    assert canceled["data"][0]["order"]["coin"] == "xyz:AAA"
    refused = statuses(await client.order(limit_order(AAA, True, "24", "1")))
    assert "halted" in refused[0]["error"]
    assert MAKER not in [o["oid"] for o in sim.exchange.open_orders(MAKER)]


async def test_a_price_outside_the_reference_band_refuses_the_whole_batch(
    sim: SimHarness, client: DocClient
) -> None:
    oracle = sim.exchange.oracle["xyz:AAA"]
    assert oracle == Decimal(25)  # the band below is 0.2x..5x of it
    batch = [limit_order(AAA, True, "24.5", "1"), limit_order(AAA, False, "125.1", "1")]
    refused = await client.action({"type": "order", "orders": batch, "grouping": "na"})
    assert refused == {
        "status": "err",
        "response": "Order price cannot be more than 80% away from the reference price",
    }
    assert sim.exchange.open_orders(client.address) == []  # nothing of the batch executed
    too_low = await client.order(limit_order(AAA, True, "5", "3"))
    assert too_low["status"] == "err" and "reference price" in too_low["response"]
    # The edges of the band are inside it.
    assert "resting" in statuses(await client.order(limit_order(AAA, False, "125", "1")))[0]
    assert "resting" in statuses(await client.order(limit_order(AAA, True, "5.01", "3")))[0]
