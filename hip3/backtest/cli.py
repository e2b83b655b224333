"""`hip3 backtest`: replay recorded market data through the bot against the simulator's
exchange core, on a virtual clock, and write a journal `hip3 journal` reads."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hip3.app.exit_codes import ExitCode
from hip3.config import ConfigError, load_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        type=Path,
        action="append",
        required=True,
        metavar="FILE",
        help="a recording (hip3 bot --record) or an l2Book archive file (.lz4); repeat to "
        "merge several by receive time",
    )
    p.add_argument("--config", type=Path, help="TOML configuration (default: built-in defaults)")
    p.add_argument(
        "--strategy",
        metavar="full|basic|MODULE:CLASS",
        help="full or basic: the built-in taker with that detector.kind (full: filters and "
        "gates; basic: edge over cost only); 'package.module:Class' or 'path/file.py:Class': "
        "run that strategy instead of the configured one, as `hip3 bot --strategy` does (its "
        "parameters come from [strategy.params])",
    )
    p.add_argument(
        "--mode", choices=("trading", "observation"), help="override the configured mode"
    )
    p.add_argument(
        "--journal",
        type=Path,
        default=Path("data/backtest.sqlite"),
        help="journal to write (replaced if it exists; default: data/backtest.sqlite)",
    )
    p.add_argument("--seed", type=int, default=7, help="seed of every random draw (default 7)")
    p.add_argument(
        "--scenario",
        help="the simulator scenario whose markets, timing and competitors the exchange uses "
        "(default: the config's sim.scenario)",
    )
    p.add_argument(
        "--no-timing",
        action="store_true",
        help="answer every request at once (no blocks, no network delay)",
    )
    p.add_argument(
        "--oracle-from-mid",
        action="store_true",
        help="take each l2Book snapshot's mid as the oracle (the l2Book archive has no oracle)",
    )
    p.add_argument(
        "--summary-json", type=Path, metavar="PATH", help="also write the summary as JSON here"
    )
    p.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def run(args: argparse.Namespace) -> int:
    from hip3.metrics.logs import configure_logging

    configure_logging(args.log_level, stream=sys.stderr)
    overrides: dict = {"mode": args.mode}
    if args.strategy in ("full", "basic"):
        overrides["detector"] = {"kind": args.strategy}
    elif args.strategy is not None:
        if ":" not in args.strategy:
            print(
                f"hip3 backtest: --strategy {args.strategy}: expected full, basic, "
                "'package.module:Class' or 'path/file.py:Class'",
                file=sys.stderr,
            )
            return ExitCode.USAGE
        overrides["strategy.name"] = args.strategy
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"hip3 backtest: configuration error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    from hip3.backtest.engine import BacktestError, run_backtest

    try:
        result = run_backtest(
            cfg,
            args.data,
            journal=args.journal,
            seed=args.seed,
            scenario=args.scenario,
            timing=not args.no_timing,
            oracle_from_mid=args.oracle_from_mid,
        )
    except BacktestError as exc:
        print(f"hip3 backtest: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    s = result.summary
    span_s = (result.last_ns - result.first_ns) / 1e9
    lines = [
        f"journal: {result.journal}",
        f"frames: {result.frames} replayed over {span_s:.1f} s of data, "
        f"{result.frames_to_bot} to the bot",
        f"signals: {s['signals']}  entries: {s['entries_submitted']}  "
        f"strategy orders: {s['strategy_orders_submitted']}  "
        f"exits: {s['exits_submitted']}  fills: {s['fills']}",
        f"realized_pnl: {s['realized_pnl']}  fees: {s['fees']}",
        f"positions: {json.dumps(s['positions'])}  stop: {s['stop']}  "
        f"reconciled: {s['reconciled']}",
    ]
    if s.get("competitor_fills"):
        lines.append(f"competitor_fills: {json.dumps(s['competitor_fills'])}")
    for path in result.truncated:
        lines.append(f"note: {path} ends in a cut (a killed recording); replayed up to it")
    if s.get("fatal"):
        lines.append(f"fatal: {s['fatal']}")
    print("\n".join(lines))
    if args.summary_json is not None:
        try:
            args.summary_json.write_text(json.dumps(s, indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            print(
                f"hip3 backtest: cannot write --summary-json {args.summary_json}: "
                f"{exc.strerror or exc}",
                file=sys.stderr,
            )
            return ExitCode.USAGE
    return ExitCode.OK if not s.get("fatal") else ExitCode.FATAL
