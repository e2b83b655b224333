"""Typed frame decoding vs plain json.loads on the same bbo frames.

    python -m bench.decode [n_frames]

Both sides get the same bytes, as they come off the socket; the typed side includes the
checks of every number in the frame. A first RESULT line times activeAssetCtx frames (the
oracle moves, ten numbers each, every one different from the last frame's); the last line is
`RESULT typed_us=<per frame> json_us=<per frame> ratio=<json/typed>` for bbo frames (target
ratio >= 4).
"""

from __future__ import annotations

import json
import sys
import time

from hip3.protocol.frames import ActiveAssetCtxFrame, BboFrame, decode_frame

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


def make_ctx_frames(n: int) -> list[bytes]:
    frames = []
    for i in range(n):
        ctx = {
            "funding": f"-0.0000{100 + i % 97}",
            "openInterest": f"{1000 + i}.5",
            "prevDayPx": "98.5",
            "dayNtlVlm": f"{100_000 + 13 * i}.25",
            "premium": f"0.000{1 + i % 9}",
            "oraclePx": f"{100 + (i % 997) / 100:.2f}",
            "markPx": f"{100.01 + (i % 991) / 100:.2f}",
            "midPx": f"{100.02 + (i % 983) / 100:.2f}",
            "impactPxs": [f"{99 + (i % 89) / 100:.2f}", f"{101 + (i % 83) / 100:.2f}"],
            "dayBaseVlm": f"{1000 + 3 * i}",
        }
        frame = {"channel": "activeAssetCtx", "data": {"coin": "xyz:NVDA", "ctx": ctx}}
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
    ctx_frames = make_ctx_frames(max(1, n // 10))
    if not isinstance(decode_frame(ctx_frames[0]), ActiveAssetCtxFrame):
        print(f"decode_frame refused a ctx frame: {decode_frame(ctx_frames[0])!r}", file=sys.stderr)
        return 1
    ctx_typed = _best_time(_typed, ctx_frames) / len(ctx_frames) * 1e6
    ctx_json = _best_time(_json, ctx_frames) / len(ctx_frames) * 1e6
    print(f"RESULT ctx_typed_us={ctx_typed:.3f} ctx_json_us={ctx_json:.3f}")
    typed = _best_time(_typed, frames)
    plain = _best_time(_json, frames)
    typed_us = typed / n * 1e6
    json_us = plain / n * 1e6
    print(f"frames={n} rounds={_ROUNDS} (best round reported)")
    print(f"RESULT typed_us={typed_us:.3f} json_us={json_us:.3f} ratio={json_us / typed_us:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
