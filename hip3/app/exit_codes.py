"""The exit codes of `hip3 bot`, in one place, and the one rule that picks a run's code.

A wrapper script, a supervisor or an operator reads the code before the summary, so 0 must
mean exactly "nothing needs attention": the run ended reconciled with the exchange and nothing
open. Every other outcome has its own code. To add one: a member here (with its meaning, which
the README table repeats), and its test in `code_for_summary` if a summary can produce it.
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
    # stopped by a second Ctrl-C before the graceful stop finished
    INTERRUPTED = 130


def code_for_summary(summary: dict[str, Any]) -> ExitCode:
    """The code of a run that produced a summary. A refused account check before anything was
    sent is its own case (whatever the account holds, this run did not touch it). Otherwise
    exposure outranks a fatal error: an open position is what the operator must act on first."""
    if summary.get("account_refused") and not summary.get("actions_sent"):
        return ExitCode.ACCOUNT_REFUSED
    if summary.get("mode") == "trading" and (
        not summary.get("reconciled") or has_exposure(summary)
    ):
        return ExitCode.EXPOSED
    if summary.get("fatal"):
        return ExitCode.FATAL
    return ExitCode.OK


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
