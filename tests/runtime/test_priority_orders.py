"""Priority fees and fast cancels on the wire, through the dispatcher against the exchange
core: an entry's rate goes where "na" goes, the exchange accepts it and charges the staking
balance; exits pay their own rate; the bot's own cancels are fast and an adopted order's
cancel is not (it may be a trigger order, which a fast cancel may not touch)."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from pathlib import Path

from hip3.events import Signal
from hip3.journal import Journal
from hip3.journal.report import load_summary
from tests.runtime.fakes import MARKETS, Harness, order_wires

STAKED_HYPE = Decimal(1_000)


def ready(**overrides) -> Harness:
    h = Harness(**overrides)
    h.exchange.staking.fund(h.user, STAKED_HYPE)
    h.start()
    h.bring_up()
    assert h.d.ready.trading(), h.d.ready.describe()
    return h


def actions(h: Harness, kind: str) -> list[dict]:
    return [
        m["request"]["payload"]["action"]
        for m in h.transport.sent
        if m.get("method") == "post"
        and m["request"]["type"] == "action"
        and m["request"]["payload"]["action"]["type"] == kind
    ]


def filled_notional(h: Harness, cloid: str) -> Decimal:
    return sum(
        (Decimal(f["px"]) * Decimal(f["sz"]) for f in h.true_fills() if f.get("cloid") == cloid),
        Decimal(0),
    )


def hype_due(h: Harness, rate: int, notional: Decimal) -> Decimal:
    """What the exchange takes: rate x notional in USD, at the HYPE price, to 10^-8 HYPE."""
    usd = notional * rate / Decimal(100_000_000)
    return (usd / h.exchange.staking.hype_usd).quantize(Decimal("1E-8"), rounding=ROUND_CEILING)


def enter(h: Harness, priority: int, coin: str = "xyz:AAA") -> str:
    """A signal for a $20 entry with this priority rate; returns the cloid sent."""
    px = MARKETS[coin].oracle
    h.market_moves(coin, dislocated="buy")
    h.deliver_lanes("activeAssetCtx:" + coin)
    size = Decimal(20) / px
    h.d.handle(
        Signal(coin=coin, is_buy=True, size=size, ref_px=px, edge_bps=30.0, priority=priority)
    )
    assert h.d.executor.last_outcome == "sent", h.d.executor.last_outcome
    return order_wires(h.transport.sent[-1])[0]["c"]


def test_an_entry_with_priority_puts_the_rate_where_na_goes_and_pays_on_its_fill():
    h = ready()
    cloid = enter(h, 80_000)
    action = actions(h, "order")[-1]
    assert list(action) == ["type", "orders", "grouping"]
    assert action["grouping"] == {"p": 80_000}
    assert h.d.orders.info[cloid].priority == 80_000
    h.settle()
    notional = filled_notional(h, cloid)
    assert notional > 0 and h.bot_positions() == {"xyz:AAA": Decimal("0.2")}
    assert STAKED_HYPE - h.exchange.staking.balance(h.user) == hype_due(h, 80_000, notional)


def test_an_entry_without_priority_keeps_na_and_pays_nothing():
    h = ready()
    cloid = enter(h, 0)
    assert actions(h, "order")[-1]["grouping"] == "na"
    h.settle()
    assert filled_notional(h, cloid) > 0
    assert h.exchange.staking.balance(h.user) == STAKED_HYPE


def test_exits_pay_the_exit_rate_and_entries_their_own():
    h = ready(priority={"exit_bps": 2.0})
    enter(h, 0)
    h.settle()
    h.operator("hardstop")  # cancel (nothing), flatten the long, verify
    for _ in range(5):
        h.settle()
        if h.d.hardstop.state == "halted":
            break
        h.tick(1_000)
    assert h.d.hardstop.state == "halted" and not h.true_positions()
    entry, flatten = actions(h, "order")
    assert entry["grouping"] == "na"
    assert flatten["orders"][0]["r"] is True and flatten["grouping"] == {"p": 20_000}
    cloid = flatten["orders"][0]["c"]
    due = hype_due(h, 20_000, filled_notional(h, cloid))
    assert due > 0 and STAKED_HYPE - h.exchange.staking.balance(h.user) == due


def test_the_bots_own_cancels_are_fast_and_an_adopted_orders_cancel_is_not():
    h = ready()
    # another client rests an order on the account: the bot adopts it
    answer = h.other_client_order("xyz:BBB", is_buy=True, resting=True, sz="1")
    oid = answer["response"]["data"]["statuses"][0]["resting"]["oid"]
    h.settle()
    # an entry whose answer has not come back: known by its cloid only
    cloid = enter(h, 0)
    h.operator("hardstop")
    cancels, by_cloid = actions(h, "cancel"), actions(h, "cancelByCloid")
    asset_bbb, asset_aaa = MARKETS["xyz:BBB"].asset, MARKETS["xyz:AAA"].asset
    assert cancels == [{"type": "cancel", "cancels": [{"a": asset_bbb, "o": oid}]}]
    assert by_cloid == [
        {"type": "cancelByCloid", "cancels": [{"asset": asset_aaa, "cloid": cloid}], "f": True}
    ]
    for _ in range(5):
        h.settle()
        if h.d.hardstop.state == "halted":
            break
        h.tick(1_000)
    assert h.d.hardstop.state == "halted"
    assert not h.true_open_orders() and not h.true_positions()


def test_the_journal_records_the_rate_and_the_summary_what_it_cost(tmp_path: Path):
    h = ready()
    path = tmp_path / "j.sqlite"
    journal = Journal(path, mode="trading", network="sim")
    h.d.executor.journal = journal
    h.d.recorder.journal = journal
    paid = enter(h, 80_000)
    h.settle()
    unpaid = enter(h, 0, coin="xyz:BBB")
    h.settle()
    journal.close()
    summary = load_summary(path)
    pri = summary.priority
    assert (pri.with_priority.entry_orders, pri.with_priority.entry_orders_filled) == (1, 1)
    assert (pri.without.entry_orders, pri.without.entry_orders_filled) == (1, 1)
    assert pri.with_priority.mean_rate_bps == Decimal(8)
    expected = filled_notional(h, paid) * Decimal("0.0008")
    assert pri.with_priority.paid_usd == expected and pri.exits_paid_usd == 0
    assert filled_notional(h, unpaid) > 0
    # and what the exchange took, at its HYPE price, is the same money
    taken = STAKED_HYPE - h.exchange.staking.balance(h.user)
    assert taken == hype_due(h, 80_000, filled_notional(h, paid))
