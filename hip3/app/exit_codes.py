"""The exit codes of `hip3 bot`, in one place, and the one rule that picks a run's code.

A wrapper script, a supervisor or an operator reads the code before the summary, so 0 must
mean exactly "nothing needs attention": the run ended reconciled with the exchange and nothing
open. Every other outcome has its own code. To add one: a member here (with its meaning, which
the README table repeats), and its test in `code_for_summary` if a summary can produce it.
`hip3 guard` (hip3/guard/cli.py) exits with the same codes in the same sense: 0 only when the
exchange shows nothing open, 3 when something is (or could not be checked).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    # a clean run: ended reconciled with the exchange, no position and no order open
    OK = 0
    # the run stopped on an error it could not recover from (the summary's `fatal` says which)
    FATAL = 1
    # the run could not start: configuration, key or command-line problem (nothing was sent)
    USAGE = 2
    # the run ended with exposure (a position or an order still open) or unreconciled (the
    # final check against the exchange failed or disagreed, or the stop ran out of time)
    EXPOSED = 3
    # the signing key may not trade the configured account (not the account, not an approved
    # unexpired agent of it, or the account does not exist or has no margin); nothing was sent
    ACCOUNT_REFUSED = 4
    # never READY: the endpoint could not be reached, or the run was not READY within
    # `ready.startup_timeout_s` (or stopped before it was); no order was sent
    NEVER_READY = 5
    # the HardStop was tripped by a risk trigger (loss limit, rejections, flatten failures,
    # disconnection while exposed, an internal error) and the run ended halted, flat and
    # reconciled; a clean stop and an operator's SIGUSR1 are not risk triggers
    HARDSTOP = 6
    # stopped by a second Ctrl-C before the graceful stop finished
    INTERRUPTED = 130


# HardStop reasons that are not risk triggers: the graceful stop runs its cancel and flatten
# through the HardStop, and an operator may trip it on purpose.
_NOT_RISK_PREFIXES = ("shutdown", "operator")


def code_for_summary(summary: dict[str, Any]) -> ExitCode:
    """The code of a run that produced a summary. A refused account check, or a run that never
    became ready, before anything was sent is its own case (whatever the account holds, this
    run did not touch it). Otherwise exposure outranks a risk HardStop and a fatal error: an
    open position is what the operator must act on first."""
    if summary.get("interrupted"):
        return ExitCode.INTERRUPTED
    if summary.get("account_refused") and not summary.get("actions_sent"):
        return ExitCode.ACCOUNT_REFUSED
    if summary.get("never_ready") and not summary.get("actions_sent"):
        return ExitCode.NEVER_READY
    if summary.get("mode") == "trading" and (
        not summary.get("reconciled") or has_exposure(summary)
    ):
        return ExitCode.EXPOSED
    if risk_trips(summary):
        return ExitCode.HARDSTOP
    if summary.get("fatal"):
        return ExitCode.FATAL
    return ExitCode.OK


def risk_trips(summary: dict[str, Any]) -> list[str]:
    """The HardStop reasons that were risk triggers (not the stop's own, not an operator's)."""
    reasons = (summary.get("hardstop") or {}).get("reasons") or []
    return [r for r in reasons if not r.startswith(_NOT_RISK_PREFIXES)]


def has_exposure(summary: dict[str, Any]) -> bool:
    """What may still be open: the exchange's own answer when the final check got one, else
    what the bot last knew."""
    positions = summary.get("exchange_positions")
    if positions is None:
        positions = summary.get("positions") or {}
    orders = summary.get("exchange_open_orders")
    if orders is None:
        orders = summary.get("open_orders") or []
    return bool(positions) or bool(orders)


def exposure_line(summary: dict[str, Any]) -> str:
    """What may be open and whether the exchange confirmed it, for the one-line exit message."""
    checked = summary.get("exchange_positions") is not None
    positions = summary.get("exchange_positions") if checked else summary.get("positions")
    orders = summary.get("exchange_open_orders") if checked else summary.get("open_orders")
    shown = ", ".join(f"{c} {s}" for c, s in sorted((positions or {}).items())) or "none"
    source = "the exchange's final check" if checked else "last known: the final check failed"
    line = f"positions {shown}; {len(orders or [])} open order(s), {source}"
    if not summary.get("reconciled"):
        line += "; not reconciled"
    return line
