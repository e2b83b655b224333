"""User streams over the socket, with orders signed by the docs-only client; and the faults
that need real orders (reject next N, halt a market)."""

from __future__ import annotations

from decimal import Decimal

from tests.sim.doc_client import AAA, DocClient, limit_order, seed_book, statuses


async def _trader(sim) -> DocClient:
    return await DocClient.connect(sim.ws_url, sim.account[1])


async def test_user_fills_snapshot_first_then_streaming_without_the_field(sim):
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "100")], [("25.1", "100")])
    user = sim.account[0]
    async with await _trader(sim) as trader:
        # A fill before subscribing: it must be in the snapshot.
        assert (
            "filled" in statuses(await trader.order(limit_order(AAA, True, "25.1", "1", "Ioc")))[0]
        )
        ack = await trader.subscribe({"type": "userFills", "user": user})
        assert ack["channel"] == "subscriptionResponse"
        snapshot = await trader.wait_for(lambda f: f["channel"] == "userFills")
        assert snapshot["data"]["isSnapshot"] is True
        assert [f["sz"] for f in snapshot["data"]["fills"]] == ["1"]
        await trader.subscribe({"type": "orderUpdates", "user": user})
        await trader.subscribe({"type": "userEvents", "user": user})

        assert (
            "filled" in statuses(await trader.order(limit_order(AAA, True, "25.1", "2", "Ioc")))[0]
        )
        streamed = await trader.wait_for(lambda f: f["channel"] == "userFills")
        assert "isSnapshot" not in streamed["data"]
        assert streamed["data"]["user"] == user
        assert [(f["coin"], f["sz"], f["side"]) for f in streamed["data"]["fills"]] == [
            ("xyz:AAA", "2", "B")
        ]
        event = await trader.wait_for(lambda f: f["channel"] == "user")
        assert event["data"]["fills"] == streamed["data"]["fills"]

        resting = statuses(await trader.order(limit_order(AAA, True, "24", "1", "Gtc")))[0]
        oid = resting["resting"]["oid"]
        update = await trader.wait_for(
            lambda f: f["channel"] == "orderUpdates" and f["data"][0]["order"]["oid"] == oid
        )
        assert isinstance(update["data"], list)
        assert update["data"][0]["status"] == "open"


async def test_user_streams_are_per_user(sim):
    other_address, _ = sim.new_account(Decimal(1000), every_dex=True)
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "100")], [("25.1", "100")])
    async with await _trader(sim) as trader, await DocClient.connect(sim.ws_url) as watcher:
        await watcher.subscribe({"type": "orderUpdates", "user": other_address})
        await trader.order(limit_order(AAA, True, "24", "1", "Gtc"))
        await watcher.info({"type": "meta"})  # a round trip: anything routed to it is here now
        assert watcher.seen(lambda f: f["channel"] == "orderUpdates") == []


async def test_reject_next_orders(make_sim):
    sim = await make_sim(faults="reject_next=2")
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "100")], [("25.1", "100")])
    async with await _trader(sim) as trader:
        for _ in range(2):
            status = statuses(await trader.order(limit_order(AAA, True, "24", "1", "Gtc")))[0]
            assert "error" in status
        status = statuses(await trader.order(limit_order(AAA, True, "24", "1", "Gtc")))[0]
        assert "resting" in status
        sim.faults.reject_next_orders(1, "Order rejected: try later.")
        status = statuses(await trader.order(limit_order(AAA, True, "24", "1", "Gtc")))[0]
        assert status == {"error": "Order rejected: try later."}
    assert len(sim.exchange.open_orders(sim.account[0])) == 1


async def test_halt_cancels_orders_and_settles_positions(sim):
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "100")], [("25.1", "100")])
    user = sim.account[0]
    async with await _trader(sim) as trader:
        await trader.subscribe({"type": "orderUpdates", "user": user})
        await trader.order(limit_order(AAA, True, "25.1", "3", "Ioc"))
        resting = statuses(await trader.order(limit_order(AAA, True, "24", "1", "Gtc")))[0]
        assert sim.exchange.positions(user).get("xyz:AAA") == Decimal(3)
        sim.faults.halt("xyz:AAA")
        oid = resting["resting"]["oid"]
        cancel = await trader.wait_for(
            lambda f: (
                f["channel"] == "orderUpdates"
                and any(u["order"]["oid"] == oid and u["status"] != "open" for u in f["data"])
            )
        )
        assert cancel["data"][0]["status"].endswith("anceled")
        assert sim.exchange.open_orders(user) == []
        assert not sim.exchange.positions(user).get("xyz:AAA")
        status = statuses(await trader.order(limit_order(AAA, True, "24", "1", "Gtc")))[0]
        assert "error" in status
