"""Priority fees against competing takers: fill rate and PnL with priority off and on.

    python -m bench.priority [--seconds 60] [--rounds 2] [--seed 7] [--scenario contested]

Each run starts the simulator in its own process with the scenario's competing takers and its
timing model (70 ms blocks, the IOC mempool wait that priority shortens by 45 ms a bp up to
8 bps, network latency; `hip3/sim/scenarios/contested.toml`: a fast taker paying 8 bps and a
slow one paying none), then runs the real bot in this process for `--seconds` with one
priority setting: `off`, `fixed` (8 bps on every entry whose edge covers cost + 8 bps) or
`edge_share` (half the edge above cost, capped at 8 bps). Every run uses the same seed, so
the oracle path, the makers and the competitors are the same; what the bot sees still
depends on when it acts. Runs are interleaved round by round so a change in the machine's
load falls on every setting alike.

The numbers are the exchange's, not the bot's: after each run the simulator reports the
account's fills (an entry is filled when any fill carries its cloid; the bot's journal says
which cloids were entries and what rate each paid), realized PnL and trading fees, and the
HYPE its staking balance lost (priority paid, at the scenario's HYPE price). Per run and per
setting it prints `RESULT` lines with: entries sent, entries filled, fill rate, the fill rate
of entries sent with and without priority, realized PnL net of trading fees, priority paid,
PnL net of both, and the priority the bot's journal computed (px x sz x rate per fill: it
should match what the exchange took, to its HYPE rounding). The bot always ends flat (it flattens on stop), so PnL is realized.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.processes import simulator_in_child, start_bot

VARIANTS: dict[str, dict[str, Any]] = {
    "off": {"mode": "off"},
    "fixed8": {"mode": "fixed", "fixed_bps": 8.0, "cap_bps": 8.0},
    "share50": {"mode": "edge_share", "share": 0.5, "cap_bps": 8.0},
}


def simulator_process(conn: Any, seed: int, scenario: str) -> None:
    asyncio.run(_simulate(conn, seed, scenario))


async def _simulate(conn: Any, seed: int, scenario: str) -> None:
    from hip3.sim.harness import SimHarness

    async with SimHarness(seed=seed, scenario=scenario, timing=True) as sim:
        user = sim.account[0]
        staked = sim.exchange.staking.balance(user)
        conn.send((sim.ws_url, user, sim.account[1]))
        await asyncio.to_thread(conn.recv)  # the bot has stopped
        fills = [
            {k: f.get(k) for k in ("cloid", "px", "sz", "fee", "closedPnl", "crossed")}
            for f in sim.exchange.user_fills(user)
        ]
        burned = staked - sim.exchange.staking.balance(user)
        positions = {c: str(s) for c, s in sim.exchange.positions(user).items() if s != 0}
        conn.send((fills, str(burned), str(sim.scenario.hype_usd), positions))


def bot_config(ws_url: str, priority: dict[str, Any], journal: Path) -> Any:
    from hip3.config import load_config

    return load_config(
        overrides={
            "network": "sim",
            "ws_url": ws_url,
            "journal": {"enabled": True, "path": str(journal)},
            "priority": priority,
            # a long run on a contested market: HardStop only for real trouble
            "risk": {"loss_limit_usd": 1_000.0},
            "shutdown": {"flatten_on_exit": True},
        }
    )


async def one_run(name: str, seconds: float, seed: int, scenario: str, tmp: Path) -> dict:
    journal = tmp / f"{name}-{seed}-{id(object())}.sqlite"
    with simulator_in_child(simulator_process, seed, scenario) as pipe:
        url, _address, secret = await asyncio.to_thread(pipe.recv)
        cfg = bot_config(url, VARIANTS[name], journal)
        bot, d = await start_bot(cfg, secret, duration_s=seconds)
        summary = await asyncio.wait_for(bot, timeout=seconds + 60)
        pipe.send("done")
        fills, burned, hype_usd, positions = await asyncio.to_thread(pipe.recv)
    return _measure(name, d, summary, journal, fills, Decimal(burned), Decimal(hype_usd), positions)


def _measure(
    name: str,
    d: Any,
    summary: dict,
    journal: Path,
    fills: list[dict],
    burned: Decimal,
    hype_usd: Decimal,
    positions: dict,
) -> dict:
    db = sqlite3.connect(journal)
    entries = {
        cloid: rate or 0
        for cloid, rate in db.execute(
            "SELECT cloid, MAX(priority_rate) FROM orders WHERE purpose = 'entry' GROUP BY cloid"
        )
    }
    db.close()
    from hip3.journal.report import load_summary

    # the bot's own account of it: px x sz x rate per fill, from its journal
    journal_priority = load_summary(journal).priority.paid_usd
    filled = {f["cloid"] for f in fills if f.get("cloid") in entries}
    paid = [c for c, r in entries.items() if r]
    unpaid = [c for c, r in entries.items() if not r]
    realized = sum((Decimal(f["closedPnl"]) - Decimal(f["fee"]) for f in fills), Decimal(0))
    priority_usd = burned * hype_usd
    return {
        "variant": name,
        "entries": len(entries),
        "filled": len(filled),
        "with_priority": len(paid),
        "with_priority_filled": sum(1 for c in paid if c in filled),
        "without_priority": len(unpaid),
        "without_priority_filled": sum(1 for c in unpaid if c in filled),
        "pnl_after_fees": realized,
        "priority_usd": priority_usd,
        "pnl_net": realized - priority_usd,
        "journal_priority_usd": journal_priority,
        "sent_by_bot": d.executor.entries_sent,
        "reconciled": summary.get("reconciled"),
        "open_positions": len(positions),
    }


def _rate(n: int, of: int) -> str:
    return f"{n / of:.3f}" if of else "nan"


def result_line(r: dict, prefix: str = "") -> str:
    return (
        f"RESULT {prefix}variant={r['variant']} entries={r['entries']} filled={r['filled']}"
        f" fill_rate={_rate(r['filled'], r['entries'])}"
        f" fill_rate_with_priority={_rate(r['with_priority_filled'], r['with_priority'])}"
        f" (n={r['with_priority']})"
        f" fill_rate_without_priority={_rate(r['without_priority_filled'], r['without_priority'])}"
        f" (n={r['without_priority']})"
        f" pnl_after_fees_usd={r['pnl_after_fees']:.4f}"
        f" priority_paid_usd={r['priority_usd']:.4f} pnl_net_usd={r['pnl_net']:.4f}"
        f" journal_priority_usd={r['journal_priority_usd']:.4f}"
    )


async def main_async(args: argparse.Namespace) -> None:
    totals: dict[str, dict] = defaultdict(lambda: defaultdict(Decimal))
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(args.rounds):
            for name in args.variants:
                r = await one_run(name, args.seconds, args.seed, args.scenario, Path(tmp))
                print(
                    result_line(r, prefix=f"round={round_no} ")
                    + f" reconciled={r['reconciled']} open_positions={r['open_positions']}",
                    flush=True,
                )
                for key, value in r.items():
                    if isinstance(value, int | Decimal) and not isinstance(value, bool):
                        totals[name][key] += value
    for name in args.variants:
        t = {"variant": name, **totals[name]}
        print(result_line(t, prefix=f"total rounds={args.rounds} seconds={args.seconds:g} "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="trading time per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of every setting")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scenario", default="contested")
    parser.add_argument(
        "--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="NAME"
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
