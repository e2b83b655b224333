"""One plain regression test per review item of the seed bot (docs/design.md#the-seed-bot), each
replaying the sequence of events that broke the original, through the dispatcher and the
simulator's exchange core behind the delivery layer (tests/runtime/fakes.py)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from hip3.protocol import frames as F
from hip3.runtime.dispatcher import Dispatcher, FatalError
from hip3.sim.delivery import Delivery
from tests.runtime.fakes import FakeClock, Harness, RecordingTransport, make_config, order_wires

ROOT = Path(__file__).resolve().parents[2]
# The bot's own code; hip3/sim is the exchange (its "halted" markets are the exchange's).
BOT_SOURCES = [
    p
    for base in ("hip3", "machines")
    for p in sorted((ROOT / base).rglob("*.py"))
    if "sim" not in p.relative_to(ROOT).parts[1:2]
]


def _subscriptions(h: Harness) -> list[dict]:
    return [m["subscription"] for m in h.transport.sent if m.get("method") == "subscribe"]


def _orders(m: dict) -> list:
    return order_wires(m)


def _adopted_resting_order(h: Harness, coin: str = "xyz:BBB") -> int:
    """Another client of the account rests an order; the bot learns it from orderUpdates and
    adopts it from the exchange's open orders. Returns its oid."""
    answer = h.other_client_order(coin, is_buy=True, resting=True, sz="1")
    oid = answer["response"]["data"]["statuses"][0]["resting"]["oid"]
    h.settle()
    assert any(m.oid == oid for _i, m in h.d.orders.live_orders()), h.d.counters
    return oid


# --- blocker 1: the loop was not wired -----------------------------------------------------


def test_blocker1_post_response_order_updates_and_fills_drive_orders_and_positions() -> None:
    h = Harness()
    h.bring_up()
    cloid = h.entry()
    h.execute()
    # the seed dropped all three; here they arrive fill first, response last
    h.deliver_lane("userFills")
    assert h.bot_positions() == h.true_positions() != {}
    h.deliver_lane("orderUpdates")
    assert h.d.orders.was_terminal(cloid) == "filled"
    h.deliver_all()  # post response (late, recognised) and the userEvents copy of the fill
    assert h.d.orders.final_counts == {"filled": 1}
    assert h.d.positions.fills_applied == 1
    assert h.bot_positions() == h.true_positions()


def test_blocker1_resting_then_cancelled_by_the_exchange() -> None:
    h = Harness()
    h.bring_up()
    oid = _adopted_resting_order(h)
    key = h.d.orders.cloid_for(oid, None)
    assert h.d.orders.machines[key].state == "resting"
    h.other_client_cancel("xyz:BBB", oid)
    h.deliver_lanes("orderUpdates")
    assert h.d.orders.was_terminal(key) == "cancelled"


# --- blocker 2: no trading subscriptions --------------------------------------------------


def test_blocker2_trading_subscriptions_are_sent_in_every_epoch() -> None:
    h = Harness()
    h.bring_up()
    first = _subscriptions(h)
    h.drop_socket()
    h.tick(61_000)
    h.bring_up()
    second = _subscriptions(h)[len(first) :]
    for subs in (first, second):
        user_subs = {s["type"]: s.get("user") for s in subs if "user" in s}
        assert user_subs == {t: h.user for t in ("orderUpdates", "userFills", "userEvents")}
    assert h.d.ready.trading()


def test_blocker2_trading_mode_without_a_user_address_fails_fast() -> None:
    clock = FakeClock()
    transport = RecordingTransport(Delivery())
    with pytest.raises(FatalError, match=r"account\.user"):
        Dispatcher(make_config(), transport=transport, clock=clock, signer=object(), user=None)


# --- blocker 3: the drain deadlock ---------------------------------------------------------


def test_blocker3_ack_and_snapshot_arriving_during_resubscription_still_lead_to_ready() -> None:
    h = Harness()
    h.bring_up()
    h.drop_socket()
    h.tick(61_000)
    h.open_socket()  # epoch 2: the bot writes every subscription at once
    # the seed's drain_and_wait swallowed exactly these: the orderUpdates ack and the
    # userFills snapshot arriving while the other subscriptions were still going out
    h.deliver_lane("orderUpdates")  # its ack
    h.deliver_lane("bbo:xyz:AAA")  # market data before its ack
    h.deliver_lane("activeAssetCtx:xyz:BBB")
    while h.acks():
        h.ack(len(h.acks()) - 1)  # the remaining acks in reverse order
    h.deliver_lane("bbo:xyz:BBB")
    h.deliver_lane("activeAssetCtx:xyz:AAA")
    assert h.d.conn.state == "reconciling"
    h.settle()
    assert h.d.conn.state == "live"
    assert h.d.ready.trading(), h.d.readiness.missing()


def test_blocker3_an_old_epochs_ack_never_makes_the_new_one_ready() -> None:
    h = Harness()
    h.start()
    h.open_socket()
    h.drop_socket()
    old_acks = [f for f in h.delivery.lost if b'"subscriptionResponse"' in f.data]
    assert old_acks
    h.tick(61_000)
    h.open_socket()
    for f in old_acks:  # late acks of epoch 1
        h.frame(f.data, f.connection)
    assert h.d.conn.state == "subscribing"
    assert all(status == "pending" for status in h.d.readiness.keys.values())


