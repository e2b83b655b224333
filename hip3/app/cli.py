"""`hip3 bot`: run the trading bot (by default against the built-in simulator)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from hip3.app.exit_codes import ExitCode, code_for_summary, exposure_line, risk_trips
from hip3.config import ConfigError, load_config
from hip3.keys import SigningKeyError


def _seconds(text: str) -> float:
    """A positive, finite number of seconds (argparse reports anything else in one line)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number of seconds")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        help="TOML configuration (default: built-in defaults = config/default.toml)",
    )
    p.add_argument(
        "--mode", choices=("trading", "observation"), help="override the configured mode"
    )
    p.add_argument(
        "--network", choices=("sim", "testnet", "mainnet"), help="override the configured network"
    )
    p.add_argument(
        "--ws-url",
        help="connect to this websocket (e.g. a running `hip3 sim`) instead of the network's",
    )
    p.add_argument(
        "--key-env", help="with --ws-url: name of the environment variable holding the signing key"
    )
    p.add_argument(
        "--strategy",
        metavar="MODULE:CLASS",
        help="run this strategy ('package.module:Class' or 'path/file.py:Class') instead of the "
        "configured one; its parameters come from [strategy.params]",
    )
    p.add_argument(
        "--duration",
        type=_seconds,
        metavar="SECONDS",
        help="stop (gracefully) after this many seconds",
    )
    p.add_argument(
        "--summary-json", type=Path, metavar="PATH", help="also write the summary as JSON here"
    )
    p.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="write every inbound market-data frame with its receive time here (gzip NDJSON; "
        "`hip3 backtest --data FILE` replays it)",
    )
    p.add_argument("--confirm-mainnet", action="store_true", help="required to trade on mainnet")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.add_argument(
        "--log-json", action="store_true", help="log as JSON lines instead of key=value text"
    )
    p.add_argument(
        "--log-transitions",
        action="store_true",
        help="log every state machine transition at INFO (default: DEBUG)",
    )
    p.add_argument(
        "--no-status",
        action="store_true",
        help="no live status view (it is shown only when stdout is a terminal anyway)",
    )


def run(args: argparse.Namespace) -> int:
    from hip3.metrics.logs import configure_logging

    live_view = sys.stdout.isatty() and not args.no_status
    # the live view owns the terminal: logs keep to warnings so they do not tear the redraw
    level = "WARNING" if live_view and args.log_level in ("DEBUG", "INFO") else args.log_level
    configure_logging(level, json_lines=args.log_json, stream=sys.stderr)
    overrides = {
        "mode": args.mode,
        "network": args.network,
        "ws_url": args.ws_url,
        "confirm_mainnet": True if args.confirm_mainnet else None,
        "strategy.name": args.strategy,
    }
    if args.key_env and not args.ws_url:
        print("hip3 bot: --key-env only applies together with --ws-url", file=sys.stderr)
        return ExitCode.USAGE
    if args.summary_json is not None and not args.summary_json.parent.is_dir():
        # found now, before anything is sent, rather than after the run when the summary
        # has nowhere to go
        print(
            f"hip3 bot: --summary-json {args.summary_json}: the folder "
            f"{args.summary_json.parent} does not exist",
            file=sys.stderr,
        )
        return ExitCode.USAGE
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"hip3 bot: configuration error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    from hip3.app.bot import BotError, run_bot
    from hip3.app.discovery import DiscoveryUnreachable
    from hip3.app.summary import render

    try:
        summary = asyncio.run(
            run_bot(
                cfg,
                duration_s=args.duration,
                key_env=args.key_env,
                status_stream=sys.stdout if live_view else None,
                log_transitions=True if args.log_transitions else None,
                record=args.record,
            )
        )
    except DiscoveryUnreachable as exc:
        print(f"hip3 bot: {exc}; nothing was sent", file=sys.stderr)
        return ExitCode.NEVER_READY
    except (BotError, ConfigError, SigningKeyError) as exc:
        print(f"hip3 bot: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print("hip3 bot: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    print(render(summary))
    recording = summary.get("recording")
    if recording is not None:
        ended = f" (stopped early: {recording['error']})" if recording["error"] else ""
        print(f"recording: {recording['frames']} frames in {recording['path']}{ended}")
    if args.summary_json is not None:
        try:
            args.summary_json.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        except OSError as exc:  # the run's own exit code below still tells its outcome
            print(
                f"hip3 bot: cannot write --summary-json {args.summary_json}: {exc.strerror or exc}",
                file=sys.stderr,
            )
    code = code_for_summary(summary)
    if code is ExitCode.ACCOUNT_REFUSED:
        print(f"hip3 bot: {summary['fatal']}", file=sys.stderr)
    elif code is ExitCode.NEVER_READY:
        print(f"hip3 bot: {summary['never_ready']}; nothing was sent", file=sys.stderr)
    elif code is ExitCode.EXPOSED:
        print(
            f"hip3 bot: ended with exposure or unreconciled ({exposure_line(summary)}); "
            "check the account on the exchange",
            file=sys.stderr,
        )
    elif code is ExitCode.HARDSTOP:
        print(
            f"hip3 bot: HardStop tripped: {'; '.join(risk_trips(summary))}; ended flat and "
            "reconciled",
            file=sys.stderr,
        )
    elif code is ExitCode.FATAL:
        print(f"hip3 bot: fatal: {summary['fatal']}", file=sys.stderr)
    return code
