"""hip3's declarative state machines: pure, synchronous, driven by events, emitting commands."""

from .base import HipChart
from .connection import ConnectionMachine
from .flatten import FlattenMachine
from .hardstop import HardStopMachine
from .order import OrderMachine
from .readiness import ReadinessMachine

# Every concrete machine, in the order the diagrams are listed.
MACHINES: list[type[HipChart]] = [
    ConnectionMachine,
    ReadinessMachine,
    OrderMachine,
    HardStopMachine,
    FlattenMachine,
]

__all__ = [
    "MACHINES",
    "ConnectionMachine",
    "FlattenMachine",
    "HardStopMachine",
    "HipChart",
    "OrderMachine",
    "ReadinessMachine",
]
