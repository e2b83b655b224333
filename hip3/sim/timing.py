"""Time like the exchange: blocks, commit, in-block ordering and network latency.

Without this module the simulator executes an action the moment it arrives and answers at
once. With it (`Sequencer`), every action, from a client or from a simulated trader:

1. waits in a mempool slot (`hip3.sim.blocks`): cancels and ALO-only batches at once, IOC/GTC
   batches for `order_wait_ms` minus what their priority fee buys;
2. joins the block of the 70 ms unix-time bucket holding its effective time ("each 70ms unix
   time bucket (usually corresponding to 1 block)",
   https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/priority-fees) and executes when
   that bucket closes, in the block's order, with the block's time as the exchange clock;
3. is answered once its block is committed, `commit_blocks` (2) blocks later ("usually 2
   blocks in pipelined HyperBFT consensus", .../for-developers/api/optimizing-latency; the
   API server answers only after commit, .../hypercore/api-servers), plus a network delay
   drawn per answer from a seeded log-normal (`hip3.sim.latency`);
4. its user events (orderUpdates, userFills, userEvents) leave with its answer, never before
   it, and never before the events of an earlier block for the same user: each user's
   stream stays in execution order.

Market data (books, contexts, trades) is published when its block executes. Info requests
are answered from the state at arrival, after a network delay only (`info_latency`).
Chosen where the exchange publishes nothing: f0 = 360 ms (inferred), one latency
distribution for every client, user events released no earlier than their answer.

The sequencer knows nothing of sockets: callers hand it a callable to run in the block and
a reply callable for the answer. A `Clock` gives it time: `LoopClock` (unix time on the
asyncio loop) in the server, `VirtualClock` in unit tests.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from hip3.sim.blocks import Admitted, MempoolRules, Slot, execution_order, slot_for
from hip3.sim.events import (
    AccountChanged,
    LedgerUpdate,
    Notification,
    OrderUpdates,
    UserEvent,
    UserFills,
)
from hip3.sim.latency import Latency, LatencySpec
from hip3.sim.requests import Answer, post_error

log = logging.getLogger(__name__)

USER_EVENTS = (OrderUpdates, UserFills, UserEvent, LedgerUpdate, AccountChanged, Notification)
# The same as a set of exact types: every book or context change passes `on_event`, and one
# set lookup is cheaper than six isinstance checks that fail (event classes have no subclasses).
_USER_EVENT_TYPES = frozenset(USER_EVENTS)


@dataclass(frozen=True)
class TimingConfig:
    """The timing model's settings (scenario `[timing]`, `hip3 sim` options)."""

    block_ms: int = 70
    commit_blocks: int = 2
    mempool: MempoolRules = field(default_factory=MempoolRules)
    latency: LatencySpec = field(default_factory=lambda: LatencySpec(200.0, 900.0))
    info_latency: bool = True  # info answers wait one network delay too

    def __post_init__(self) -> None:
        if self.block_ms < 1:
            raise ValueError(f"block_ms must be >= 1, got {self.block_ms}")
        if self.commit_blocks < 0:
            raise ValueError(f"commit_blocks must be >= 0, got {self.commit_blocks}")

    def describe(self) -> str:
        return (
            f"blocks of {self.block_ms} ms, commit after {self.commit_blocks}, "
            f"IOC/GTC wait {self.mempool.order_wait_ms:g} ms "
            f"(-{self.mempool.ms_per_bp:g} ms/bp to {self.mempool.max_priority_bps} bps), "
            f"latency {self.latency.describe()}"
        )


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now_ms(self) -> float: ...

    def call_at(self, when_ms: float, callback: Callable[[], None]) -> Cancellable: ...


class LoopClock:
    """Unix time in milliseconds, with timers on the running asyncio loop."""

    def now_ms(self) -> float:
        return time.time_ns() / 1e6

    def call_at(self, when_ms: float, callback: Callable[[], None]) -> Cancellable:
        delay_s = max(0.0, when_ms - self.now_ms()) / 1000
        return asyncio.get_running_loop().call_later(delay_s, callback)


