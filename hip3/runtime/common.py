"""Small things the dispatcher and its components share."""

from __future__ import annotations

import logging
from decimal import Decimal

import msgspec

# one logger for the whole runtime, whichever component a line comes from
log = logging.getLogger("hip3.runtime.dispatcher")
BPS = Decimal(10_000)
json_decoder = msgspec.json.Decoder()


class FatalError(RuntimeError):
    """The bot cannot continue safely (e.g. a configured market does not exist)."""


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def dec(x: float) -> Decimal:
    """A config float as the exact decimal its text meant."""
    return Decimal(repr(x))
