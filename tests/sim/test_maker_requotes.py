"""A simulated maker's re-quote, seen through the socket as an outside client sees it: a quote
placed through a client's resting order fills that order at its own price (the client is the
maker), the client's streams carry the fill, and every quote takes an order id, including one
that filled at once and never rested."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from hip3.sim.harness import SimHarness
from hip3.sim.ledger import FIRST_OID
from tests.sim.doc_client import AAA, MAKER, DocClient, limit_order, seed_book, statuses


async def test_a_requote_through_a_resting_order_fills_it_and_each_quote_takes_an_id(
    make_sim: Callable[..., Awaitable[SimHarness]],
) -> None:
    sim = await make_sim(seed=5)
    user, key = sim.account
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "100")], [("25.1", "100")])  # 2 ids
    async with await DocClient.connect(sim.ws_url, key) as client:
        for kind in ("orderUpdates", "userFills"):
            await client.subscribe({"type": kind, "user": user})
        resting = statuses(await client.order(limit_order(AAA, True, "25", "1")))[0]
        assert resting == {"resting": {"oid": FIRST_OID + 2}}

        # The new best ask sits on the client's bid: it trades there for the bid's size.
        seed_book(sim.exchange, "xyz:AAA", [("24.8", "100")], [("25", "1"), ("25.2", "100")])
        fills = await client.wait_for(
            lambda f: f["channel"] == "userFills" and not f["data"].get("isSnapshot")
        )
        [fill] = fills["data"]["fills"]
        assert (fill["px"], fill["sz"], fill["side"], fill["oid"]) == (
            "25",
            "1",
            "B",
            resting["resting"]["oid"],
        )
        assert fill["crossed"] is False  # the resting client order was the maker
        update = await client.wait_for(
            lambda f: (
                f["channel"] == "orderUpdates" and any(u["status"] == "filled" for u in f["data"])
            )
        )
        assert [u["order"]["oid"] for u in update["data"]] == [FIRST_OID + 2]

        book = await client.info({"type": "l2Book", "coin": "xyz:AAA"})
        bids, asks = book["levels"]
        assert [(lv["px"], lv["sz"]) for lv in bids] == [("24.8", "100")]
        assert [(lv["px"], lv["sz"]) for lv in asks] == [("25.2", "100")]  # the 25 ask is gone

        # The re-quote's three quotes took three ids, the one that filled at once too.
        later = statuses(await client.order(limit_order(AAA, True, "24", "1")))[0]
        assert later == {"resting": {"oid": FIRST_OID + 6}}


async def test_order_ids_are_skipped_forward_only(
    make_sim: Callable[..., Awaitable[SimHarness]],
) -> None:
    sim = await make_sim()
    sim.exchange.skip_order_ids(3)
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "1")], [])
    assert [o["oid"] for o in sim.exchange.open_orders(MAKER)] == [FIRST_OID + 3]
    with pytest.raises(ValueError, match="cannot take back order ids, asked to skip -1"):
        sim.exchange.skip_order_ids(-1)
