"""Size and time of `hip3 journal --html` for one hour of journal.

    python -m bench.html_report [minutes]

Two journals are written through the journal's own writer at the rates a seed-11 simulator run
showed (trading: 3.45 signals/s, 1.2 round trips/s of one entry and one exit fill, every order
answered after 0-20 ms; observation: 3.75 signals/s with follow-ups at +1, +3 and +5 s), with
seeded randomness. Each is read and rendered the way the command does it. Prints
`RESULT journal=<kind> minutes=<n> report_kb=<size> render_ms=<read and render> rows=<rows>`.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

from hip3.journal import Journal
from hip3.journal.html_report import load_report, render_html

COINS = ("xyz:AAA", "xyz:BBB", "xyz:CCC", "xyz:DDD")
START_MS = 1_790_000_000_000


def _book(rng: random.Random, mid: float) -> dict[str, str]:
    return {
        "bid_px": f"{mid * 0.9995:.4f}",
        "ask_px": f"{mid * 1.0005:.4f}",
        "oracle_px": f"{mid * (1 + rng.uniform(-0.004, 0.004)):.4f}",
        "mark_px": f"{mid:.4f}",
    }


def write_trading(path: Path, minutes: float, rng: random.Random) -> int:
    clock = [START_MS]
    rows = 0
    with Journal(path, mode="trading", network="sim", clock_ms=lambda: clock[0]) as j:
        tid = 0
        for k in range(int(minutes * 60 * 1.2)):
            ts = START_MS + int(k / 1.2 * 1000)
            coin, is_buy = rng.choice(COINS), rng.random() < 0.5
            px = 10 + rng.uniform(-1, 1)
            for _blocked in range(2):  # 3.45 signals/s: about two of them blocked per entry
                j.signal(ts_ms=ts, coin=coin, is_buy=is_buy, ref_px=f"{px:.4f}",
                         edge_bps=rng.uniform(5, 60), size="2", outcome="blocked:existing_position",
                         **_book(rng, px))  # fmt: skip
            j.signal(ts_ms=ts, coin=coin, is_buy=is_buy, ref_px=f"{px:.4f}",
                     edge_bps=rng.uniform(5, 60), size="2", outcome="sent", **_book(rng, px))  # fmt: skip
            for leg, side in (("entry", is_buy), ("flatten", not is_buy)):
                cloid = f"0x{k:030x}{leg[0]}"
                sent = ts + (0 if leg == "entry" else 400)
                j.order(ts_ms=sent, cloid=cloid, coin=coin, is_buy=side, px=f"{px:.4f}",
                        sz="2", reduce_only=leg != "entry", purpose=leg)  # fmt: skip
                j.order_transition(ts_ms=sent, cloid=cloid, source="created", target="sent",
                                   event="sent")  # fmt: skip
                j.order_transition(ts_ms=sent + int(rng.expovariate(1 / 3)), cloid=cloid,
                                   source="sent", target="filled", event="filled_at_post")  # fmt: skip
                tid += 1
                fill_px = px * (1 + rng.gauss(0, 0.002))
                j.fill(ts_ms=sent + 1, tid=tid, coin=coin, is_buy=side, px=f"{fill_px:.4f}",
                       sz="2", fee=f"{fill_px * 2 * 0.0009:.6f}",
                       closed_pnl="0" if leg == "entry" else f"{rng.gauss(0.004, 0.02):.6f}",
                       oid=tid, cloid=cloid, snapshot=False)  # fmt: skip
                rows += 4
            rows += 3
            if k % 500 == 0:
                j.flush()
        clock[0] = START_MS + int(minutes * 60_000)
    return rows


def write_observation(path: Path, minutes: float, rng: random.Random) -> int:
    clock = [START_MS]
    rows = 0
    with Journal(path, mode="observation", network="sim", clock_ms=lambda: clock[0]) as j:
        for k in range(int(minutes * 60 * 3.75)):
            ts = START_MS + int(k / 3.75 * 1000)
            coin, px = rng.choice(COINS), 10 + rng.uniform(-1, 1)
            sid = j.signal(ts_ms=ts, coin=coin, is_buy=rng.random() < 0.5, ref_px=f"{px:.4f}",
                           edge_bps=rng.uniform(5, 60), size="2", outcome="observation",
                           **_book(rng, px))  # fmt: skip
            for offset in (1.0, 3.0, 5.0):
                j.signal_followup(sid, offset_s=offset, ts_ms=ts + int(offset * 1000),
                                  **_book(rng, px * (1 + rng.gauss(0, 0.001))))  # fmt: skip
            rows += 4
            if k % 500 == 0:
                j.flush()
        clock[0] = START_MS + int(minutes * 60_000)
    return rows


def main(argv: list[str]) -> None:
    minutes = float(argv[0]) if argv else 60.0
    with tempfile.TemporaryDirectory() as tmp:
        for kind, write in (("trading", write_trading), ("observation", write_observation)):
            path = Path(tmp) / f"{kind}.sqlite"
            rows = write(path, minutes, random.Random(11))
            started = time.perf_counter()
            page = render_html(load_report(path))
            elapsed_ms = (time.perf_counter() - started) * 1000
            size_kb = len(page.encode()) / 1024
            print(
                f"RESULT journal={kind} minutes={minutes:g} report_kb={size_kb:.0f}"
                f" render_ms={elapsed_ms:.0f} rows={rows}"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
