"""What the process-level benchmarks share: a simulator in its own process, and the real bot
(`run_bot`) in this one, started and waited on until READY-TRADING."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import time
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def simulator_in_child(target: Callable[..., None], *args: Any) -> Iterator[Any]:
    """Run `target(pipe_end, *args)` in a spawned process; yields this side's pipe end. The
    child is joined on exit, and terminated if it does not end on its own."""
    ctx = mp.get_context("spawn")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(target=target, args=(theirs, *args), daemon=True)
    child.start()
    # Only the child holds its end now: if it dies (an import error, say), a read on ours
    # raises EOFError instead of waiting forever.
    theirs.close()
    try:
        yield ours
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.terminate()


async def start_bot(
    cfg: Any, secret: str, *, duration_s: float | None = None, ready_timeout_s: float = 20.0
) -> tuple[asyncio.Task, Any]:
    """Start the real bot; returns (its task, its dispatcher) once it is READY-TRADING."""
    from hip3.app.bot import run_bot
    from hip3.keys import SigningKey

    box: dict[str, Any] = {}
    bot = asyncio.create_task(
        run_bot(
            cfg,
            duration_s=duration_s,
            install_signals=False,
            on_dispatcher=lambda d, _sim: box.setdefault("d", d),
            key=SigningKey.from_hex(secret),
        )
    )
    deadline = time.monotonic() + ready_timeout_s
    while not ("d" in box and box["d"].ready.trading()):
        if bot.done():
            raise RuntimeError(f"the bot stopped before READY: {bot.result()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the bot was not READY within {ready_timeout_s} s")
        await asyncio.sleep(0.02)
    return bot, box["d"]
