"""Typed frame decoding vs plain json.loads on the same bbo frames.

    python -m bench.decode [n_frames]

Both sides get the same bytes, as they come off the socket. The last line is
`RESULT typed_us=<per frame> json_us=<per frame> ratio=<json/typed>` (target ratio >= 4).
"""

from __future__ import annotations

import json
import sys
import time

from hip3.protocol.frames import BboFrame, decode_frame

_DEFAULT_FRAMES = 100_000
_ROUNDS = 5  # best of several rounds, to keep scheduler noise out of the comparison


def make_frames(n: int) -> list[bytes]:
    frames = []
    for i in range(n):
        bid = f"{100 + (i % 997) / 100:.2f}"
        ask = f"{100.02 + (i % 997) / 100:.2f}"
        frame = {
            "channel": "bbo",
            "data": {
                "coin": "xyz:NVDA",
                "time": 1_754_450_974_231 + i,
                "bbo": [
                    {"px": bid, "sz": f"{1 + i % 50}.5", "n": 1 + i % 7},
                    {"px": ask, "sz": f"{2 + i % 30}.25", "n": 1 + i % 5},
                ],
            },
        }
        frames.append(json.dumps(frame, separators=(",", ":")).encode())
    return frames


def _best_time(fn, frames: list[bytes]) -> float:
    best = float("inf")
    for _ in range(_ROUNDS):
        start = time.perf_counter()
        fn(frames)
        best = min(best, time.perf_counter() - start)
    return best


def _typed(frames: list[bytes]) -> None:
    for raw in frames:
        decode_frame(raw)


def _json(frames: list[bytes]) -> None:
    loads = json.loads
    for raw in frames:
        loads(raw)


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else _DEFAULT_FRAMES
    frames = make_frames(n)
    sample = decode_frame(frames[0])
    if not isinstance(sample, BboFrame):  # a benchmark of failures would be meaningless
        print(f"decode_frame did not produce a BboFrame: {sample!r}", file=sys.stderr)
        return 1
    typed = _best_time(_typed, frames)
    plain = _best_time(_json, frames)
    typed_us = typed / n * 1e6
    json_us = plain / n * 1e6
    print(f"frames={n} rounds={_ROUNDS} (best round reported)")
    print(f"RESULT typed_us={typed_us:.3f} json_us={json_us:.3f} ratio={json_us / typed_us:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
