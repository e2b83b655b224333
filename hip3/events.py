"""Everything that reaches the dispatcher's inbox.

One queue, one consumer: the socket reader, the timer, the operator (signals) and the
shutdown path only ever *put* these; the dispatcher alone acts on them. Each event carries
the epoch it belongs to where that matters, so nothing from an old connection can touch the
state of a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec


@dataclass(slots=True, frozen=True)
class SocketOpened:
    epoch: int


@dataclass(slots=True, frozen=True)
class SocketClosed:
    epoch: int
    reason: str


class FrameIn(msgspec.Struct, frozen=True, gc=False):
    """One decoded inbound frame (or a DecodeError value) with its receive time.

    A msgspec Struct rather than a frozen dataclass like its neighbours: one is made for
    every frame the socket reads, and a frozen dataclass's init costs several times more."""

    epoch: int
    frame: Any
    recv_ns: int


@dataclass(slots=True, frozen=True)
class Tick:
    """Periodic timer: drives heartbeats, timeouts, retries and the dead man's switch."""


@dataclass(slots=True, frozen=True)
class WriteFailed:
    """The writer could not put a frame on the wire (socket gone); its owner is told."""

    epoch: int
    post_id: int | None
    reason: str


@dataclass(slots=True, frozen=True)
class OperatorCommand:
    """From signals or the CLI: "hardstop", "reset", "shutdown", "accept_params"."""

    kind: str
    detail: str = ""


@dataclass(slots=True, frozen=True)
class Signal:
    """A strategy's wish to enter; the executor's gates decide whether it becomes an order."""

    coin: str
    is_buy: bool
    size: Any  # Decimal, already lot-rounded by the strategy or the executor
    ref_px: Any  # Decimal: the quote being taken
    edge_bps: float
    reason: str = "dislocation"
    # priority fee rate the entry pays, in 10^-8 of notional (10000 = 1 bp); 0 = none
    # (hip3.strategy.priority)
    priority: int = 0
