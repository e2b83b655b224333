"""`hip3 guard`: the watchdog that cancels and flattens when the bot stops beating.

It reads the bot's own configuration (network, endpoint, account, key source) plus `[guard]`,
opens its own connection, finds the markets of the configured dexes, and watches the heartbeat
file the bot rewrites. While the bot beats it only watches. When the beat stops (the process
died, or hangs: then it is killed first) or the bot's last beat says it stopped, it cancels
every open order, flattens every position (unless `guard.flatten = false`), reads the account
back and exits with a code that says what that read found (`hip3/app/exit_codes.py`): 0 only
when nothing is open.

Why it exists: the exchange's own dead man's switch, `scheduleCancel`, is refused until an
account has traded about $1,000,000 (docs/exchange/actions.md#schedulecancel), and it only
cancels orders, it never closes a position.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from hip3.app.exit_codes import ExitCode
from hip3.config import ConfigError, load_config

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        help="the bot's TOML configuration, with guard.heartbeat_path set",
    )
    p.add_argument(
        "--network", choices=("sim", "testnet", "mainnet"), help="override the configured network"
    )
    p.add_argument("--ws-url", help="connect to this websocket instead of the network's")
    p.add_argument("--key-env", help="name of the environment variable holding the signing key")
    p.add_argument("--heartbeat", type=Path, metavar="PATH", help="override guard.heartbeat_path")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.add_argument(
        "--log-json", action="store_true", help="log as JSON lines instead of key=value text"
    )


def _fail(message: str) -> int:
    print(f"hip3 guard: {message}", file=sys.stderr, flush=True)
    return ExitCode.USAGE


def run(args: argparse.Namespace) -> int:
    from hip3.keys import SigningKeyError, check_signer, load_signing_key, trading_user
    from hip3.metrics.logs import configure_logging

    configure_logging(args.log_level, json_lines=args.log_json, stream=sys.stderr)
    overrides = {
        "network": args.network,
        "ws_url": args.ws_url,
        "guard.heartbeat_path": str(args.heartbeat) if args.heartbeat is not None else None,
        "account.key_env": args.key_env,
    }
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}")
    if cfg.guard.heartbeat_path is None:
        return _fail(
            "guard.heartbeat_path is not set: set it (the same file for the bot and the guard) "
            "so the bot writes a heartbeat to watch"
        )
    url = cfg.endpoints.ws_url
    if url is None:
        return _fail(
            "network 'sim' without ws_url: the bot's built-in simulator dies with the bot; "
            "run `hip3 sim` and set ws_url (or --ws-url) for both"
        )
    try:
        key = load_signing_key(cfg)
        if key is None:
            return _fail(
                f"no signing key: set {cfg.account.key_env} or account.keystore (the guard "
                "signs its cancels and flatten orders with the bot's key)"
            )
        check_signer(cfg, key)
        user = trading_user(cfg, key)
    except (SigningKeyError, ConfigError) as exc:
        return _fail(str(exc))
    from hip3.guard.session import run_guard

    return asyncio.run(run_guard(cfg, url, key, user))
