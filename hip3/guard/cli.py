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
import contextlib
import logging
import signal
import sys
from pathlib import Path

from hip3.app.exit_codes import ExitCode
from hip3.config import Config, ConfigError, load_config
from hip3.keys import SigningKey

__all__ = ["add_arguments", "run"]

log = logging.getLogger("hip3.guard")


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


def _fail(message: str, code: ExitCode = ExitCode.USAGE) -> int:
    print(f"hip3 guard: {message}", file=sys.stderr, flush=True)
    return code


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
    return asyncio.run(_guard(cfg, url, key, user))


async def _guard(cfg: Config, url: str, key: SigningKey, user: str) -> int:
    from hip3.guard.actions import Guardian
    from hip3.guard.link import ExchangeLink, LinkError
    from hip3.guard.reaper import kill_stale_bot
    from hip3.guard.watcher import GuardMismatch, Verdict, watch
    from hip3.protocol.signing import FastSigner

    g = cfg.guard
    path = Path(g.heartbeat_path or "")
    link = ExchangeLink(
        url,
        signer=FastSigner(key.secret_bytes()),
        mainnet=cfg.endpoints.mainnet_signing,
        request_timeout_s=g.request_timeout_s,
        ping_interval_s=g.ping_interval_s,
    )
    guardian = Guardian(link, user=user, dexes=cfg.dexes, cfg=g)
    log.info(
        "guard: account %s on %s (%s), heartbeat %s, timeout %gs, flatten %s",
        user,
        cfg.network,
        url,
        path,
        g.timeout_s,
        "on" if g.flatten else "off",
    )
    link.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stopped_by: list[str] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda s=sig: (stopped_by.append(s.name), stop.set()))
    try:
        if await link.wait_connected(g.request_timeout_s):
            try:
                markets = await guardian.discover()
                log.info(
                    "guard: connected; %d markets on dexes %s",
                    len(markets),
                    ", ".join(repr(d) for d in cfg.dexes),
                )
            except (LinkError, ValueError) as exc:
                log.warning("guard: discovery failed (%s); it is asked again before acting", exc)
        else:
            log.warning(
                "guard: not connected yet (%s); retrying in the background", link.last_error
            )
        watcher = loop.create_task(
            watch(path, g, account=user, network=cfg.network), name="guard-watch"
        )
        stopper = loop.create_task(stop.wait())
        await asyncio.wait({watcher, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not watcher.done():
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            return _fail(
                f"stopped by {stopped_by[0]} while watching; nothing was done", ExitCode.INTERRUPTED
            )
        stopper.cancel()
        try:
            result = watcher.result()
        except GuardMismatch as exc:
            return _fail(f"{exc}; nothing was done")
        if result.verdict is Verdict.NEVER_SEEN:
            return _fail(
                f"no heartbeat appeared at {path} within {g.start_deadline_s:g} s; "
                "nothing was done (is the bot running with guard.heartbeat_path set?)",
                ExitCode.NEVER_READY,
            )
        beat = result.beat
        assert beat is not None
        log.log(
            logging.INFO if result.verdict is Verdict.STOPPED else logging.WARNING,
            "guard: bot pid %d %s (last beat %.1fs ago, it held %d position(s) and %d "
            "order(s)); %s",
            beat.pid,
            _what_happened(result.verdict),
            result.age_s,
            beat.positions,
            beat.open_orders,
            "checking the account" if result.verdict is Verdict.STOPPED else "acting",
        )
        stale_here = result.verdict is Verdict.STALE and beat.host == _host()
        if stale_here and g.kill_stale_bot and not await kill_stale_bot(beat):
            log.error("guard: the hung bot could not be ended; acting anyway")
        outcome = await guardian.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await link.close()
    if outcome.clean:
        print(
            f"hip3 guard: verified with the exchange: no open orders, no positions "
            f"(account {user}, dexes {', '.join(repr(d) for d in cfg.dexes)})",
            flush=True,
        )
        return ExitCode.OK
    if outcome.state is None:
        return _fail(
            "could not verify with the exchange "
            f"({'; '.join(outcome.errors[-3:]) or 'no answer'}); exposure may remain: "
            "check the account",
            ExitCode.EXPOSED,
        )
    left = outcome.state.describe()
    why = "" if g.flatten or not outcome.state.positions else " (guard.flatten is off)"
    return _fail(
        f"exposure remains after {outcome.rounds} round(s): {left}{why}; check the account",
        ExitCode.EXPOSED,
    )


def _what_happened(verdict: object) -> str:
    from hip3.guard.watcher import Verdict

    return {
        Verdict.STALE: "stopped beating",
        Verdict.GONE: "is gone",
        Verdict.STOPPED: "ended its run",
    }.get(verdict, str(verdict))  # type: ignore[call-overload]


def _host() -> str:
    from hip3.guard.heartbeat import this_host

    return this_host()
