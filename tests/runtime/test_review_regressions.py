"""One plain regression test per review item of the seed bot (design.md's table), each
replaying the sequence of events that broke the original, through the dispatcher and the
fake exchange of tests/runtime/fakes.py."""

from __future__ import annotations

import ast
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from hip3.protocol import frames as F
from hip3.runtime.dispatcher import Dispatcher, FatalError
from tests.runtime.fakes import FakeClock, FakeExchange, FakeTransport, Harness, make_config

ROOT = Path(__file__).resolve().parents[2]
# The bot's own code; hip3/sim is the exchange (its "halted" markets are the exchange's).
BOT_SOURCES = [
    p
    for base in ("hip3", "machines")
    for p in sorted((ROOT / base).rglob("*.py"))
    if "sim" not in p.relative_to(ROOT).parts[1:2]
]


def _entry(h: Harness, coin: str = "xyz:AAA") -> str:
    """A dislocated book makes the bot send one entry order; returns its cloid."""
    before = len(h.exchange.inbox)
    h.ctx(coin)
    h.bbo(coin, dislocated="buy")
    assert len(h.exchange.inbox) == before + 1, h.d.executor.blocked
    return h.exchange.inbox[-1]["request"]["payload"]["action"]["orders"][0]["c"]


def _deliver_channel(h: Harness, prefix: str) -> None:
    i = next(i for i in h.exchange.deliverable() if h.exchange.outbox[i].channel.startswith(prefix))
    h.deliver(i)


def _subscriptions(h: Harness) -> list[dict]:
    return [m["subscription"] for m in h.transport.sent if m.get("method") == "subscribe"]


# --- blocker 1: the loop was not wired -----------------------------------------------------


def test_blocker1_post_response_order_updates_and_fills_drive_orders_and_positions() -> None:
    h = Harness()
    h.bring_up()
    cloid = _entry(h)
    h.process("fill")
    # the seed dropped all three; here they arrive fill first, response last
    _deliver_channel(h, "userFills")
    assert h.d.positions.size("xyz:AAA") == Decimal("0.5")
    _deliver_channel(h, "orderUpdates")
    assert h.d.orders.was_terminal(cloid) == "filled"
    h.deliver_all()  # post response (late, recognised) and the userEvents copy of the fill
    assert h.d.orders.final_counts == {"filled": 1}
    assert h.d.positions.fills_applied == 1
    assert h.bot_positions() == h.true_positions() == {"xyz:AAA": Decimal("0.5")}


def test_blocker1_resting_then_cancelled_by_the_exchange() -> None:
    h = Harness()
    h.bring_up()
    cloid = _entry(h)
    h.process("rest")
    h.deliver_all()
    assert h.d.orders.machines[cloid].state == "resting"
    oid = h.exchange.orders[cloid].oid
    h.exchange.orders[cloid].status = "canceled"
    h.frame(
        json.dumps(
            {
                "channel": "orderUpdates",
                "data": [
                    {
                        "order": h.exchange.orders[cloid].basic() | {"oid": oid},
                        "status": "marginCanceled",
                        "statusTimestamp": 1,
                    }
                ],
            }
        )
    )
    assert h.d.orders.was_terminal(cloid) == "cancelled"


# --- blocker 2: no trading subscriptions --------------------------------------------------


def test_blocker2_trading_subscriptions_are_sent_in_every_epoch() -> None:
    h = Harness()
    h.bring_up()
    first = _subscriptions(h)
    h.drop_socket([])
    h.tick(61_000)
    h.bring_up()
    second = _subscriptions(h)[len(first) :]
    for subs in (first, second):
        user_subs = {s["type"]: s.get("user") for s in subs if "user" in s}
        assert user_subs == {t: h.user for t in ("orderUpdates", "userFills", "userEvents")}
    assert h.d.ready.trading()


def test_blocker2_trading_mode_without_a_user_address_fails_fast() -> None:
    clock = FakeClock()
    transport = FakeTransport(FakeExchange("0x" + "00" * 20, clock))
    with pytest.raises(FatalError, match=r"account\.user"):
        Dispatcher(make_config(), transport=transport, clock=clock, signer=object(), user=None)


# --- blocker 3: the drain deadlock ---------------------------------------------------------


