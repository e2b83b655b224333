"""Deeply nested frames are refused without recursion.

The bot runs with Python's recursion limit raised to 100,000 (eth-account's py_ecc import
does that), where a recursive JSON decoder runs the C stack out on a 40,000-deep frame and
the process dies with SIGSEGV. The decoding runs in a subprocess with that limit, so a
segfault fails the test instead of killing pytest.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.protocol.frames import DecodeError, decode_frame
from hip3.protocol.nesting import MAX_DEPTH, nesting_depth, within_depth

_CHILD = textwrap.dedent(
    """
    import sys
    sys.setrecursionlimit(100_000)  # what importing eth-account does to the bot
    from hip3.protocol.frames import decode_frame
    from hip3.protocol.info_answers import check_info_answer

    depth = int(sys.argv[1])
    opener, closer = (b"[", b"]") if sys.argv[2] == "list" else (b'{"a":', b"}")
    inner = opener * depth + b"1" + closer * depth
    results = [
        decode_frame(b'{"channel":"bbo","data":' + inner + b"}"),
        decode_frame((b'{"channel":"bbo","data":' + inner + b"}").decode()),
        decode_frame(inner),
        # the channel after the payload: a decoder would have to skip the payload first
        decode_frame(b'{"data":' + inner + b',"channel":"post"}'),
        # an info answer's data is skipped by the frame decoder and decoded later
        decode_frame(
            b'{"channel":"post","data":{"id":1,"response":{"type":"info",'
            b'"payload":{"type":"openOrders","data":' + inner + b"}}}}"
        ),
        decode_frame(
            b'{"channel":"subscriptionResponse","data":{"method":"subscribe",'
            b'"subscription":' + inner + b"}}"
        ),
    ]
    for r in results:
        print(type(r).__name__, getattr(r, "kind", ""), len(getattr(r, "raw_prefix", "")))
    print("answer", check_info_answer("openOrders", inner))
    """
)


@pytest.mark.parametrize("depth", [40_000, 1_000_000])
@pytest.mark.parametrize("shape", ["list", "object"])
def test_deep_frames_are_refused_in_a_process_with_a_raised_recursion_limit(
    depth: int, shape: str
) -> None:
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(depth), shape],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, f"exit {child.returncode}: {child.stderr[-2000:]}"
    lines = child.stdout.splitlines()
    assert len(lines) == 7, child.stdout
    for line in lines[:6]:
        name, kind, prefix_len = line.split()
        assert (name, kind) == ("DecodeError", "too_deep")
        assert int(prefix_len) <= 120  # the log shows a prefix, never the frame
    assert lines[6].startswith("answer BadAnswer(") and "too deeply" in lines[6]


def test_a_short_deep_frame_is_still_refused() -> None:
    """Below the size where the depth scan runs, the typed decode refuses it (no type here
    nests that deep) and the bounded classification says so."""
    raw = b'{"channel":"bbo","data":' + b"[" * 400 + b"]" * 400 + b"}"
    assert len(raw) < 1024
    result = decode_frame(raw)
    assert isinstance(result, DecodeError) and result.kind == "invalid"


def test_depth_counts_brackets_outside_strings_only() -> None:
    assert nesting_depth(b"1") == 0
    assert nesting_depth(b'{"a":[1,{"b":[]}]}') == 4
    assert nesting_depth(b'["[[[[", "\\"[[[", {"k": "}}}}"}]') == 2
    assert nesting_depth(b"[]" * 10_000) == 1
    assert nesting_depth(b"[" * 10_000) == MAX_DEPTH + 1  # stops at the limit
    assert nesting_depth(b"[" * 10, limit=3) == 4


def test_within_depth_takes_bytes_and_text() -> None:
    assert within_depth(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    assert not within_depth(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    assert within_depth("[" * 200 + "]" * 200, limit=200)
    # many brackets, shallow: the common shape of a large info answer
    assert within_depth(json.dumps([{"a": [1, 2]} for _ in range(5000)]).encode())


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


_json_values = st.recursive(
    st.none() | st.integers() | st.text(alphabet='ab[]{}"\\:, ', max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='k[{"\\', max_size=3), children, max_size=3)
    ),
    max_leaves=20,
)


@given(_json_values)
def test_depth_of_any_json_text_is_its_nesting(value: object) -> None:
    """Brackets and quotes inside strings never count, with escapes (the regex path) or
    without (the split-at-quotes path)."""
    raw = json.dumps(value).encode()
    assert nesting_depth(raw, limit=10_000) == _depth(value)
