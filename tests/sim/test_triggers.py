"""Trigger orders (TP/SL, market and limit; na, normalTpsl and positionTpsl groupings) through
the socket: placed and canceled by signed posts, fired by the mark price, seen in orderUpdates,
openOrders, frontendOpenOrders, notification and positions.

The mark is moved on the core (oracle and a maker's quotes), as a market would move it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from hip3.sim.harness import SimHarness
from tests.sim.doc_client import AAA, DocClient, limit_order, seed_book, statuses


@pytest.fixture
async def client(sim: SimHarness) -> AsyncIterator[DocClient]:
    async with await DocClient.connect(sim.ws_url, sim.account[1]) as c:
        await c.subscribe({"type": "orderUpdates", "user": c.address})
        await c.subscribe({"type": "notification", "user": c.address})
        yield c
    _SEEN.pop(id(c), None)


def trigger_order(
    is_buy: bool,
    px: str,
    sz: str,
    trigger_px: str,
    tpsl: str,
    *,
    is_market: bool = True,
    reduce_only: bool = True,
) -> dict[str, Any]:
    """A trigger order wire on xyz:AAA, keys in the documented order."""
    return {
        "a": AAA,
        "b": is_buy,
        "p": px,
        "s": sz,
        "r": reduce_only,
        "t": {"trigger": {"isMarket": is_market, "triggerPx": trigger_px, "tpsl": tpsl}},
    }


def move_mark(sim: SimHarness, px: str) -> None:
    """Oracle at px and a maker quoting 0.1 either side: the mark (their median) is px."""
    mid = Decimal(px)
    sim.exchange.set_oracle("xyz:AAA", mid)
    seed_book(sim.exchange, "xyz:AAA", [(str(mid - Decimal("0.1")), "50")],
              [(str(mid + Decimal("0.1")), "50")])  # fmt: skip


async def open_long(sim: SimHarness, client: DocClient, sz: str) -> None:
    move_mark(sim, "25")
    [status] = statuses(await client.order(limit_order(AAA, True, "25.1", sz, "Ioc")))
    assert status["filled"]["totalSz"] == sz


async def position(client: DocClient) -> str:
    state = await client.info({"type": "clearinghouseState", "user": client.address, "dex": "xyz"})
    found = [p["position"]["szi"] for p in state["assetPositions"]]
    return found[0] if found else "0"


_SEEN: dict[int, list[dict[str, Any]]] = {}  # id(client) -> orderUpdates read so far


async def update_for(client: DocClient, oid: int, status: str) -> dict[str, Any]:
    """The orderUpdates entry of `oid` with `status` (one frame may carry several)."""
    seen = _SEEN.setdefault(id(client), [])

    def find() -> dict[str, Any] | None:
        for update in seen:
            if update["order"]["oid"] == oid and update["status"] == status:
                seen.remove(update)
                return update
        return None

    while (found := find()) is None:
        frame = await client.wait_for(lambda f: f["channel"] == "orderUpdates")
        seen.extend(frame["data"])
    return found


async def front(client: DocClient) -> list[dict[str, Any]]:
    return await client.info({"type": "frontendOpenOrders", "user": client.address, "dex": "xyz"})


async def test_stop_market_rests_off_the_book_and_fires_on_the_mark(
    sim: SimHarness, client: DocClient
) -> None:
    await open_long(sim, client, "2")
    [status] = statuses(await client.order(trigger_order(False, "20", "2", "24", "sl")))
    oid = status["resting"]["oid"]
    await update_for(client, oid, "open")
    [listed] = await front(client)
    assert listed["oid"] == oid and listed["isTrigger"] is True
    assert listed["orderType"] == "Stop Market" and listed["triggerPx"] == "24"
    assert listed["triggerCondition"] == "Price below 24" and listed["tif"] is None
    book = await client.info({"type": "l2Book", "coin": "xyz:AAA"})
    assert all(level["px"] != "20" for level in book["levels"][1])  # not on the book

    move_mark(sim, "24.5")  # not reached: nothing happens
    assert await position(client) == "2"
    move_mark(sim, "23.9")
    triggered = await update_for(client, oid, "triggered")
    assert triggered["order"]["sz"] == "2"
    await update_for(client, oid, "filled")
    note = await client.wait_for(lambda f: f["channel"] == "notification")
    assert "xyz:AAA" in note["data"]["notification"]
    assert await position(client) == "0"
    assert await front(client) == []
    fills = await client.info({"type": "userFills", "user": client.address})
    assert fills[0]["oid"] == oid and fills[0]["px"] == "23.8" and fills[0]["side"] == "A"
    answer = await client.info({"type": "orderStatus", "user": client.address, "oid": oid})
    assert answer["order"]["status"] == "filled"


async def test_take_profit_limit_rests_at_its_price_once_triggered(
    sim: SimHarness, client: DocClient
) -> None:
    await open_long(sim, client, "2")
    order = trigger_order(False, "27", "2", "26", "tp", is_market=False)
    [status] = statuses(await client.order(order))
    oid = status["resting"]["oid"]
    [listed] = await front(client)
    assert listed["orderType"] == "Take Profit Limit"
    assert listed["triggerCondition"] == "Price above 26"
    move_mark(sim, "26")  # reached: bids at 25.9 are below its limit of 27, so it rests
    await update_for(client, oid, "triggered")
    opened = await update_for(client, oid, "open")
    assert opened["order"]["limitPx"] == "27"
    [resting] = await front(client)
    assert resting["oid"] == oid and resting["tif"] == "Gtc"
    book = await client.info({"type": "l2Book", "coin": "xyz:AAA"})
    assert {"px": "27", "sz": "2", "n": 1} in book["levels"][1]
    assert await position(client) == "2"


async def test_a_standalone_trigger_already_reached_fires_at_once(
    sim: SimHarness, client: DocClient
) -> None:
    await open_long(sim, client, "1")
    [status] = statuses(await client.order(trigger_order(False, "20", "1", "26", "sl")))
    oid = status["resting"]["oid"]
    await update_for(client, oid, "triggered")
    await update_for(client, oid, "filled")
    assert await position(client) == "0"


async def test_position_tpsl_is_sized_to_the_position_and_its_sibling_canceled(
    sim: SimHarness, client: DocClient
) -> None:
    await open_long(sim, client, "2")
    action = {
        "type": "order",
        "orders": [
            trigger_order(False, "20", "0", "27", "tp"),
            trigger_order(False, "20", "0", "24", "sl"),
        ],
        "grouping": "positionTpsl",
    }
    assert statuses(await client.action(action)) == ["waitingForTrigger", "waitingForTrigger"]
    listed = await front(client)
    assert len(listed) == 2 and all(o["isPositionTpsl"] for o in listed)
    assert {o["sz"] for o in listed} == {"2"}
    tp_oid, sl_oid = sorted(o["oid"] for o in listed)
    [status] = statuses(await client.order(limit_order(AAA, True, "25.1", "1", "Ioc")))
    assert "filled" in status  # long 3 now: the TP/SL follows the position
    move_mark(sim, "23.9")
    fired = await update_for(client, sl_oid, "triggered")
    assert fired["order"]["sz"] == "3"
    await update_for(client, tp_oid, "siblingFilledCanceled")
    await update_for(client, sl_oid, "filled")
    assert await position(client) == "0"
    assert await front(client) == []


async def test_position_tpsl_is_canceled_when_the_position_closes(
    sim: SimHarness, client: DocClient
) -> None:
    await open_long(sim, client, "2")
    action = {
        "type": "order",
        "orders": [trigger_order(False, "20", "2", "24", "sl")],
        "grouping": "positionTpsl",
    }
    assert statuses(await client.action(action)) == ["waitingForTrigger"]
    [listed] = await front(client)
    close = limit_order(AAA, False, "24.9", "2", "Ioc", reduce_only=True)
    assert "filled" in statuses(await client.order(close))[0]
    await update_for(client, listed["oid"], "reduceOnlyCanceled")
    assert await front(client) == []
    move_mark(sim, "23")  # nothing left to fire
    assert await position(client) == "0"


async def test_normal_tpsl_children_wait_for_the_parent_to_fill(
    sim: SimHarness, client: DocClient
) -> None:
    move_mark(sim, "25")
    action = {
        "type": "order",
        "orders": [
            limit_order(AAA, True, "24.5", "2"),
            trigger_order(False, "20", "2", "27", "tp"),
            trigger_order(False, "20", "2", "23", "sl"),
        ],
        "grouping": "normalTpsl",
    }
    parent, tp, sl = statuses(await client.action(action))
    assert (tp, sl) == ("waitingForFill", "waitingForFill")
    parent_oid = parent["resting"]["oid"]
    assert [o["oid"] for o in await front(client)] == [parent_oid]
    move_mark(sim, "24.4")  # the maker's ask at 24.5 fills the parent
    await update_for(client, parent_oid, "filled")
    listed = await front(client)
    children = [o for o in listed if o["isTrigger"]]
    assert len(listed) == 2 and len(children) == 2
    assert {o["orderType"] for o in listed} == {"Take Profit Market", "Stop Market"}
    assert await position(client) == "2"
    move_mark(sim, "27")
    tp_oid = next(o["oid"] for o in listed if o["orderType"] == "Take Profit Market")
    sl_oid = next(o["oid"] for o in listed if o["orderType"] == "Stop Market")
    await update_for(client, tp_oid, "triggered")
    await update_for(client, sl_oid, "siblingFilledCanceled")
    await update_for(client, tp_oid, "filled")
    assert await position(client) == "0"


async def test_normal_tpsl_children_die_with_a_canceled_parent(
    sim: SimHarness, client: DocClient
) -> None:
    move_mark(sim, "25")
    action = {
        "type": "order",
        "orders": [limit_order(AAA, True, "24", "2"), trigger_order(False, "20", "2", "23", "sl")],
        "grouping": "normalTpsl",
    }
    parent, child = statuses(await client.action(action))
    assert child == "waitingForFill"
    oid = parent["resting"]["oid"]
    await client.action({"type": "cancel", "cancels": [{"a": AAA, "o": oid}]})
    await update_for(client, oid, "canceled")
    history = await client.info({"type": "historicalOrders", "user": client.address})
    children = [h for h in history if h["order"]["isTrigger"]]
    assert [h["status"] for h in children] == ["canceled"]
    await update_for(client, children[0]["order"]["oid"], "canceled")
    move_mark(sim, "24")  # would have filled the parent: nothing comes back
    assert await front(client) == []


async def test_tpsl_whose_trigger_is_already_reached_is_invalid(
    sim: SimHarness, client: DocClient
) -> None:
    await open_long(sim, client, "2")
    action = {
        "type": "order",
        "orders": [trigger_order(False, "20", "2", "26", "sl")],  # a stop above the mark
        "grouping": "positionTpsl",
    }
    [status] = statuses(await client.action(action))
    assert status == {"error": f"Invalid TP/SL price. asset={AAA}"}
    assert await front(client) == []


async def test_tpsl_groupings_refuse_non_reduce_only_orders(
    sim: SimHarness, client: DocClient
) -> None:
    await open_long(sim, client, "2")
    action = {
        "type": "order",
        "orders": [trigger_order(False, "20", "2", "24", "sl", reduce_only=False)],
        "grouping": "positionTpsl",
    }
    answer = await client.action(action)
    assert answer["status"] == "err" and "reduce-only" in answer["response"]
    assert await front(client) == []


async def test_fast_cancel_is_refused_for_a_trigger_order(
    sim: SimHarness, client: DocClient
) -> None:
    await open_long(sim, client, "2")
    [status] = statuses(await client.order(trigger_order(False, "20", "2", "24", "sl")))
    oid = status["resting"]["oid"]
    fast = {"type": "cancel", "cancels": [{"a": AAA, "o": oid}], "f": True}
    [refused] = statuses(await client.action(fast))
    assert "error" in refused and "trigger" in refused["error"]
    assert [o["oid"] for o in await front(client)] == [oid]
    plain = {"type": "cancel", "cancels": [{"a": AAA, "o": oid}]}
    assert statuses(await client.action(plain)) == ["success"]
    await update_for(client, oid, "canceled")
    assert await front(client) == []


async def test_trigger_order_checks_its_trigger_price_tick(client: DocClient) -> None:
    [status] = statuses(await client.order(trigger_order(False, "20", "2", "24.0001", "sl")))
    assert status == {"error": f"Price must be divisible by tick size. asset={AAA}"}


async def test_bad_trigger_wire_is_a_schema_error(client: DocClient) -> None:
    wire = trigger_order(False, "20", "2", "24", "stop")
    text = await client.unparsable(client.signed_payload({
        "type": "order", "orders": [wire], "grouping": "na"}))  # fmt: skip
    assert "tpsl" in text


async def test_the_official_sdk_places_tpsl_and_updates_isolated_margin(
    sim: SimHarness,
) -> None:
    """The unmodified SDK over HTTP: a stop order, a positionTpsl pair, isolated margin."""
    import asyncio

    import eth_account
    from hyperliquid.exchange import Exchange as SdkExchange

    move_mark(sim, "25")
    wallet = eth_account.Account.from_key(sim.account[1])
    base = sim.http_url

    def session() -> dict[str, Any]:
        ex = SdkExchange(wallet, base, perp_dexs=["", "xyz"])
        out: dict[str, Any] = {}
        out["open"] = ex.order("xyz:AAA", True, 2.0, 25.1, {"limit": {"tif": "Ioc"}})
        stop = {"trigger": {"triggerPx": 24.0, "isMarket": True, "tpsl": "sl"}}
        out["stop"] = ex.order("xyz:AAA", False, 2.0, 20.0, stop, reduce_only=True)
        tp = {"trigger": {"triggerPx": 27.0, "isMarket": False, "tpsl": "tp"}}
        pair = [
            {"coin": "xyz:AAA", "is_buy": False, "sz": 2.0, "limit_px": 27.0,
             "order_type": tp, "reduce_only": True},
            {"coin": "xyz:AAA", "is_buy": False, "sz": 2.0, "limit_px": 20.0,
             "order_type": stop, "reduce_only": True},
        ]  # fmt: skip
        out["pair"] = ex.bulk_orders(pair, grouping="positionTpsl")
        out["margin"] = ex.update_isolated_margin(5.0, "xyz:AAA")
        return out

    out = await asyncio.to_thread(session)
    assert "filled" in statuses(out["open"])[0]
    assert "resting" in statuses(out["stop"])[0]
    assert statuses(out["pair"]) == ["waitingForTrigger", "waitingForTrigger"]
    assert out["margin"] == {"status": "ok", "response": {"type": "default"}}
    async with await DocClient.connect(sim.ws_url) as reader:
        orders = await reader.info(
            {"type": "frontendOpenOrders", "user": sim.account[0], "dex": "xyz"}
        )
    assert sorted(o["orderType"] for o in orders) == [
        "Stop Market",
        "Stop Market",
        "Take Profit Limit",
    ]


async def test_modify_replaces_a_trigger_order(sim: SimHarness, client: DocClient) -> None:
    await open_long(sim, client, "2")
    [status] = statuses(await client.order(trigger_order(False, "20", "2", "24", "sl")))
    oid = status["resting"]["oid"]
    modify = {"type": "modify", "oid": oid, "order": trigger_order(False, "21", "2", "23", "sl")}
    assert (await client.action(modify))["status"] == "ok"
    await update_for(client, oid, "canceled")
    [listed] = await front(client)
    assert listed["oid"] != oid and listed["triggerPx"] == "23" and listed["limitPx"] == "21"
    move_mark(sim, "23.5")  # past the old trigger, short of the new one
    assert await position(client) == "2"


async def test_a_halt_cancels_waiting_triggers(sim: SimHarness, client: DocClient) -> None:
    await open_long(sim, client, "2")
    [status] = statuses(await client.order(trigger_order(False, "20", "2", "24", "sl")))
    oid = status["resting"]["oid"]
    sim.exchange.halt_market("xyz:AAA")
    await update_for(client, oid, "canceled")
    assert await front(client) == []