def test_blocker3_ack_and_snapshot_arriving_during_resubscription_still_lead_to_ready() -> None:
    h = Harness()
    h.bring_up()
    h.drop_socket([])
    h.tick(61_000)
    h.open_socket()  # epoch 2: the bot writes every subscription at once
    ex = h.exchange
    # the seed's drain_and_wait swallowed exactly these: the orderUpdates ack and the
    # userFills snapshot arriving while the other subscriptions were still going out
    h.ack(next(i for i, (_e, s) in enumerate(ex.acks) if s["type"] == "orderUpdates"))
    _deliver_channel(h, "userFills")  # the snapshot, before its own ack
    h.bbo("xyz:AAA")  # market data before its ack
    h.ctx("xyz:BBB")
    while ex.acks:
        h.ack(len(ex.acks) - 1)  # the remaining acks in reverse order
    h.bbo("xyz:BBB")
    h.ctx("xyz:AAA")
    assert h.d.conn.state == "reconciling"
    h.settle()
    assert h.d.conn.state == "live"
    assert h.d.ready.trading(), h.d.readiness.missing()


def test_blocker3_an_old_epochs_ack_never_makes_the_new_one_ready() -> None:
    h = Harness()
    h.start()
    h.open_socket()
    old_acks = list(h.exchange.acks)
    h.drop_socket([])
    h.tick(61_000)
    h.open_socket()
    for epoch, sub in old_acks:  # late acks of epoch 1
        h.frame(
            json.dumps(
                {
                    "channel": "subscriptionResponse",
                    "data": {"method": "subscribe", "subscription": sub},
                }
            ),
            epoch,
        )
    assert h.d.conn.state == "subscribing"
    assert all(status == "pending" for status in h.d.readiness.keys.values())


# --- A: HardStop was incomplete ------------------------------------------------------------


def test_A_hardstop_cancels_flattens_verifies_and_stays_halted() -> None:
    h = Harness()
    h.bring_up()
    _entry(h, "xyz:AAA")
    h.settle("fill")  # a position on AAA
    resting = _entry(h, "xyz:BBB")
    h.settle("rest")  # a resting order on BBB
    assert h.exchange.open_orders() and h.true_positions()
    h.operator("hardstop")
    assert h.d.hardstop.state == "cancelling"
    h.settle("fill")  # the cancel, then the reduce-only flatten, then the verification
    h.tick(0)
    h.settle("fill")
    assert h.d.hardstop.state == "halted"
    assert h.exchange.is_flat()
    assert h.d.orders.was_terminal(resting) == "cancelled"
    flattens = [
        w
        for m in h.transport.sent
        for w in (m.get("request", {}).get("payload", {}).get("action", {}).get("orders") or [])
        if w["r"]
    ]
    assert len(flattens) == 1 and flattens[0]["b"] is False  # sells the long
    # stays halted: time passes, the book dislocates, the connection flaps
    sent_before = len(h.transport.sent)
    h.tick(120_000)
    h.bring_up()
    h.ctx("xyz:AAA")
    h.bbo("xyz:AAA", dislocated="buy")
    assert h.d.hardstop.state == "halted"
    assert not any(w for m in h.transport.sent[sent_before:] for w in _orders(m))
    h.operator("reset")
    assert h.d.hardstop.is_armed


def _orders(m: dict) -> list:
    return m.get("request", {}).get("payload", {}).get("action", {}).get("orders") or []


def test_A_operator_reset_is_refused_before_halted() -> None:
    h = Harness()
    h.bring_up()
    _entry(h)
    h.operator("hardstop")
    h.operator("reset")
    assert h.d.hardstop.state == "cancelling"
    assert h.d.counters["reset_refused"] == 1


# --- B: two HardStops ----------------------------------------------------------------------


def _classes_and_latches() -> tuple[list[str], list[str], list[str]]:
    stop_classes, latches, trips = [], [], []
    name = re.compile(r"hard_?stop|kill_?switch|emergency|halt|stop_?latch", re.I)
    for path in BOT_SOURCES:
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and name.search(node.name):
                has_behaviour = any(
                    isinstance(b, ast.FunctionDef) and not b.name.startswith("__")
                    for b in node.body
                )
                if has_behaviour:
                    stop_classes.append(f"{rel}:{node.name}")
            if isinstance(node, ast.FunctionDef) and node.name == "trip":
                trips.append(rel)
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value = node.value
                for t in targets:
                    ident = t.attr if isinstance(t, ast.Attribute) else getattr(t, "id", "")
                    if (
                        name.search(ident)
                        and isinstance(value, ast.Constant)
                        and value.value is True
                    ):
                        latches.append(f"{rel}:{ident}")
    return stop_classes, latches, trips