# --- A: HardStop was incomplete ------------------------------------------------------------


def test_A_hardstop_cancels_flattens_verifies_and_stays_halted() -> None:
    h = Harness()
    h.bring_up()
    h.entry("xyz:AAA")
    h.settle()  # a position on AAA
    oid = _adopted_resting_order(h)  # a resting order on BBB
    resting = h.d.orders.cloid_for(oid, None)
    assert h.true_open_orders() and h.true_positions()
    h.operator("hardstop")
    assert h.d.hardstop.state == "cancelling"
    # the cancel, then the reduce-only flatten, then the verification; the flatten order's
    # orderUpdate comes before its fill, so the flatten machine looks again after its backoff
    for _ in range(5):
        h.settle()
        if h.d.hardstop.state == "halted":
            break
        h.tick(1_000)
    assert h.d.hardstop.state == "halted"
    assert not h.true_open_orders() and not h.true_positions()
    assert h.d.orders.was_terminal(resting) == "cancelled"
    flattens = [w for m in h.transport.sent for w in _orders(m) if w["r"]]
    assert len(flattens) == 1 and flattens[0]["b"] is False  # sells the long
    # stays halted: time passes, the book dislocates, the connection flaps
    sent_before = len(h.transport.sent)
    h.tick(120_000)
    h.drop_socket()
    h.tick(61_000)
    h.bring_up()
    h.market_moves("xyz:AAA", dislocated="buy")
    h.settle()
    assert h.d.hardstop.state == "halted"
    assert not any(w for m in h.transport.sent[sent_before:] for w in _orders(m))
    h.operator("reset")
    assert h.d.hardstop.is_armed


def test_A_operator_reset_is_refused_before_halted() -> None:
    h = Harness()
    h.bring_up()
    h.entry()
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
        h.entry()
        h.reject_next_order()
        h.settle()
    assert d.hardstop.state != "armed"
    assert "consecutive order rejections" in d.hardstop.reasons[0]
    sent = sum(len(_orders(m)) for m in h.transport.sent)
    h.market_moves("xyz:AAA", dislocated="buy")
    h.deliver_all()
    assert d.executor.blocked["hardstop"] >= 1
    assert sum(len(_orders(m)) for m in h.transport.sent) == sent


# --- C: two READYs -------------------------------------------------------------------------


def test_C_one_ready_asked_by_the_executor_and_the_write_path() -> None:
    h = Harness()
    h.start()
    h.open_socket()
    d = h.d
    assert d.executor.ready is d.ready
    while h.acks():
        h.ack(0)
    # the seed's write path said READY on the first bbo of ANY market; here market BBB has
    # no data yet, so neither the executor nor the write path may send an entry
    h.deliver_lane("activeAssetCtx:xyz:AAA")
    h.deliver_lane("bbo:xyz:AAA")
    while h.delivery.requests or [
        i for i in h.delivery.deliverable() if h.delivery.frames[i].lane.startswith("post:")
    ]:
        while h.delivery.requests:
            h.execute()
        h.deliver_lanes("post:")
    h.deliver_lanes("userFills")
    assert d.conn.state == "live"
    assert not d.ready.trading()
    h.market_moves("xyz:AAA", dislocated="buy")
    h.deliver_lanes("activeAssetCtx:xyz:AAA")
    h.deliver_lanes("bbo:xyz:AAA")
    assert d.executor.blocked["not_ready"] >= 1
    assert not any(_orders(m) for m in h.transport.sent)
    h.deliver_lanes("activeAssetCtx:xyz:BBB")
    h.deliver_lanes("bbo:xyz:BBB")
    h.settle()
    assert d.ready.trading() and d.ready.machine is d.readiness
    h.entry()
    # after a reconnect the one READY follows the new epoch's machine
    h.drop_socket()
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
    h.entry()
    h.settle()  # streamed on userFills and userEvents, counted once
    assert h.d.positions.fills_applied == 1
    h.drop_socket()
    h.tick(61_000)
    h.open_socket()
    # a streamed fill before the snapshot does not make userFills ready
    h.frame(json.dumps({"channel": "userFills", "data": {"user": h.user, "fills": h.true_fills()}}))
    assert h.d.readiness.keys["userFills"] == "pending"
    h.settle()  # the snapshot (overlapping the stream) and the reconciliation's userFills
    assert h.d.readiness.keys["userFills"] == "ready"
    assert h.d.positions.fills_applied == 1
    assert h.d.positions.duplicates >= 3
    assert h.bot_positions() == h.true_positions() != {}


def test_D_fill_lost_with_the_socket_is_counted_once_from_the_snapshot() -> None:
    h = Harness(exits={"time_stop_s": 600.0, "mark_regression_enabled": False})
    h.bring_up()
    h.entry()
    h.drop_socket(executed=1)  # executed, but every answer died with the socket
    assert h.d.positions.fills_applied == 0
    h.tick(61_000)
    h.bring_up()
    assert h.d.positions.fills_applied == 1
    assert h.bot_positions() == h.true_positions() != {}
    assert not h.d.orders.unknown_orders()
