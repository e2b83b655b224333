"""Defects on the money path read from the code, each replayed through the dispatcher against the
simulator's exchange core (tests/runtime/fakes.py): a fill of an order the bot did not send,
an order adopted from the exchange's list, rebinding a live order machine, and an order whose
outcome became unknown."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hip3.machines.order import OrderMachine

from tests.runtime.fakes import MAKER, Harness, order_wires


def _pending(h: Harness, kind: str) -> bool:
    return any(q.kind == kind for q in h.d.wire.posts.pending())


def test_a_fill_of_an_order_the_bot_did_not_send_reads_positions_before_any_entry():
    h = Harness()
    h.bring_up()
    answer = h.other_client_order("xyz:AAA", is_buy=True, resting=False, sz="1")
    assert "filled" in answer["response"]["data"]["statuses"][0], answer
    h.deliver_lane("userFills")  # the fill reaches the bot; the order is not one of its own
    assert _pending(h, "info:positions_again:xyz"), h.d.counters
    sent = sum(len(order_wires(m)) for m in h.transport.sent)
    h.market_moves("xyz:BBB", dislocated="buy")
    h.deliver_lanes("activeAssetCtx:xyz:BBB")
    h.deliver_lanes("bbo:xyz:BBB")
    assert h.d.executor.blocked["positions_unsettled"] >= 1
    assert sum(len(order_wires(m)) for m in h.transport.sent) == sent
    h.settle()  # the exchange's answer settles the position
    assert not h.d.positions.needs_state
    assert h.bot_positions() == h.true_positions() == {"xyz:AAA": Decimal(1)}
    h.entry("xyz:BBB")  # and entries go out again


def test_an_adopted_order_takes_the_exchanges_sizes_and_no_post_of_ours():
    h = Harness()
    h.bring_up()
    answer = h.other_client_order("xyz:AAA", is_buy=True, resting=True, sz="2")
    oid = answer["response"]["data"]["statuses"][0]["resting"]["oid"]
    # the maker sells 1 into it: the order rests with 1 of 2 left
    h.exchange.replace_maker_quotes("xyz:AAA", MAKER, [], [(Decimal(80), Decimal(1))])
    h.delivery.publish_market_data()
    h.settle()
    key = h.d.orders.cloid_for(oid, None)
    assert key is not None, h.d.counters
    m = h.d.orders.machines[key]
    assert (m.state, m.size, m.filled_sz) == ("partially_filled", Decimal(2), Decimal(1))
    assert m.post_id is None and m.sent_epoch is None  # nothing of ours was ever posted


def test_an_open_order_without_a_size_is_not_adopted_with_a_made_up_one():
    h = Harness()
    h.bring_up()
    row = {"coin": "xyz:AAA", "limitPx": "80", "oid": 4242, "side": "B", "timestamp": 1}
    h.d.reconciler.reconcile_open_orders([row], "xyz")
    assert h.d.orders.cloid_for(4242, None) is None
    assert h.d.counters["adopt_refused_no_size"] == 1


def test_a_machine_built_for_an_order_cannot_be_rebound_once_sent():
    m = OrderMachine(
        cloid="0x" + "01" * 16, market="xyz:AAA", is_buy=True, size="1", reduce_only=False
    )
    m.send("sent", post_id=1, epoch=1)
    with pytest.raises(ValueError, match="rebind"):
        m.bind(cloid="0x" + "02" * 16, market="xyz:BBB", is_buy=False, size="5", reduce_only=False)
    assert (m.cloid, m.market, m.size) == ("0x" + "01" * 16, "xyz:AAA", Decimal(1))


def test_an_order_gone_unknown_is_asked_about_at_once_not_at_the_next_tick():
    h = Harness()
    h.bring_up()
    cloid = h.entry()
    h.write_failed(h.delivery.requests[-1]["id"])  # the bot cannot know whether it went out
    assert h.d.orders.machines[cloid].state == "unknown"
    assert _pending(h, f"info:orderStatus:{cloid}")
    h.settle()
    assert h.d.orders.was_terminal(cloid) is not None


def test_an_order_adopted_before_discovery_answered_is_cancelled_by_the_hardstop():
    # found by the property test: the open-orders answer came before the metadata, the order
    # was adopted without its asset id, and every HardStop attempt skipped cancelling it
    h = Harness()
    h.other_client_order("xyz:AAA", is_buy=False, resting=True, sz="1")
    h.start()
    h.open_socket()
    while h.acks():
        h.ack(0)
    (listing,) = [p for p in h.d.wire.posts.pending() if p.kind == "info:open_orders:xyz"]
    while h.delivery.requests:
        h.execute()
    h.deliver_lane(f"post:{listing.post_id}")  # before perpDexs and meta
    assert h.d.counters["adopted_orders"] == 1
    h.settle()
    h.operator("hardstop")
    for _ in range(10):
        h.settle()
        if h.d.hardstop.state == "halted":
            break
        h.tick(1_000)
    assert h.d.hardstop.state == "halted", (h.d.hardstop.state, h.d.hardstop.attempt)
    assert h.true_open_orders() == []


def test_a_rejection_streamed_before_its_post_answer_is_still_classified_with_its_order(caplog):
    # Found by the dispatcher property test: the orderUpdates stream carried the rejection
    # first and retired the order, so the post answer's rejection no longer knew the order's
    # market or side: it was logged and journaled "on ?" and a reduce-only refusal on a flat
    # position could no longer be told benign.
    h = Harness()
    h.bring_up()
    cloid = h.entry("xyz:AAA")
    h.reject_next_order("Insufficient margin to place order.")
    post_id = h.execute()
    h.deliver_lane("orderUpdates")  # the stream first ...
    assert h.d.orders.was_terminal(cloid) == "rejected"
    caplog.clear()
    h.deliver_lane(f"post:{post_id}")  # ... then the post's own answer
    lines = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert lines == [f"order {cloid} on xyz:AAA rejected: Insufficient margin to place order."]
    assert h.d.counters["rejections"] == 1


def test_an_answer_that_contradicts_its_order_sends_it_to_reconciliation_not_to_the_hardstop():
    # A well-formed answer whose numbers cannot belong to the order (filled more than was
    # asked) used to raise inside the order machine: an internal error, a latched HardStop
    # and a flatten of everything. It is a fact to check with the exchange instead.
    h = Harness()
    h.bring_up()
    cloid = h.entry("xyz:AAA")
    post = h.delivery.requests.pop(0)  # the exchange never sees it; a forged answer arrives
    forged = {
        "channel": "post",
        "data": {
            "id": post["id"],
            "response": {
                "type": "action",
                "payload": {
                    "status": "ok",
                    "response": {
                        "type": "order",
                        "data": {
                            "statuses": [{"filled": {"totalSz": "999", "avgPx": "25", "oid": 7}}]
                        },
                    },
                },
            },
        },
    }
    h.frame(json.dumps(forged))
    assert h.d.counters["internal_errors"] == 0
    assert h.d.hardstop.is_armed
    assert h.d.orders.inconsistent_facts == 1
    assert h.d.orders.is_live(cloid) and h.d.orders.machines[cloid].state == "unknown"
    h.settle()  # the exchange never had it: reconciliation settles the order
    assert not h.d.orders.is_live(cloid)
    assert h.bot_positions() == h.true_positions() == {}


def test_a_strangers_order_appearing_while_the_open_orders_read_is_out_is_adopted_too():
    # Found by the dispatcher property test: a second order of another client appeared after
    # the open-order read went out; the read's answer could not list it, and no read followed,
    # so the order rested on the exchange unknown to the bot (and to its cancel-all).
    h = Harness()
    h.bring_up()
    first = h.other_client_order("xyz:AAA", is_buy=True, resting=True, sz="1")
    h.deliver_lane("orderUpdates")
    assert _pending(h, "info:open_orders_again:xyz")
    h.execute()  # the exchange answers the read now: only the first order exists
    second = h.other_client_order("xyz:AAA", is_buy=True, resting=True, sz="1")
    h.deliver_lane("orderUpdates")
    h.settle()
    live = {m.oid for _i, m in h.d.orders.live_orders()}
    resting = {o["oid"] for o in h.true_open_orders()}
    assert len(resting) == 2, (first, second)
    assert resting <= live, f"resting on the exchange {resting}, known to the bot {live}"


def test_a_failed_read_of_a_strangers_order_is_asked_again_while_the_connection_lives():
    # Found by the dispatcher property test: the read's frame was never written, and nothing
    # asked again while the socket stayed up: the stranger's order rested unknown to the bot.
    h = Harness()
    h.bring_up()
    h.other_client_order("xyz:BBB", is_buy=True, resting=True, sz="1")
    h.deliver_lane("orderUpdates")
    post = h.delivery.requests.pop(0)  # never reaches the exchange
    h.write_failed(post["id"])
    h.tick(1)
    h.settle()
    live = {m.oid for _i, m in h.d.orders.live_orders()}
    resting = {o["oid"] for o in h.true_open_orders()}
    assert resting and resting <= live, (
        f"resting on the exchange {resting}, known to the bot {live}"
    )
