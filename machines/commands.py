"""Commands: what a machine asks the runtime to do. Plain immutable values, no behaviour.

Machines append these to their outbox; the dispatcher executes them (I/O, timers, fan-out to
other machines). `epoch` ties connection-scoped commands to one socket lifetime so the runtime
can drop a command meant for a connection that no longer exists.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- connection -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenSocket:
    epoch: int


@dataclass(frozen=True, slots=True)
class CloseSocket:
    epoch: int
    reason: str


@dataclass(frozen=True, slots=True)
class SendSubscriptions:
    epoch: int


@dataclass(frozen=True, slots=True)
class StartReconciliation:
    epoch: int


@dataclass(frozen=True, slots=True)
class SendPing:
    epoch: int


@dataclass(frozen=True, slots=True)
class EpochEnded:
    epoch: int
    reason: str


# --- readiness --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadyChanged:
    epoch: int
    trading: bool
    md_ready: frozenset[str]


@dataclass(frozen=True, slots=True)
class MarketExcluded:
    epoch: int
    market: str
    reason: str


# --- orders -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReconcileOrder:
    cloid: str
    oid: int | None


@dataclass(frozen=True, slots=True)
class OrderTerminal:
    cloid: str
    state: str
    reason: str | None = None  # the exchange's words for a rejection, when it gave any


# --- hard stop --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlockEntries:
    reason: str


@dataclass(frozen=True, slots=True)
class CancelAllOrders:
    attempt: int


@dataclass(frozen=True, slots=True)
class FlattenAllPositions:
    attempt: int


@dataclass(frozen=True, slots=True)
class VerifyFlat:
    attempt: int


@dataclass(frozen=True, slots=True)
class HardStopHalted:
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HardStopRearmed:
    pass


# --- flatten ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendFlattenOrder:
    market: str
    attempt: int


@dataclass(frozen=True, slots=True)
class FlattenAttemptFailed:
    """One counted failure of a flatten attempt; `failures` in a row for this market."""

    market: str
    failures: int
    outcome: str


@dataclass(frozen=True, slots=True)
class FlattenFailed:
    """The market's FlattenMachine gave up (parked in `failed`) after `failures` failures."""

    market: str
    failures: int
    outcome: str
