"""The strategy's optional books follow the markets: a delisted market's book is not
subscribed again by a later connection."""

from __future__ import annotations

from tests.runtime.fakes import COINS, Harness


def _subscribed(h: Harness, typ: str, since: int) -> list[str]:
    return [
        m["subscription"]["coin"]
        for m in h.transport.sent[since:]
        if m.get("method") == "subscribe" and m["subscription"]["type"] == typ
    ]


def test_a_delisted_markets_book_is_not_subscribed_by_the_next_connection() -> None:
    h = Harness(strategy={"book": True})
    h.bring_up()
    assert sorted(_subscribed(h, "l2Book", 0)) == sorted(COINS)
    gone = COINS[1]
    h.exchange.halt_market(gone)  # meta lists it delisted from now on
    h.drop_socket()
    h.tick(2_000)
    h.open_socket()
    h.settle()
    assert gone in h.d.ready.retired, "the reconnect's discovery saw the delisting"
    h.drop_socket()  # the epoch after the one that learned of it subscribes from the start
    h.tick(2_000)
    before = len(h.transport.sent)
    h.open_socket()
    h.settle()
    assert gone not in _subscribed(h, "bbo", before)
    assert gone not in _subscribed(h, "l2Book", before)
    assert sorted(_subscribed(h, "l2Book", before)) == sorted(c for c in COINS if c != gone)
