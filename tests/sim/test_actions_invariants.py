"""Property: whatever orders arrive, the book stays uncrossed and positions net to zero.

Drives the core directly (the socket adds nothing to these invariants and would be slow
under hypothesis); the socket-level tests cover the same actions one by one.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from hip3.sim.exchange import Exchange
from hip3.sim.universe import Universe
from tests.sim.doc_client import AAA, DocClient, limit_order, seed_book

NOW = 1_800_000_000_000

order_steps = st.lists(
    st.tuples(
        st.integers(0, 1),  # which user
        st.booleans(),  # buy?
        st.integers(240, 260),  # price in tenths: 24.0 .. 26.0
        st.integers(1, 40),  # size (whole units)
        st.sampled_from(["Gtc", "Ioc", "Alo"]),
        st.booleans(),  # reduce-only?
        st.booleans(),  # cancel the user's oldest open order afterwards?
    ),
    min_size=1,
    max_size=25,
)


@given(steps=order_steps)
def test_book_uncrossed_positions_net_zero_and_cash_conserved(steps: list[tuple]) -> None:
    events: list[object] = []
    exchange = Exchange(Universe.default(), clock_ms=lambda: NOW, emit=events.append)
    seed_book(exchange, "xyz:AAA", [("24.5", "30")], [("25.5", "30")])
    users = [exchange.new_account(Decimal(5000), every_dex=True) for _ in range(2)]
    clients = [DocClient(None, key) for _, key in users]
    nonce = NOW
    for who, is_buy, tenths, size, tif, reduce_only, cancel in steps:
        nonce += 1
        px = str(Decimal(tenths) / 10)
        order = limit_order(AAA, is_buy, px, str(size), tif, reduce_only=reduce_only)
        action = {"type": "order", "orders": [order], "grouping": "na"}
        response = exchange.action(clients[who].signed_payload(action, nonce=nonce))
        assert response["status"] == "ok", response
        assert len(response["response"]["data"]["statuses"]) == 1
        if cancel and exchange.open_orders(users[who][0]):
            oldest = min(o["oid"] for o in exchange.open_orders(users[who][0]))
            nonce += 1
            cancel_action = {"type": "cancel", "cancels": [{"a": AAA, "o": oldest}]}
            result = exchange.action(clients[who].signed_payload(cancel_action, nonce=nonce))
            assert result["response"]["data"]["statuses"] == ["success"]

        book = exchange.books["xyz:AAA"]
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is None or ask is None or bid < ask
        for side in (book.bids, book.asks):
            for level in side.values():
                assert level.total == sum(o.sz for o in level.orders.values()) > 0

    net = sum((account.position("xyz:AAA") for account in exchange.accounts.values()), Decimal(0))
    assert net == 0
    for address, _ in users:
        reported = sum((Decimal(f["fee"]) for f in exchange.user_fills(address)), Decimal(0))
        assert reported == exchange.accounts[address].fees_paid  # every charge was reported
    # Cash is conserved: balances plus open PnL at any common price plus all fees paid equal
    # what was deposited (positions net to zero, so the price does not matter).
    price = Decimal(25)
    total = Decimal(0)
    for account in exchange.accounts.values():
        total += account.balance("xyz") + account.fees_paid
        for position in account.positions.values():
            total += position.szi * (price - position.entry_px)
    assert abs(total - 2 * Decimal(5000)) < Decimal("0.00001")
    # Each user's open orders are exactly the user's orders on the book.
    for address, _ in users:
        on_book = {o.oid for o in exchange.books["xyz:AAA"].orders_of(address)}
        assert on_book == {o["oid"] for o in exchange.open_orders(address)}
