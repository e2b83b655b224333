"""hip3's declarative state machines: pure, synchronous, driven by events, emitting commands."""

from machines.base import HipChart
from machines.connection import ConnectionMachine
from machines.flatten import FlattenMachine
from machines.hardstop import HardStopMachine
from machines.order import OrderMachine
from machines.readiness import ReadinessMachine

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
