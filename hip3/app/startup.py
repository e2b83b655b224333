"""The start-up deadline and the operator's stop keys: what ends a run from outside the loop.

An unreachable endpoint is not an error the connection machine can tell from a slow one, so it
retries forever with backoff. The run's owner can: a run that has not been READY by
`ready.startup_timeout_s` (or is asked to stop before it ever was) and has sent nothing ends
at once, with one line naming the URL and the last connection error, instead of spending its
stop deadline reconnecting to cancel orders that were never placed.

A first Ctrl-C (or SIGTERM) asks for the graceful stop; a second one forces the exit after
saying what may still be open.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, TextIO

from hip3.events import OperatorCommand, SocketClosed

# how often the watch looks whether the run has become READY
_POLL_S = 0.1


class StartupWatch:
    """Knows the endpoint, the last connection error and whether the run was ever READY."""

    def __init__(self, url: str, deadline_s: float, *, trading: bool) -> None:
        self.url = url
        self.deadline_s = deadline_s
        self.trading = trading
        self.last_error: str | None = None
        self.was_ready = False
        self.never_ready: str | None = None

    def observe(self, event: Any) -> None:
        """Called with every event on its way to the dispatcher: keeps the last socket error."""
        if type(event) is SocketClosed:
            self.last_error = event.reason

    def ready_now(self, d: Any) -> bool:
        """READY: an epoch went live (reconciled) and, when trading, READY-TRADING holds."""
        if not self.was_ready and d.ready_latency_ms and (not self.trading or d.ready.trading()):
            self.was_ready = True
        return self.was_ready

    def message(self, why: str) -> str:
        last = self.last_error or "no connection error seen (connected, but not READY)"
        return f"never ready: {why} ({self.url}); last error: {last}"

    def give_up(self, d: Any, why: str) -> bool:
        """End the run as never ready, if it never was and sent nothing; True if it did."""
        if self.ready_now(d) or d.wire.actions_sent or d.finished.is_set():
            return False
        self.never_ready = self.message(why)
        d.abort(self.never_ready)
        return True

    async def watch(self, d: Any) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + self.deadline_s
        while loop.time() < end:
            if self.ready_now(d) or d.finished.is_set():
                return
            await asyncio.sleep(_POLL_S)
        self.give_up(d, f"not READY {self.deadline_s:g} s after start")


class StopKeys:
    """SIGINT/SIGTERM: the first asks for the graceful stop, the second forces the exit."""

    def __init__(self, d: Any, watch: StartupWatch, err: TextIO = sys.stderr) -> None:
        self.d = d
        self.watch = watch
        self.err = err
        self.presses = 0
        self.forced = False

    def press(self, signal_name: str) -> None:
        self.presses += 1
        if self.presses == 1:
            if self.watch.give_up(self.d, "stopped before the run was READY"):
                return
            print(
                f"hip3 bot: stopping ({signal_name}): cancelling and flattening; "
                "press Ctrl-C again to exit at once",
                file=self.err,
                flush=True,
            )
            self.d.put(OperatorCommand("shutdown", f"signal {signal_name}"))
            return
        if self.forced:
            return
        self.forced = True
        print(f"hip3 bot: forced exit; {may_be_open(self.d)}", file=self.err, flush=True)
        self.d.abort("interrupted: forced exit before the graceful stop finished")


def may_be_open(d: Any) -> str:
    """What the bot last knew as open: the operator checks these on the exchange."""
    positions = d.positions.signed_sizes()
    orders = list(d.orders.open_orders())
    if not positions and not orders:
        return "nothing was known open"
    shown = ", ".join(f"{coin} {size}" for coin, size in sorted(positions.items())) or "none"
    return (
        f"may still be open: positions {shown}; {len(orders)} order(s); "
        "check the account on the exchange"
    )


def stop_after(d: Any, watch: StartupWatch, seconds: float) -> asyncio.TimerHandle:
    """`--duration`: the graceful stop, or the never-ready end if the run never was READY."""

    def elapsed() -> None:
        if not watch.give_up(d, f"stopped after {seconds:g} s before the run was READY"):
            d.put(OperatorCommand("shutdown", "duration elapsed"))

    return asyncio.get_running_loop().call_later(seconds, elapsed)
