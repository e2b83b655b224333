"""The order registry's machine pool: ended orders' machines are recycled on the timer, so a
steady flow of orders builds no machine at all (building one costs milliseconds)."""

from __future__ import annotations

from decimal import Decimal

from hip3.execution.orders import OrderInfo, OrderRegistry


def _info(i: int) -> OrderInfo:
    return OrderInfo(
        cloid=f"0x{i:032x}",
        coin="xyz:AAA",
        asset=110000,
        is_buy=True,
        size=Decimal("1"),
        px="10",
        reduce_only=False,
        purpose="entry",
        created_ms=0,
    )


def test_a_steady_flow_of_orders_builds_no_machines_after_warm_up() -> None:
    outbox: list = []
    reg = OrderRegistry(outbox)
    assert reg.prewarm(target=4, budget=4) == 4
    built_at_start = reg.machines_built
    for i in range(200):
        info = _info(i)
        m = reg.add(info)
        reg.send(info.cloid, "sent", post_id=i, epoch=1)
        reg.send(
            info.cloid,
            "fill" if i % 2 else "rejected",
            **({"sz": "1", "tid": i} if i % 2 else {"reason": "could not match"}),
        )
        assert not reg.is_live(info.cloid) and m.state in ("filled", "rejected")
        if i % 3 == 0:
            reg.prewarm(target=4, budget=4)  # the timer, now and then
    assert reg.machines_built == built_at_start
    assert reg.final_counts == {"filled": 100, "rejected": 100}
    # every announcement names the order it was for, never a recycled machine's later order
    announced = [c.cloid for c in outbox]
    assert announced == [f"0x{i:032x}" for i in range(200)]


def test_a_machine_is_not_recycled_before_the_timer_and_late_events_stay_late() -> None:
    reg = OrderRegistry([])
    reg.prewarm(target=1, budget=1)
    info = _info(1)
    m = reg.add(info)
    reg.send(info.cloid, "rejected", reason="x")
    assert m.state == "rejected"  # retired, not yet recycled
    assert reg.send(info.cloid, "fill", sz="1", tid=5) is None and reg.late_events == 1
    reg.prewarm(target=1, budget=1)
    assert m.state == "created" and m.cloid == "spare"
    assert reg.was_terminal(info.cloid) == "rejected"


def test_the_pool_is_bounded() -> None:
    reg = OrderRegistry([], max_spares=3)
    for i in range(10):
        info = _info(i)
        reg.add(info)
        reg.send(info.cloid, "rejected", reason="x")
    reg.prewarm(target=0, budget=0)
    assert len(reg._spares) == 3
