"""The fills of a userFills snapshot (or of the userFills info answer) are applied in the order
the exchange made them, also when several share one millisecond (one block).

The exchange lists them newest first. A list whose first and last fill share a millisecond
used to be applied as it stood, newest first: a round trip inside one block (another client
of the account sells 1, the bot's flatten buys it back) left the bot tracking a short the
exchange never held, reported as a divergence once the exchange's state corrected it.
"""

from __future__ import annotations

import json
from decimal import Decimal

import msgspec

from hip3.execution.orders import OrderRegistry
from hip3.execution.positions import PositionTracker
from hip3.protocol import frames as F
from hip3.runtime.order_flow import Fills, oldest_first
from hip3.runtime.recorder import Recorder
from tests.runtime.fakes import Harness

COIN = "xyz:BBB"
T0 = 1_760_000_000_000


def wire_fill(tid: int, side: str, start: str, *, t: int, sz: str = "1", coin: str = COIN):
    return {
        "coin": coin,
        "px": "100",
        "sz": sz,
        "side": side,
        "time": t,
        "startPosition": start,
        "dir": "Open Short" if side == "A" else "Close Short",
        "closedPnl": "0",
        "hash": "0x" + "00" * 32,
        "oid": 1_000 + tid,
        "crossed": True,
        "fee": "0.01",
        "tid": tid,
        "feeToken": "USDC",
    }


def fills_of(rows: list[dict]) -> list[F.WsFill]:
    return msgspec.convert(rows, list[F.WsFill])


def tracker_and_fills() -> tuple[PositionTracker, Fills]:
    positions = PositionTracker(session_start_ms=T0)
    positions.reconcile({}, {COIN}, request_key="first")  # the session's first look: flat
    fills = Fills(
        orders=OrderRegistry([]), positions=positions, recorder=Recorder(None, observation=False)
    )
    return positions, fills


# the other client's sale (0 -> -1), then the flatten buying it back (-1 -> 0), one block
SALE = wire_fill(1, "A", "0", t=T0 + 10)
BUYBACK = wire_fill(2, "B", "-1", t=T0 + 10)


def test_a_round_trip_in_one_millisecond_listed_newest_first_leaves_the_bot_flat():
    positions, fills = tracker_and_fills()
    fills.apply(fills_of([BUYBACK, SALE]), snapshot=True)
    assert positions.size(COIN) == 0
    positions.state_requested("again")
    positions.reconcile({}, {COIN}, request_key="again")  # the exchange: flat
    assert positions.divergence_report() == []
    assert positions.fills_applied == 2


def test_fills_of_one_millisecond_follow_their_start_positions_in_either_list_order():
    # 0 -> -1 -> -3: whichever way round the list comes, the sale of 2 came second
    first = wire_fill(1, "A", "0", t=T0 + 10)
    second = wire_fill(2, "A", "-1", t=T0 + 10, sz="2")
    for rows in ([second, first], [first, second]):
        applied = oldest_first(fills_of(rows))
        assert [f.tid for f in applied] == [1, 2]
        positions, fills = tracker_and_fills()
        fills.apply(fills_of(rows), snapshot=True)
        assert positions.size(COIN) == -3
        assert positions.divergence_report() == []


def test_fills_of_different_milliseconds_are_applied_oldest_first_from_either_order():
    older = wire_fill(1, "A", "0", t=T0 + 10)
    same_ms_other_coin = wire_fill(3, "B", "0", t=T0 + 20, coin="xyz:AAA")
    newer = wire_fill(2, "B", "-1", t=T0 + 20)
    for rows in ([newer, same_ms_other_coin, older], [older, same_ms_other_coin, newer]):
        assert oldest_first(fills_of(rows))[0].tid == 1
        positions, fills = tracker_and_fills()
        fills.apply(fills_of(rows), snapshot=True)
        assert positions.size(COIN) == 0 and positions.size("xyz:AAA") == 1


def test_a_snapshot_round_trip_in_one_block_agrees_with_the_exchange_after_reconciliation():
    h = Harness()
    h.bring_up()
    t = h.clock.wall_ms()
    rows = [wire_fill(2, "B", "-1", t=t), wire_fill(1, "A", "0", t=t)]  # newest first
    h.frame(
        json.dumps(
            {"channel": "userFills", "data": {"isSnapshot": True, "user": h.user, "fills": rows}}
        )
    )
    h.settle()  # the fills were of orders the bot did not place: it reads the positions again
    assert not h.d.positions.needs_state
    assert h.bot_positions() == h.true_positions() == {}
    assert h.d.positions.divergence_report() == []
    assert h.d.positions.fills_applied == 2
    assert h.d.positions.realized_net_of_fees() == Decimal("-0.02")
