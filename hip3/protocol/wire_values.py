"""Constrained types for the numbers and ids inside inbound frames and info answers.

The exchange sends decimals as strings and ids and times as JSON integers
(https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/notation). Each type here
is a msgspec annotation, so the check happens inside the one decode pass: a price "abc", an
oracle "NaN" or a negative oid makes the whole frame a decode failure that names the field,
and nothing downstream ever has to parse an unchecked string. Decimal strings stay `str`
(the strategy turns them into `Decimal`); the patterns accept exactly the plain positional
form the exchange uses, so `Decimal(value)` of a checked value is always finite.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

__all__ = [
    "MAX_DECIMAL_CHARS",
    "MAX_TIME_MS",
    "NON_NEGATIVE_BODY",
    "POSITIVE_BODY",
    "SIGNED_BODY",
    "Address",
    "Cloid",
    "Coin",
    "Count",
    "NonNegativeDecimal",
    "Oid",
    "PositiveDecimal",
    "Side",
    "SignedDecimal",
    "TimeMs",
    "describe_constraint",
    "is_cloid",
    "is_non_negative_decimal",
    "is_oid",
    "is_positive_decimal",
    "is_signed_decimal",
    "joined_pattern",
    "remember_level",
    "require_non_negative",
    "require_positive",
    "require_signed",
]

# Wire decimals are short (5 significant figures for prices, szDecimals <= 6 for sizes, sums
# of notionals): at most 20 digits on each side of the point leaves ample room and keeps a
# megabyte of digits out.
MAX_DECIMAL_CHARS = 41
# Timestamps are Unix milliseconds: a negative one, or one past the year 9999, is not a time
# but garbage. (Whether a plausible time is too far ahead of the local clock is a freshness
# question, decided by the gates, not here.)
MAX_TIME_MS = 253_402_300_799_999
# oids, tids and liquidation ids are non-negative integers; msgspec bounds fit in an int64.
_MAX_ID = 2**63 - 1

# Pattern bodies, unanchored so that `joined_pattern` can chain them. Possessive quantifiers:
# a digit run is never given back, which keeps a failing match from backtracking.
NON_NEGATIVE_BODY = r"[0-9]{1,20}+(?:\.[0-9]{1,20}+)?+"
SIGNED_BODY = "-?" + NON_NEGATIVE_BODY
# a non-zero digit somewhere in the number (the lookahead cannot pass a separator)
POSITIVE_BODY = r"(?=[0-9.]*[1-9])" + NON_NEGATIVE_BODY

_NON_NEGATIVE = rf"\A{NON_NEGATIVE_BODY}\Z"
_SIGNED = rf"\A{SIGNED_BODY}\Z"
_POSITIVE = rf"\A{POSITIVE_BODY}\Z"
_CLOID = r"\A0x[0-9a-fA-F]{32}\Z"
# "BTC", "xyz:NVDA", "@107", "PURR/USDC": a name, optionally after one "dex:" prefix; both
# parts non-empty, no spaces.
_COIN = r"\A(?:[^:\s]{1,16}:)?[^:\s]{1,40}\Z"
_ADDRESS = r"\A0x[0-9a-fA-F]{40}\Z"

PositiveDecimal = Annotated[str, msgspec.Meta(pattern=_POSITIVE)]
NonNegativeDecimal = Annotated[str, msgspec.Meta(pattern=_NON_NEGATIVE)]
SignedDecimal = Annotated[str, msgspec.Meta(pattern=_SIGNED)]
TimeMs = Annotated[int, msgspec.Meta(ge=0, le=MAX_TIME_MS)]
Oid = Annotated[int, msgspec.Meta(ge=0, le=_MAX_ID)]
Count = Annotated[int, msgspec.Meta(ge=0, le=_MAX_ID)]
Cloid = Annotated[str, msgspec.Meta(pattern=_CLOID)]
Coin = Annotated[str, msgspec.Meta(pattern=_COIN)]
Address = Annotated[str, msgspec.Meta(pattern=_ADDRESS)]
Side = Literal["A", "B"]

# msgspec's message quotes the regex; a log line should say what was expected instead.
_PATTERN_NAMES = {
    _POSITIVE: "a decimal string > 0",
    _NON_NEGATIVE: "a decimal string >= 0",
    _SIGNED: "a decimal string",
    _CLOID: "a cloid (0x + 32 hex digits)",
    _COIN: "a coin name such as BTC or dex:COIN",
    _ADDRESS: "an address (0x + 40 hex digits)",
}

_POSITIVE_RE = re.compile(_POSITIVE)
_NON_NEGATIVE_RE = re.compile(_NON_NEGATIVE)
_SIGNED_RE = re.compile(_SIGNED)
_CLOID_RE = re.compile(_CLOID)


def joined_pattern(bodies: list[str], separator: str = "|") -> re.Pattern:
    """One pattern for several values joined by `separator`, each matching its body in turn.

    A frame with many numbers is checked by one regex call on the joined text instead of one
    call per number. No body matches the separator, so a value that carries one cannot shift
    the others into place: the text would have a segment too many and fail.
    """
    return re.compile(r"\A" + re.escape(separator).join(bodies) + r"\Z")


def is_positive_decimal(value: object) -> bool:
    """The same check as `PositiveDecimal`, for values picked out of untyped JSON."""
    return type(value) is str and _POSITIVE_RE.search(value) is not None


def is_non_negative_decimal(value: object) -> bool:
    """The same check as `NonNegativeDecimal`, for values picked out of untyped JSON."""
    return type(value) is str and _NON_NEGATIVE_RE.search(value) is not None


def is_signed_decimal(value: object) -> bool:
    """The same check as `SignedDecimal`, for values picked out of untyped JSON."""
    return type(value) is str and _SIGNED_RE.search(value) is not None


def is_cloid(value: object) -> bool:
    """The same check as `Cloid`, for values picked out of untyped JSON."""
    return type(value) is str and _CLOID_RE.search(value) is not None


def is_oid(value: object) -> bool:
    """The same check as `Oid` (bool is not an int here)."""
    return type(value) is int and 0 <= value <= _MAX_ID


# Market data repeats the same few prices and sizes frame after frame. The hottest frame
# (bbo) checks a value by set membership first and runs the pattern only for a value not
# seen before; a set holds only values that passed, and is emptied when full, so a flood
# of distinct numbers costs the pattern check and bounded memory, never a wrong answer.
_KNOWN_LIMIT = 8192
KNOWN_POSITIVE: set[str] = set()
KNOWN_NON_NEGATIVE: set[str] = set()
KNOWN_SIGNED: set[str] = set()


def _require(value: object, known: set[str], pattern: re.Pattern, field: str, what: str) -> None:
    if type(value) is str and value in known:
        return
    if type(value) is not str or not pattern.search(value):
        raise ValueError(f"{field}: expected {what}")
    _remember(known, value)


def _remember(known: set[str], value: str) -> None:
    if len(known) >= _KNOWN_LIMIT:
        known.clear()
    known.add(value)


def remember_level(px: str, sz: str) -> None:
    """A book level whose px (> 0) and sz (>= 0) passed their patterns in a joined check:
    known from now on, as if `require_positive` and `require_non_negative` had passed them."""
    _remember(KNOWN_POSITIVE, px)
    _remember(KNOWN_NON_NEGATIVE, sz)


def require_positive(value: object, field: str) -> None:
    """Raise ValueError naming `field` unless `value` is a decimal string > 0."""
    _require(value, KNOWN_POSITIVE, _POSITIVE_RE, field, _PATTERN_NAMES[_POSITIVE])


def require_non_negative(value: object, field: str) -> None:
    """Raise ValueError naming `field` unless `value` is a decimal string >= 0."""
    _require(value, KNOWN_NON_NEGATIVE, _NON_NEGATIVE_RE, field, _PATTERN_NAMES[_NON_NEGATIVE])


def require_signed(value: object, field: str) -> None:
    """Raise ValueError naming `field` unless `value` is a decimal string."""
    _require(value, KNOWN_SIGNED, _SIGNED_RE, field, _PATTERN_NAMES[_SIGNED])


_REGEX_IN_MESSAGE = re.compile(r"matching regex '((?:[^'\\]|\\.)*)'")


def describe_constraint(message: str) -> str:
    """msgspec's validation message with any quoted pattern replaced by its plain meaning."""

    def name(match: re.Match) -> str:
        pattern = match.group(1).replace("\\\\", "\\")
        return f"({_PATTERN_NAMES.get(pattern, 'a constrained string')})"

    return _REGEX_IN_MESSAGE.sub(name, message)
