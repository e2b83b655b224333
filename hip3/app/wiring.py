"""The dispatcher as a run builds it: one place, shared by `hip3 bot` and `hip3 backtest`.

Whatever drives the run (a websocket and the wall clock, or recorded frames and a virtual
clock) hands in its transport and clock; the signer, nonces, client order ids, account check
and transition log are made here the same way for both, so a backtest exercises the bot the
bot runs, not a copy of its wiring.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from hip3.config import Config
from hip3.keys import SigningKey
from hip3.protocol.ids import CloidSource
from hip3.protocol.signing import FastSigner, NonceSource
from hip3.runtime.account_check import AccountCheck
from hip3.runtime.dispatcher import Dispatcher
from hip3.runtime.reconciliation import dexes_of


def build_dispatcher(
    cfg: Config,
    *,
    transport: Any,
    key: SigningKey | None,
    user: str | None,
    journal: Any | None,
    log_transitions: bool,
    clock: Any | None = None,
    rng: random.Random | None = None,
    cloid_salt: int | None = None,
    latency: Any | None = None,
    strategy: Any = None,
    whole_dexes: tuple[Any, ...] = (),
    journal_flush_every_ms: int = 0,
) -> Dispatcher:
    """Raises FatalError (from the dispatcher) for a configuration it cannot run.

    `clock` (default: the wall and monotonic clocks) also stamps nonces and client order ids;
    `rng` and `cloid_salt` (default: fresh randomness) make a run reproducible; `strategy` is a
    Strategy class to run instead of the one the configuration names; `journal_flush_every_ms`
    how often the journal commits (0, the live bot's: every tick)."""
    from hip3.metrics.logs import TransitionLogger

    trading = cfg.mode == "trading"
    signer = None
    account_check = None
    if trading:
        assert key is not None and user is not None
        signer = FastSigner(key.secret_bytes())
        account_check = AccountCheck(
            signer=key.address.lower(), user=user, dexes=dexes_of(list(cfg.coins))
        )
    stamp: dict[str, Any] = {} if clock is None else {"clock_ms": clock.wall_ms}
    return Dispatcher(
        cfg,
        transport=transport,
        clock=clock,
        signer=signer,
        nonces=NonceSource(**stamp),
        user=user if trading else None,
        rng=rng,
        cloids=CloidSource(**stamp, salt=cloid_salt),
        journal=journal,
        transition_log=TransitionLogger(level=logging.INFO if log_transitions else logging.DEBUG),
        latency=latency,
        account_check=account_check,
        strategy=strategy,
        whole_dexes=whole_dexes,
        journal_flush_every_ms=journal_flush_every_ms,
    )


__all__ = ["build_dispatcher"]