def test_B_exactly_one_hardstop_definition_in_the_code_base() -> None:
    stop_classes, latches, _trips = _classes_and_latches()
    assert stop_classes == ["machines/hardstop.py:HardStopMachine"]
    assert latches == [], f"boolean stop flags outside the HardStop machine: {latches}"


def test_B_a_risk_trip_and_the_executor_gate_share_the_one_hardstop() -> None:
    h = Harness()
    h.bring_up()
    d = h.d
    assert d.executor.hardstop is d.hardstop
    # the seed's risk-side stop latched without the executor noticing: 5 margin rejections
    for _ in range(d.cfg.risk.max_consecutive_rejections):
        _entry(h)
        h.settle("reject_margin")
    assert d.hardstop.state != "armed"
    assert "consecutive order rejections" in d.hardstop.reasons[0]
    sent = len(h.exchange.inbox) + len(h.exchange.processed)
    h.ctx("xyz:AAA")
    h.bbo("xyz:AAA", dislocated="buy")
    assert d.executor.blocked["hardstop"] >= 1
    assert len(h.exchange.inbox) + len(h.exchange.processed) == sent


# --- C: two READYs -------------------------------------------------------------------------


def test_C_one_ready_asked_by_the_executor_and_the_write_path() -> None:
    h = Harness()
    h.start()
    h.open_socket()
    d = h.d
    assert d.executor.ready is d.ready
    while h.exchange.acks:
        h.ack(0)
    # the seed's write path said READY on the first bbo of ANY market; here market BBB has
    # no data yet, so neither the executor nor the write path may send an entry
    h.ctx("xyz:AAA")
    h.bbo("xyz:AAA")
    h.settle()
    assert d.conn.state == "live"
    assert not d.ready.trading()
    h.bbo("xyz:AAA", dislocated="buy")
    assert d.executor.blocked["not_ready"] >= 1
    assert not any(_orders(m) for m in h.transport.sent)
    h.ctx("xyz:BBB")
    h.bbo("xyz:BBB")
    assert d.ready.trading() and d.ready.machine is d.readiness
    _entry(h)
    # after a reconnect the one READY follows the new epoch's machine
    h.drop_socket([])
    assert not d.ready.trading()
    h.tick(61_000)
    h.bring_up()
    assert d.ready.machine is d.readiness and d.readiness.epoch == h.epoch


def test_C_no_other_module_defines_readiness() -> None:
    defs = []
    for path in BOT_SOURCES:
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and re.fullmatch(
                r"(is_)?(ready|trading_ready|can_trade)", node.name
            ):
                defs.append(f"{rel}:{node.name}")
    assert set(defs) <= {"machines/readiness.py:trading_ready"}, defs


# --- D: userFills snapshot -----------------------------------------------------------------


def test_D_is_snapshot_is_parsed() -> None:
    snap = F.decode_frame(
        '{"channel":"userFills","data":{"isSnapshot":true,"user":"0x1","fills":[]}}'
    )
    stream = F.decode_frame('{"channel":"userFills","data":{"user":"0x1","fills":[]}}')
    assert snap.data.is_snapshot is True and stream.data.is_snapshot is False


def test_D_snapshot_fills_never_double_count() -> None:
    h = Harness()
    h.bring_up()
    _entry(h)
    h.settle("fill")  # streamed on userFills and userEvents, counted once
    assert h.d.positions.fills_applied == 1
    h.drop_socket([])
    h.tick(61_000)
    h.open_socket()
    # a streamed fill before the snapshot does not make userFills ready
    h.frame(
        json.dumps(
            {"channel": "userFills", "data": {"user": h.user, "fills": [h.exchange.fills[0]]}}
        )
    )
    assert h.d.readiness.keys["userFills"] == "pending"
    h.bring_up()  # the snapshot (overlapping the stream) and the reconciliation's userFills
    assert h.d.readiness.keys["userFills"] == "ready"
    assert h.d.positions.fills_applied == 1
    assert h.d.positions.duplicates >= 3
    assert h.bot_positions() == h.true_positions() == {"xyz:AAA": Decimal("0.5")}


def test_D_fill_lost_with_the_socket_is_counted_once_from_the_snapshot() -> None:
    h = Harness()
    h.bring_up()
    _entry(h)
    h.drop_socket(["fill"])  # executed, but every answer died with the socket
    assert h.d.positions.fills_applied == 0
    h.tick(61_000)
    h.bring_up()
    assert h.d.positions.fills_applied == 1
    assert h.bot_positions() == h.true_positions() == {"xyz:AAA": Decimal("0.5")}
    assert not h.d.orders.unknown_orders()
