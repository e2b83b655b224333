"""Reading a recording: each line's frame comes out exactly as the bot's own decoder makes it."""

from __future__ import annotations

import gzip
from pathlib import Path

import msgspec
import pytest

from hip3.backtest.data import DataError, open_data
from hip3.protocol.frames import SHORT_FRAME_BYTES, DecodeError, decode_frame

BBO = (
    b'{"channel":"bbo","data":{"coin":"xyz:AAA","time":1,"bbo":[{"px":"1.5","sz":"2","n":1},null]}}'
)
CTX = (
    b'{"channel":"activeAssetCtx","data":{"coin":"xyz:AAA","ctx":{"oraclePx":"25.015",'
    b'"markPx":"25.013","midPx":"25","funding":"-0.0000624","impactPxs":["24.98","25.01"]}}}'
)
BOOK = b'{"channel":"l2Book","data":{"coin":"xyz:AAA","time":2,"levels":[[%s],[]]}}' % b",".join(
    [b'{"px":"%d","sz":"1","n":1}' % (100 - i) for i in range(40)]  # past the short-frame size
)
FRAMES = [
    BBO,
    CTX,
    BOOK,
    b'{"channel":"bbo","data":{"coin":"xyz:AAA","time":1,"bbo":[{"px":"abc","sz":"2","n":1},null]}}',
    b'{"channel":"activeAssetCtx","data":{"coin":"xyz:AAA","ctx":{"oraclePx":"NaN","markPx":"1"}}}',
    b'{"channel":"bbo","data":{"coin":"xyz:AAA","time":-1,"bbo":[null,null]}}',
    b'{"channel":"candle","data":{}}',
    b'{"data":{}}',
    b'{"channel":"pong","data":' + b"[" * 600 + b"]" * 600 + b"}",  # deep and long
    b'{"channel":"error","data":' + b"[" * 200 + b"]" * 200 + b"}",  # deep and short
    b'"a string"',
    b"{}",
]


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return path


def test_every_frame_is_what_the_bots_decoder_makes_of_it(tmp_path: Path) -> None:
    assert len(BOOK) > SHORT_FRAME_BYTES
    lines = [b'{"t":%d,"f":%s}' % (1_000 + i, frame) for i, frame in enumerate(FRAMES)]
    got = list(open_data(write(tmp_path / "r.ndjson.gz", lines)).frames())
    assert [(t, n) for t, _f, n in got] == [(1_000 + i, i + 1) for i in range(len(FRAMES))]
    for (_t, frame, _n), raw in zip(got, FRAMES, strict=True):
        expected = decode_frame(raw)
        assert type(frame) is type(expected)
        assert frame == expected
    kinds = [f.kind for _t, f, _n in got if isinstance(f, DecodeError)]
    assert kinds == [
        "invalid",
        "invalid",
        "invalid",
        "unknown_channel",
        "missing_channel",
        "too_deep",
        "invalid",
        "not_object",
        "missing_channel",
    ]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b'{"t":0,"f":%s}' % BBO, "line 2: receive time 0 is not a Unix time in ns"),
        (b'{"t":-5,"f":{"channel":"pong"}}', "line 2: receive time -5 is not a Unix time in ns"),
        (b'{"t":"1","f":%s}' % BBO, "line 2: Expected `int`, got `str` - at `$.t`"),
        (b'{"f":%s}' % BBO, "line 2: Object missing required field `t`"),
        (b'{"t":1,"f":%s' % BBO, "line 2: "),
    ],
)
def test_a_bad_envelope_stops_the_replay_at_its_line(tmp_path: Path, line, error) -> None:
    path = write(tmp_path / "r.ndjson.gz", [b'{"t":1,"f":%s}' % CTX, line])
    with pytest.raises(DataError) as info:
        list(open_data(path).frames())
    assert str(info.value).startswith(f"{path}: bad recording {error}")
    assert "\n" not in str(info.value)


def test_an_envelope_decoded_in_one_pass_agrees_with_two(tmp_path: Path) -> None:
    # extra envelope keys are ignored and a repeated key keeps its last value, in either pass
    lines = [
        b'{"x":[1,2],"t":7,"f":%s,"y":null}' % BBO,
        b'{"t":8,"f":{"channel":"bogus"},"f":%s}' % CTX,
        b'{"t":9,"f":%s,"f":{"channel":"bogus"}}' % CTX,
    ]
    got = list(open_data(write(tmp_path / "r.ndjson.gz", lines)).frames())
    assert [t for t, _f, _n in got] == [7, 8, 9]
    assert got[0][1] == decode_frame(BBO) and got[1][1] == decode_frame(CTX)
    assert got[2][1] == decode_frame(b'{"channel":"bogus"}')
    assert msgspec.json.decode(lines[0])["t"] == 7
