"""Injected misbehaviour: the ways a real exchange connection goes wrong, on demand.

Faults come from the command line (`hip3 sim --faults SPEC`) or from tests through
`SimHarness.faults`, a `FaultController`. The server asks the controller, frame by frame,
what to do; the controller never touches a socket itself except through the server's
`drop_all()`.

SPEC grammar (whitespace around items is ignored):

    spec   := item ("," item)*
    item   := key "=" value
    key    := one of the names in FAULT_KEYS below
    value  := integer | decimal | COIN "@" seconds   (for halt; repeat `halt=` for several)

    drop_after=N          drop each connection after the server has sent it N frames
    drop_every_s=S        drop every connection at random times, on average every S seconds
    seed=N                seed for the random faults (drop_every_s, duplicate_p); default 0
    delay_ms=N            delay every outbound frame by N ms (order is kept)
    duplicate_p=P         send each outbound frame twice with probability P (0..1)
    withhold_snapshot=1   never send the userFills snapshot until released from a test
    delay_snapshot_ms=N   send the userFills snapshot N ms after the ack
    withhold_ack=1        never send subscription acks until released from a test
    delay_ack_ms=N        send subscription acks N ms late
    delay_post_ms=N       answer post requests N ms late (the action is applied at once)
    reject_next=N         reject the next N orders (exchange fault hook)
    no_pong=1             stop answering {"method":"ping"}
    halt=COIN@S           halt market COIN S seconds after start (cancel orders, settle at mark)

Example: `drop_after=500,seed=3,delay_ms=20,duplicate_p=0.01,halt=xyz:BBB@30`.

From tests only, `FaultController.stall(kind, coin)` makes one market-data stream of the open
connections go silent (no updates, not even the snapshot of a new subscription) while the
socket, its pongs and every other stream go on: the stale stream seen on mainnet
(docs/exchange/freshness.md). By default a resubscribe (unsubscribe, then subscribe) heals it;
with `through_resubscribe=True` only a new connection does.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

_FLAG_KEYS = ("withhold_snapshot", "withhold_ack", "no_pong")
_INT_KEYS = (
    "drop_after",
    "seed",
    "delay_ms",
    "delay_snapshot_ms",
    "delay_ack_ms",
    "delay_post_ms",
    "reject_next",
)
_DECIMAL_KEYS = ("drop_every_s", "duplicate_p")
FAULT_KEYS = (*_INT_KEYS, *_DECIMAL_KEYS, *_FLAG_KEYS, "halt")


class FaultSpecError(ValueError):
    """A --faults SPEC that cannot be understood; the message names the offending item."""


@dataclass(frozen=True)
class FaultSpec:
    drop_after: int | None = None
    drop_every_s: Decimal | None = None
    seed: int = 0
    delay_ms: int = 0
    duplicate_p: Decimal = Decimal(0)
    withhold_snapshot: bool = False
    delay_snapshot_ms: int = 0
    withhold_ack: bool = False
    delay_ack_ms: int = 0
    delay_post_ms: int = 0
    reject_next: int = 0
    no_pong: bool = False
    halts: tuple[tuple[str, Decimal], ...] = field(default_factory=tuple)


def parse_faults(spec: str | None) -> FaultSpec:
    """Parse a SPEC string (see the module docstring); raise FaultSpecError on anything odd."""
    if spec is None or not spec.strip():
        return FaultSpec()
    values: dict[str, Any] = {}
    halts: list[tuple[str, Decimal]] = []
    for raw_item in spec.split(","):
        item = raw_item.strip()
        if not item:
            raise FaultSpecError(f"empty item in fault spec {spec!r}")
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise FaultSpecError(f"fault item {item!r} must look like key=value")
        if key not in FAULT_KEYS:
            raise FaultSpecError(
                f"unknown fault {key!r}; known faults: {', '.join(sorted(FAULT_KEYS))}"
            )
        if key == "halt":
            halts.append(_parse_halt(value))
            continue
        if key in values:
            raise FaultSpecError(f"fault {key!r} given twice")
        values[key] = _parse_value(key, value)
    return FaultSpec(**values, halts=tuple(halts))


def _parse_value(key: str, value: str) -> Any:
    if key in _INT_KEYS or key in _FLAG_KEYS:
        if not value.isdigit():
            raise FaultSpecError(f"fault {key}={value!r}: expected a non-negative integer")
        number = int(value)
        if key in _FLAG_KEYS:
            if number not in (0, 1):
                raise FaultSpecError(f"fault {key}={value!r}: expected 0 or 1")
            return bool(number)
        if key == "drop_after" and number == 0:
            raise FaultSpecError("fault drop_after=0: must be at least 1 frame")
        return number
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise FaultSpecError(f"fault {key}={value!r}: expected a number") from None
    if not number.is_finite() or number < 0:
        raise FaultSpecError(f"fault {key}={value!r}: expected a finite number >= 0")
    if key == "duplicate_p" and number > 1:
        raise FaultSpecError(f"fault duplicate_p={value!r}: a probability must be <= 1")
    if key == "drop_every_s" and number == 0:
        raise FaultSpecError("fault drop_every_s=0: the mean interval must be > 0")
    return number


def _parse_halt(value: str) -> tuple[str, Decimal]:
    coin, at, seconds = value.rpartition("@")
    if not at or not coin:
        raise FaultSpecError(f"fault halt={value!r}: expected COIN@SECONDS, e.g. xyz:BBB@30")
    try:
        delay = Decimal(seconds)
    except InvalidOperation:
        raise FaultSpecError(f"fault halt={value!r}: {seconds!r} is not a number") from None
    if not delay.is_finite() or delay < 0:
        raise FaultSpecError(f"fault halt={value!r}: seconds must be >= 0")
    return coin, delay


class _Server(Protocol):
    def drop_all(self) -> int: ...


class _Exchange(Protocol):
    def reject_next_orders(self, n: int, message: str = ...) -> None: ...
    def halt_market(self, coin: str) -> None: ...


@dataclass
class _Release:
    """Callbacks parked by a withhold fault, run when a test releases them."""

    parked: list[Callable[[], None]] = field(default_factory=list)

    def run_all(self) -> int:
        parked, self.parked = self.parked, []
        for callback in parked:
            callback()
        return len(parked)


class FaultController:
    """The live fault settings. Mutable from tests; read by the server on every frame."""

    def __init__(self, spec: FaultSpec | None = None) -> None:
        spec = spec or FaultSpec()
        self._spec = spec
        self.drop_after: int | None = spec.drop_after
        self.delay_ms = spec.delay_ms
        self.duplicate_p = float(spec.duplicate_p)  # a probability, never on the wire
        self.withhold_snapshot = spec.withhold_snapshot
        self.delay_snapshot_ms = spec.delay_snapshot_ms
        self.withhold_ack = spec.withhold_ack
        self.delay_ack_ms = spec.delay_ack_ms
        self.delay_post_ms = spec.delay_post_ms
        self.no_pong = spec.no_pong
        self.random = random.Random(spec.seed)
        self._snapshots = _Release()
        self._acks = _Release()
        self._server: _Server | None = None
        self._exchange: _Exchange | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.halted: list[str] = []
        self.drops = 0
        # (kind, coin) -> (whether a resubscribe leaves it stalled, the stalled sessions)
        self._stalls: dict[tuple[str, str], tuple[bool, set[Any]]] = {}

    # --- wiring (done by the harness) -------------------------------------------------
    def attach(self, server: _Server, exchange: _Exchange) -> None:
        self._server = server
        self._exchange = exchange
        if self._spec.reject_next:
            exchange.reject_next_orders(self._spec.reject_next)

    def start(self) -> None:
        """Start the timed faults (random drops, scheduled halts) on the running loop."""
        if self._spec.drop_every_s is not None:
            self._tasks.append(asyncio.create_task(self._random_drops(self._spec.drop_every_s)))
        for coin, delay in self._spec.halts:
            self._tasks.append(asyncio.create_task(self._halt_later(coin, delay)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    # --- commands from tests --------------------------------------------------------
    def drop_all(self) -> int:
        """Drop every open connection now, abruptly (no close frame); returns how many."""
        if self._server is None:
            raise RuntimeError("fault controller is not attached to a server")
        dropped = self._server.drop_all()
        self.drops += dropped
        return dropped

    def reject_next_orders(self, n: int, message: str | None = None) -> None:
        exchange = self._require_exchange()
        if message is None:
            exchange.reject_next_orders(n)
        else:
            exchange.reject_next_orders(n, message)

    def halt(self, coin: str) -> None:
        """Halt `coin`: the exchange cancels its orders and settles positions at mark."""
        self._require_exchange().halt_market(coin)
        self.halted.append(coin)

    def stall(self, kind: str, coin: str, *, through_resubscribe: bool = False) -> int:
        """Silence the `kind` ("bbo", "activeAssetCtx", "l2Book", ...) stream of `coin` on
        every connection subscribed to it now; returns how many."""
        if self._server is None:
            raise RuntimeError("fault controller is not attached to a server")
        sessions = set(self._server.subscribers(kind, coin))
        self._stalls[(kind, coin)] = (through_resubscribe, sessions)
        return len(sessions)

    def unstall(self, kind: str, coin: str) -> None:
        self._stalls.pop((kind, coin), None)

    def release_snapshots(self) -> int:
        """Stop withholding userFills snapshots and send the parked ones; returns how many."""
        self.withhold_snapshot = False
        return self._snapshots.run_all()

    def release_acks(self) -> int:
        """Stop withholding subscription acks and send the parked ones; returns how many."""
        self.withhold_ack = False
        return self._acks.run_all()

    def clear(self) -> None:
        """Back to a well-behaved exchange (parked acks and snapshots are released)."""
        self.drop_after = None
        self.delay_ms = 0
        self.duplicate_p = 0.0
        self.delay_snapshot_ms = 0
        self.delay_ack_ms = 0
        self.delay_post_ms = 0
        self.no_pong = False
        self.release_acks()
        self.release_snapshots()

    # --- asked by the server --------------------------------------------------------
    def stalled(self, session: Any, kind: str, coin: str) -> bool:
        entry = self._stalls.get((kind, coin))
        return entry is not None and session in entry[1]

    def unsubscribed(self, session: Any, kind: str, coin: str) -> None:
        """`session` ended its `kind` subscription of `coin`: a stall that a resubscribe heals
        ends for it."""
        entry = self._stalls.get((kind, coin))
        if entry is not None and not entry[0]:
            entry[1].discard(session)

    def park_snapshot(self, send: Callable[[], None]) -> bool:
        """Park a snapshot send if snapshots are withheld; True when parked."""
        if self.withhold_snapshot:
            self._snapshots.parked.append(send)
            return True
        return False

    def park_ack(self, send: Callable[[], None]) -> bool:
        if self.withhold_ack:
            self._acks.parked.append(send)
            return True
        return False

    def duplicate_frame(self) -> bool:
        return self.duplicate_p > 0 and self.random.random() < self.duplicate_p

    # --- internals --------------------------------------------------------------------
    def _require_exchange(self) -> _Exchange:
        if self._exchange is None:
            raise RuntimeError("fault controller is not attached to an exchange")
        return self._exchange

    async def _random_drops(self, mean_s: Decimal) -> None:
        rate = 1 / float(mean_s)
        while True:
            await asyncio.sleep(self.random.expovariate(rate))
            self.drop_all()

    async def _halt_later(self, coin: str, delay: Decimal) -> None:
        await asyncio.sleep(float(delay))
        self.halt(coin)


def describe(spec: FaultSpec) -> str:
    """The active faults of a spec, as a SPEC string (for the start-up banner and logs)."""
    parts = []
    default = FaultSpec()
    for f in fields(spec):
        value = getattr(spec, f.name)
        if f.name == "halts":
            parts.extend(f"halt={coin}@{delay}" for coin, delay in value)
        elif value != getattr(default, f.name):
            parts.append(f"{f.name}={int(value) if isinstance(value, bool) else value}")
    return ",".join(parts)
