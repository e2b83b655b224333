"""HardStop, flatten and risk through the dispatcher and the simulator's exchange core behind
the delivery layer (tests/runtime/fakes.py): a position the exchange does not hold, flatten refusals, the flatten
failure limit, consecutive rejections, and the one cancel-everything routine."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hip3.events import OperatorCommand
from tests.runtime.fakes import MARGIN_TEXT, Harness, order_wires

COIN = "xyz:AAA"


def _entry(h: Harness, coin: str = COIN) -> str:
    return h.entry(coin)


def _flat(h: Harness) -> bool:
    return not h.true_open_orders() and not h.true_positions()


def _phantom(h: Harness, size: str, coin: str = COIN) -> None:
    """The bot tracks `size` on `coin` whatever the exchange holds: how it came to believe it
    (a double count, a fill of an order it did not place, a bad frame) does not matter here,
    only that the HardStop copes with a belief the exchange does not share."""
    h.d.positions.position(coin).size = Decimal(size)


def _run(h: Harness, steps: int, step_ms: int, outcome: str = "fill") -> None:
    """Let the exchange answer everything, then time pass, `steps` times (not past the end of
    the run: the real loop stops handling events once the dispatcher has finished)."""
    for _ in range(steps):
        h.settle(reject=MARGIN_TEXT if outcome == "reject_margin" else None)
        if h.d.finished.is_set():
            return
        h.tick(step_ms)


def _flatten_orders(h: Harness) -> list[dict]:
    return [w for m in h.transport.sent for w in order_wires(m) if w["r"]]


def _request_exit(h: Harness, coin: str = COIN) -> None:
    """What an exit rule does (time stop, mark regression), then the commands it caused."""
    h.d.flattening.request(coin, "time stop")
    h.d.run_commands()


def _cancels(h: Harness) -> list[dict]:
    out = []
    for m in h.transport.sent:
        action = m.get("request", {}).get("payload", {}).get("action", {})
        if action.get("type") in ("cancel", "cancelByCloid"):
            out.append(action)
    return out


# --- a position the bot believes in but the exchange does not hold -------------------------


def test_hardstop_with_a_phantom_position_verifies_adopts_the_exchange_and_halts() -> None:
    h = Harness()
    h.bring_up()
    _phantom(h, "0.5")
    assert h.bot_positions() == {COIN: Decimal("0.5")} and h.true_positions() == {}
    h.operator("hardstop")
    _run(h, steps=20, step_ms=1_000)
    # the reduce-only flatten was refused ("would increase position"): no retry loop, the
    # verification asked the exchange and adopted its answer
    assert h.d.hardstop.state == "halted"
    assert h.bot_positions() == h.true_positions() == {}
    assert h.d.hardstop.given_up == [COIN]
    assert h.d.last_exchange_positions == {}
    assert len(_flatten_orders(h)) == 1
    assert h.d.hardstop.reasons == ["operator: test"]
    assert h.d.positions.discrepancies == [f"{COIN}: tracked 0.5 exchange 0"]


def test_hardstop_with_a_doubled_position_flattens_what_exists_then_adopts_the_rest() -> None:
    h = Harness()
    h.bring_up()
    _entry(h)
    h.settle()  # a real long
    real = h.true_positions()[COIN]
    _phantom(h, str(2 * real))  # the bot believes twice as much
    assert h.bot_positions() == {COIN: 2 * real} and h.true_positions() == {COIN: real}
    h.operator("hardstop")
    _run(h, steps=20, step_ms=1_000)
    assert h.d.hardstop.state == "halted"
    assert _flat(h)
    assert h.bot_positions() == h.true_positions() == {}


@pytest.mark.parametrize("held", ["none", "long", "short"])
@pytest.mark.parametrize("believed", ["0.5", "1.0", "-0.5", "-1.0", "0.2"])
def test_hardstop_ends_halted_with_the_exchange_positions_whatever_the_belief(
    held: str, believed: str
) -> None:
    # each belief against each real position: too much, too little, the wrong side, none
    h = Harness()
    h.bring_up()
    if held != "none":
        before = len(h.delivery.requests)
        h.ctx(COIN)
        h.bbo(COIN, dislocated="buy" if held == "long" else "sell")
        assert len(h.delivery.requests) == before + 1
        h.settle()
        size = h.true_positions().get(COIN, 0)
        assert (size > 0) == (held == "long") and size != 0
    _phantom(h, believed)
    h.operator("hardstop")
    _run(h, steps=40, step_ms=500)
    assert h.d.hardstop.state == "halted", (h.d.hardstop.state, h.d.hardstop.attempt)
    assert _flat(h)
    assert h.bot_positions() == h.true_positions() == {}
    assert h.d.last_exchange_positions == {}


def test_hardstop_with_a_size_that_is_not_a_number_gives_up_after_bounded_attempts() -> None:
    h = Harness()
    h.bring_up()
    _phantom(h, "NaN")  # what a bad frame once left behind
    h.operator("hardstop")
    _run(h, steps=40, step_ms=500)
    fm = h.d.flatten[COIN]
    assert fm.state == "failed" and fm.failures == h.cfg.flatten.max_attempts
    assert h.d.hardstop.state == "halted"
    assert h.bot_positions() == h.true_positions() == {}
    assert not _flatten_orders(h)  # nothing was ever sent for a size that is not a number


def test_a_real_position_that_cannot_be_flattened_is_retried_not_halted() -> None:
    # the exchange does hold it, so verification is not flat and a new attempt starts
    h = Harness()
    h.bring_up()
    _entry(h)
    h.settle()
    h.operator("hardstop")
    _run(h, steps=30, step_ms=500, outcome="reject_margin")
    assert h.d.hardstop.state != "halted"
    assert h.d.hardstop.attempt >= 2
    assert h.bot_positions() == h.true_positions() != {}
    _run(h, steps=30, step_ms=500, outcome="fill")
    assert h.d.hardstop.state == "halted" and _flat(h)


# --- flatten refusals and the flatten failure limit ----------------------------------------


def test_flatten_refusals_go_through_the_flatten_machine_with_backoff() -> None:
    h = Harness(flatten={"max_attempts": 3}, risk={"max_flatten_failures": 10})
    h.bring_up()
    _entry(h)
    h.settle()
    del h.d.specs[COIN]  # the exchange's metadata for the market is gone: no order can be built
    _request_exit(h)
    fm = h.d.flatten[COIN]
    assert fm.state == "waiting" and fm.failures == 1
    for _ in range(100):  # 1 s of 10 ms ticks: retries follow the backoff, not the tick
        h.tick(10)
    # backoff 0.5 s, then 1 s: the second attempt at 0.5 s, the third not yet
    assert fm.attempt == 2 and fm.failures == 2 and fm.state == "waiting"
    assert h.d.hardstop.is_armed
    for _ in range(50):  # the third attempt at 1.5 s fails too: the machine gives up
        h.tick(10)
    assert h.d.counters["flatten_gave_up"] == 1
    # giving up trips the HardStop (flatten failures), whose flatten step starts a fresh round
    assert any(r.startswith("flatten failures") for r in h.d.hardstop.reasons), h.d.hardstop.reasons
    assert h.d.hardstop.state == "flattening"
    assert fm.attempt == 4 and fm.failures == 1 and fm.state == "waiting"


def test_max_flatten_failures_trips_the_hardstop() -> None:
    h = Harness(flatten={"max_attempts": 10}, risk={"max_flatten_failures": 2})
    h.bring_up()
    _entry(h)
    h.settle()
    _request_exit(h)
    h.settle(reject=MARGIN_TEXT)
    assert h.d.hardstop.is_armed and h.d.flatten[COIN].failures == 1
    h.tick(600)  # past the first backoff: the second attempt, refused again
    h.settle(reject=MARGIN_TEXT)
    assert not h.d.hardstop.is_armed
    assert h.d.hardstop.reasons[0].startswith(
        f"flatten failures: 2 failed flatten attempts in a row on {COIN}"
    )
    assert h.d.flatten[COIN].state != "failed"  # the machine itself had attempts left


# --- consecutive rejections ---------------------------------------------------------------


def test_consecutive_rejections_reset_on_an_accepted_order() -> None:
    h = Harness()
    h.bring_up()
    limit = h.cfg.risk.max_consecutive_rejections
    for _ in range(limit - 1):
        _entry(h)
        h.settle(reject=MARGIN_TEXT)
    assert h.d.risk.consecutive_rejections == limit - 1
    _entry(h, "xyz:BBB")
    h.settle()  # accepted
    assert h.d.risk.consecutive_rejections == 0
    for _ in range(limit - 1):
        _entry(h)
        h.settle(reject=MARGIN_TEXT)
    assert h.d.hardstop.is_armed  # not `limit` in a row: an accepted order came between


def test_consecutive_rejections_reset_on_operator_reset() -> None:
    h = Harness()
    h.bring_up()
    limit = h.cfg.risk.max_consecutive_rejections
    for _ in range(limit):
        _entry(h)
        h.settle(reject=MARGIN_TEXT)
    assert "consecutive order rejections" in h.d.hardstop.reasons[0]
    _run(h, steps=5, step_ms=1_000)
    assert h.d.hardstop.state == "halted"
    h.operator("reset")
    assert h.d.hardstop.is_armed and h.d.risk.consecutive_rejections == 0
    h.bring_up()
    _entry(h)
    h.settle(reject=MARGIN_TEXT)
    assert h.d.hardstop.is_armed  # one rejection after a reset is one, not limit + 1


# --- one cancel-everything routine ---------------------------------------------------------


def _resting_and_unknown(h: Harness) -> tuple[str, str]:
    """One order resting with its oid known (another client's, adopted), one entry whose post
    answer never came (cloid only)."""
    answer = h.other_client_order(COIN, is_buy=True, resting=True, sz="1")
    oid = answer["response"]["data"]["statuses"][0]["resting"]["oid"]
    h.settle()
    resting = h.d.orders.cloid_for(oid, None)
    assert resting is not None and h.d.orders.machines[resting].oid == oid
    unknown = _entry(h, "xyz:BBB")
    pid = h.delivery.requests[-1]["id"]
    h.write_failed(pid)  # the bot cannot know whether it went out
    assert h.d.orders.machines[unknown].state == "unknown"
    assert h.d.orders.machines[unknown].oid is None
    return resting, unknown


def test_shutdown_cancels_by_oid_and_by_cloid_and_leaves_nothing_open() -> None:
    h = Harness(shutdown={"flatten_on_exit": False, "cancel_on_exit": True})
    h.bring_up()
    resting, unknown = _resting_and_unknown(h)
    h.handle(OperatorCommand("shutdown", "test"))
    cancels = _cancels(h)
    by_oid = [c for a in cancels if a["type"] == "cancel" for c in a["cancels"]]
    by_cloid = [c for a in cancels if a["type"] == "cancelByCloid" for c in a["cancels"]]
    assert [c["o"] for c in by_oid] == [h.d.orders.machines[resting].oid]
    assert [c["cloid"] for c in by_cloid] == [unknown]
    _run(h, steps=10, step_ms=100)
    assert h.true_open_orders() == []
    assert not h.d.orders.open_orders()
    assert h.d.finished.is_set() and h.d.conn.state == "closed"


def test_hardstop_uses_the_same_cancel_routine() -> None:
    h = Harness()
    h.bring_up()
    resting, unknown = _resting_and_unknown(h)
    h.operator("hardstop")
    cancels = _cancels(h)
    assert {a["type"] for a in cancels} == {"cancel", "cancelByCloid"}
    assert [c["cloid"] for a in cancels if a["type"] == "cancelByCloid" for c in a["cancels"]] == [
        unknown
    ]
    _run(h, steps=20, step_ms=1_000)
    assert h.d.hardstop.state == "halted"
    assert h.true_open_orders() == [] and _flat(h)
    assert h.d.orders.was_terminal(resting) == "cancelled"


def test_an_order_only_verification_sees_is_cancelled_not_looped_on() -> None:
    # an order placed on the account by another client after this epoch's reconciliation:
    # the bot never heard of it, verification's openOrders lists it
    h = Harness()
    h.bring_up()
    _foreign_order(h)
    h.operator("hardstop")
    _run(h, steps=10, step_ms=1_000)
    assert h.d.hardstop.state == "halted", (h.d.hardstop.state, h.d.hardstop.attempt)
    assert h.true_open_orders() == []
    assert h.d.hardstop.attempt == 2  # one attempt found it, the next cancelled it


def _foreign_order(h: Harness) -> int:
    """An order placed on the account by another client whose announcement (its orderUpdate)
    has not reached this bot yet. Returns its oid."""
    answer = h.other_client_order(COIN, is_buy=True, resting=True, sz="1")
    return answer["response"]["data"]["statuses"][0]["resting"]["oid"]


def test_shutdown_checks_the_exchange_and_cancels_what_it_still_lists() -> None:
    h = Harness(shutdown={"flatten_on_exit": False, "cancel_on_exit": True})
    h.bring_up()
    _resting_and_unknown(h)
    foreign = _foreign_order(h)
    h.handle(OperatorCommand("shutdown", "test"))
    _run(h, steps=10, step_ms=100)
    assert h.true_open_orders() == []
    assert h.exchange.order_status(h.user, foreign)[1] == "canceled"
    assert h.d.finished.is_set() and h.d.conn.state == "closed"
    # the resting order of _resting_and_unknown was adopted before; the foreign one now
    assert h.d.counters["adopted_orders"] == 2


def test_a_fill_that_reaches_the_bot_during_verification_keeps_the_hardstop_from_halting() -> None:
    # Found by the dispatcher property test: the positions answer said flat, then another
    # client's fill on this account reached the bot, then the open-orders answer completed the
    # verification and the HardStop halted holding the short the bot had just been told about.
    h = Harness()
    h.bring_up()
    h.operator("hardstop")
    assert h.d.hardstop.state == "verifying", h.d.hardstop.state
    h.execute()  # the positions question: the exchange is flat when it answers
    h.other_client_order(COIN, is_buy=False, resting=False, sz="1")
    h.deliver_lanes("post:")  # the flat answer ...
    h.deliver_lanes("userFills")  # ... then the fill that came after it
    h.settle()  # the open-orders answer completes the verification
    assert h.d.hardstop.state != "halted" or _flat(h), (h.d.hardstop.state, h.true_positions())
    for _ in range(10):  # the next attempt flattens what the fill left
        if h.d.hardstop.state == "halted":
            break
        h.tick(h.d.hardstop.retry_interval_ms)
        h.settle()
    assert h.d.hardstop.state == "halted" and _flat(h), (h.d.hardstop.state, h.true_positions())
