"""`hip3 sim`: run the local Hyperliquid-compatible exchange until interrupted.

On start it prints, one per line and flushed, `ws_url=...`, `address=0x...` and
`private_key=0x...` (a funded test account; the key exists only inside this simulator),
so a script can read the first three lines and connect.

The exchange's timing model (`hip3.sim.timing`: 70 ms blocks, in-block ordering, commit,
network latency) is on, as the scenario's `[timing]` sets it; `--latency-ms` and
`--block-ms` override it and `--no-timing` answers every action at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import sys
from dataclasses import replace
from decimal import Decimal, InvalidOperation

from hip3.sim.faults import FAULT_KEYS, FaultSpecError, describe, parse_faults
from hip3.sim.latency import LatencySpecError, parse_latency
from hip3.sim.scenario import Scenario, ScenarioError, load_scenario
from hip3.sim.timing import TimingConfig

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _fund_arg(text: str) -> tuple[str, Decimal]:
    address, sep, amount = text.rpartition(":")
    if not sep or not _ADDRESS.match(address):
        raise argparse.ArgumentTypeError(f"--fund {text!r}: expected ADDR:USDC, e.g. 0xabc...:1000")
    try:
        usdc = Decimal(amount)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"--fund {text!r}: {amount!r} is not a number") from None
    if not usdc.is_finite() or usdc <= 0:
        raise argparse.ArgumentTypeError(f"--fund {text!r}: the amount must be positive")
    return address.lower(), usdc


def _volume_arg(text: str) -> Decimal:
    try:
        usd = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(
            f"--schedule-cancel-volume {text!r}: not a number"
        ) from None
    if not usd.is_finite() or usd < 0:
        raise argparse.ArgumentTypeError(
            f"--schedule-cancel-volume {text!r}: must be a finite amount >= 0"
        )
    return usd


def _port(text: str) -> int:
    """A TCP port number, refused by argparse (one line, exit 2) when out of range."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=_port, default=8765, help="port (0 picks a free one)")
    parser.add_argument("--seed", type=int, default=7, help="seed for feeds and test accounts")
    parser.add_argument(
        "--scenario",
        default="default",
        help="scenario TOML file, or a bundled name: default, calm, jumpy, contested, many_dexes",
    )
    parser.add_argument(
        "--faults",
        default=None,
        metavar="SPEC",
        help="comma-separated key=value faults, e.g. drop_after=500,delay_ms=20,halt=xyz:BBB@30; "
        f"keys: {', '.join(FAULT_KEYS)} (see hip3/sim/faults.py)",
    )
    parser.add_argument(
        "--fund",
        action="append",
        type=_fund_arg,
        default=[],
        metavar="ADDR:USDC",
        help="deposit USDC to an address on the first perp dex, as a new account has it; "
        "fund HIP-3 dexes with sendAsset (repeatable)",
    )
    parser.add_argument(
        "--no-feeds", action="store_true", help="no oracle or makers: prices stay where they are"
    )
    parser.add_argument(
        "--latency-ms",
        default=None,
        metavar="MEDIAN[,P99]",
        help="network delay of answers and user events, e.g. 200,900 (the default) or 0; "
        "one number is a constant delay",
    )
    parser.add_argument(
        "--block-ms", type=_positive_int, default=None, metavar="MS", help="block length (70)"
    )
    parser.add_argument(
        "--no-timing",
        action="store_true",
        help="no blocks and no latency: every action executes and is answered on arrival",
    )
    parser.add_argument(
        "--schedule-cancel-volume",
        type=_volume_arg,
        default=None,
        metavar="USD",
        help="volume an account must have traded before scheduleCancel is allowed "
        "(default 1000000, as live; 0 allows it for every account)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def timing_config(args: argparse.Namespace, scenario: Scenario) -> TimingConfig | None:
    """The timing model this run uses: the scenario's, with the command line's overrides."""
    if args.no_timing:
        if args.latency_ms is not None or args.block_ms is not None:
            raise ScenarioError("--no-timing cannot be combined with --latency-ms or --block-ms")
        return None
    config = scenario.timing
    if args.latency_ms is not None:
        config = replace(config, latency=parse_latency(args.latency_ms))
    if args.block_ms is not None:
        config = replace(config, block_ms=args.block_ms)
    return config


def run(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args.scenario)
        faults = parse_faults(args.faults)
        timing = timing_config(args, scenario)
    except (ScenarioError, FaultSpecError, LatencySpecError) as exc:
        print(f"hip3 sim: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(args, scenario, faults, timing))
    except KeyboardInterrupt:
        return 0


async def _serve(
    args: argparse.Namespace, scenario: Scenario, faults, timing: TimingConfig | None
) -> int:
    from hip3.sim.harness import SimHarness

    harness = SimHarness(
        seed=args.seed,
        scenario=scenario,
        faults=faults,
        feeds=not args.no_feeds,
        host=args.host,
        port=args.port,
        fund=args.fund,
        timing=timing,
        schedule_cancel_min_volume=args.schedule_cancel_volume,
    )
    try:
        await harness.start()
    except OSError as exc:
        print(
            f"hip3 sim: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    address, private_key = harness.account
    key = private_key if private_key.startswith("0x") else "0x" + private_key
    print(f"ws_url={harness.ws_url}")  # HTTP /info and /exchange on the same host:port
    print(f"address={address}")
    print(f"private_key={key}")
    sys.stdout.flush()
    active = describe(faults)
    print(
        f"hip3 sim: scenario={scenario.name} seed={args.seed}"
        + (f" faults={active}" if active else "")
        + f" timing={timing.describe() if timing else 'off'}"
        + (f" competitors={len(scenario.competitors)}" if scenario.competitors else ""),
        file=sys.stderr,
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await harness.stop()
    return 0
