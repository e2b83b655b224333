"""`Dispatcher.put` handles events at once, one at a time and in arrival order: an event put
while another is being handled (a write failure, a nested put from a callback) waits its turn,
events put before `run()` are handled after `start()`, and nothing is handled once the
dispatcher has finished."""

from __future__ import annotations

import asyncio

from hip3.events import OperatorCommand, Tick
from tests.runtime.fakes import Harness


def _recording(h: Harness, log: list, nested: dict) -> None:
    d = h.d
    real = d.handle

    def handle(event) -> None:
        log.append(("begin", id(event)))
        follow = nested.pop(id(event), None)
        if follow is not None:
            d.put(follow)  # put from inside handling: must not run before this one ends
        real(event)
        log.append(("end", id(event)))

    d.handle = handle


async def test_put_handles_inline_in_order_and_never_reenters() -> None:
    h = Harness(shutdown={"flatten_on_exit": False, "cancel_on_exit": False})
    log: list = []
    first, second, third = Tick(), Tick(), Tick()
    _recording(h, log, {id(first): second, id(second): third})
    early = Tick()
    h.d.put(early)  # before run(): kept, handled right after start()
    assert log == []
    runner = asyncio.create_task(h.d.run(tick_s=3600))
    await asyncio.sleep(0)
    assert log == [("begin", id(early)), ("end", id(early))]
    log.clear()
    h.d.put(first)  # from outside any handling: handled before put() returns
    assert log == [
        ("begin", id(first)),
        ("end", id(first)),
        ("begin", id(second)),
        ("end", id(second)),
        ("begin", id(third)),
        ("end", id(third)),
    ]
    assert not h.d.inbox
    h.d.put(OperatorCommand("shutdown", "test"))
    await asyncio.wait_for(runner, 5)
    assert h.d.finished.is_set()
    log.clear()
    late = Tick()
    h.d.put(late)  # the loop has ended: nothing more is handled
    assert log == [] and list(h.d.inbox) == [late]
