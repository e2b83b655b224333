"""How deeply a JSON text nests, measured without parsing it and without recursion.

JSON decoders, msgspec's included, descend one C stack frame per nesting level. Python's
recursion limit normally stops them, but a process that raised that limit (eth-account's
py_ecc import sets it to 100,000) lets a frame of 40,000 brackets run the C stack out: a
segfault, with nothing cancelled. Every inbound text therefore passes `within_depth` before
any decoder sees it. The exchange's deepest frame (a post answer carrying a
clearinghouseState) nests about ten levels; `MAX_DEPTH` leaves ample room.
"""

from __future__ import annotations

import re

__all__ = ["MAX_DEPTH", "nesting_depth", "within_depth"]

MAX_DEPTH = 64

# A JSON string, escapes included. Possessive quantifiers keep the regex engine from
# backtracking over a long string.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN_BRACKETS = frozenset(b"[{")


def nesting_depth(raw: bytes, limit: int = MAX_DEPTH) -> int:
    """The deepest bracket nesting of `raw`, counting only brackets outside strings.

    Strings are cut out (by splitting at quotes when the text has no escapes, else by a
    regex) and everything but brackets dropped at C speed; only the brackets are
    walked in Python, and the walk stops as soon as `limit` is exceeded (returning limit + 1),
    so a megabyte of opening brackets costs `limit` steps. Text that is not valid JSON gets
    some answer; the decoder that runs next rejects it anyway.
    """
    if b"\\" in raw:
        outside = _STRING.sub(b"", raw)
    else:
        # No escapes: every quote opens or closes a string, exactly as a decoder reads it,
        # so the text outside strings is every other piece between quotes.
        outside = b"".join(raw.split(b'"')[::2])
    brackets = outside.translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for b in brackets:
        if b in _OPEN_BRACKETS:
            depth += 1
            if depth > deepest:
                deepest = depth
                if depth > limit:
                    return limit + 1
        else:
            depth -= 1
    return deepest


def within_depth(raw: bytes | str, limit: int = MAX_DEPTH) -> bool:
    """True when `raw` nests no deeper than `limit`.

    The common case costs two C-level counts: a text with at most `limit` opening brackets
    cannot nest deeper than that (every market data frame is in this case).
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if data.count(b"{") + data.count(b"[") <= limit:
        return True
    return nesting_depth(data, limit) <= limit