class _VirtualTimer:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """A clock that moves only when told to: timers fire in (time, arming) order."""

    def __init__(self, start_ms: float = 0.0) -> None:
        self._now = float(start_ms)
        self._timers: list[tuple[float, int, _VirtualTimer, Callable[[], None]]] = []
        self._order = itertools.count()

    def now_ms(self) -> float:
        return self._now

    def call_at(self, when_ms: float, callback: Callable[[], None]) -> Cancellable:
        timer = _VirtualTimer()
        heapq.heappush(self._timers, (when_ms, next(self._order), timer, callback))
        return timer

    def advance_to(self, when_ms: float) -> None:
        while self._timers and self._timers[0][0] <= when_ms:
            at, _, timer, callback = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, at)
            callback()
        self._now = max(self._now, when_ms)

    def advance(self, ms: float) -> None:
        self.advance_to(self._now + ms)


class Sequencer:
    """Collects actions into blocks, executes each block in order, answers after commit.

    Collaborators: `clock` (time and timers), `sink` (where events go once due: the
    server's event fan-out), `rng` (the seeded source of network delays) and, optionally,
    `before_block`, called before a block executes (the only time the sequencer touches the
    exchange core: a backtest brings its core up to date with the recording there).
    """

    def __init__(
        self,
        config: TimingConfig,
        *,
        clock: Clock,
        sink: Callable[[object], None],
        rng: random.Random,
        before_block: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self._before_block = before_block
        self._clock = clock
        self._sink = sink
        self._latency = Latency(config.latency, rng)
        self._block_ms = config.block_ms
        self._commit_ms = config.commit_blocks * config.block_ms
        self._top_rate = config.mempool.top_rate
        self._rules = config.mempool
        self._blocks: dict[int, list[Admitted]] = {}
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._timer: Cancellable | None = None
        self._timer_at = math.inf
        self._last_block = -1
        self._block_time: int | None = None
        self._outbox: list[object] | None = None
        self._user_release: dict[str, float] = {}
        self.blocks_executed = 0

    @property
    def rules(self) -> MempoolRules:
        return self._rules

    def slot(self, action: Any) -> Slot:
        """The mempool slot of an action body under this model's rules."""
        return slot_for(action, self._rules)

    # --- what the exchange core and callers see ------------------------------------------
    def clock_ms(self) -> int:
        """The exchange clock: the block's time while a block executes, else now."""
        block_time = self._block_time
        if block_time is not None:
            return block_time
        return int(self._clock.now_ms())

    def submit(
        self,
        slot: Slot,
        run: Callable[[], Any],
        reply: Callable[[Any], None] | None = None,
    ) -> int:
        """Admit one action now; `run()` executes in its block and `reply(result)` follows
        its commit plus a network delay. Returns the block (bucket index) it joined."""
        entry = Admitted(slot, self._clock.now_ms(), next(self._order), (run, reply))
        bucket = max(int(entry.effective_ms // self._block_ms), self._last_block + 1)
        entries = self._blocks.get(bucket)
        if entries is None:
            self._blocks[bucket] = [entry]
            self._at((bucket + 1) * self._block_ms, partial(self._run_block, bucket))
        else:
            entries.append(entry)
        return bucket

    def answer_info(self, compute: Callable[[], Any], reply: Callable[[Any], None]) -> None:
        """Answer from the state now, after one network delay (none if info_latency is off)."""
        result = compute()
        if not self.config.info_latency:
            reply(result)
            return
        self._at(self._clock.now_ms() + self._latency.draw_ms(), partial(reply, result))

    def on_event(self, event: object) -> None:
        """The exchange core's `emit`: user events wait for their answer, the rest goes on."""
        if type(event) in _USER_EVENT_TYPES:
            outbox = self._outbox
            if outbox is not None:
                outbox.append(event)
                return
            # Outside any block (a scheduled cancel, funding, a halt): a delay, in order.
            self._release_events(self._clock.now_ms() + self._latency.draw_ms(), (event,))
            return
        self._sink(event)

    # --- blocks ---------------------------------------------------------------------------
    def _run_block(self, bucket: int) -> None:
        entries = self._blocks.pop(bucket, None)
        self._last_block = max(self._last_block, bucket)
        if not entries:
            return
        if self._before_block is not None:
            self._before_block()
        block_time = (bucket + 1) * self._block_ms
        commit_at = block_time + self._commit_ms
        self._block_time = block_time
        self.blocks_executed += 1
        try:
            for entry in execution_order(entries, self._top_rate):
                run, reply = entry.work
                outbox: list[object] = []
                self._outbox = outbox
                try:
                    result = run()
                except Exception:  # one broken action must not stall the chain
                    log.exception("an action failed inside its block")
                    result = None
                finally:
                    self._outbox = None
                at = commit_at + self._latency.draw_ms()
                if reply is not None:
                    self._at(at, partial(reply, result))
                if outbox:
                    self._release_events(at, outbox)
        finally:
            self._block_time = None

    def _release_events(self, at: float, events: list[object] | tuple[object, ...]) -> None:
        release = self._user_release
        for event in events:
            user = event.user  # type: ignore[attr-defined]
            when = max(at, release.get(user, at))
            release[user] = when
            self._at(when, partial(self._sink, event))

    # --- one timer for everything that is due ----------------------------------------------
    def _at(self, when_ms: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._due, (when_ms, next(self._order), callback))
        if when_ms < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = when_ms
            self._timer = self._clock.call_at(when_ms, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        due = self._due
        while due and due[0][0] <= self._clock.now_ms():
            _, _, callback = heapq.heappop(due)
            try:
                callback()
            except Exception:
                log.exception("a timed delivery failed")
        if due and self._timer is None:
            self._timer_at = due[0][0]
            self._timer = self._clock.call_at(self._timer_at, self._fire)

    def close(self) -> None:
        """Stop: nothing admitted or due runs any more (the server is going away)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = -math.inf  # never re-armed
        self._blocks.clear()
        self._due.clear()

    @property
    def pending(self) -> int:
        """Actions admitted and not yet executed, plus deliveries not yet made."""
        return sum(len(entries) for entries in self._blocks.values()) + len(self._due)


class TimedGateway:
    """The request gateway (`hip3.sim.requests`) behind the timing model, for every
    transport at once: an action waits for its block and is answered after commit plus a
    network delay; an info request is answered from the state at arrival after a network
    delay only."""

    def __init__(self, gateway: Any, sequencer: Sequencer) -> None:
        self._gateway = gateway
        self._sequencer = sequencer

    def submit(self, kind: str, payload: Any, reply: Callable[[Answer], None]) -> None:
        if kind == "action":
            action = payload.get("action") if isinstance(payload, dict) else None
            slot = self._sequencer.slot(action)
            self._sequencer.submit(slot, partial(self._answer, kind, payload), reply)
        elif kind == "info":
            self._sequencer.answer_info(partial(self._answer, kind, payload), reply)
        else:
            reply(self._answer(kind, payload))

    def _answer(self, kind: str, payload: Any) -> Answer:
        try:
            return self._gateway.answer(kind, payload)
        except Exception:  # the client must still get an answer, and its post slot back
            log.exception("the gateway failed on a timed %s request", kind)
            text = f"Internal error while handling the {kind} request"
            return Answer(500, None, post_error(text))


__all__ = [
    "USER_EVENTS",
    "Clock",
    "LoopClock",
    "Sequencer",
    "TimedGateway",
    "TimingConfig",
    "VirtualClock",
]
