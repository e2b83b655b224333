"""The `hip3` command line.

Each subcommand lives in the module that owns it; that module provides
`add_arguments(parser)` and `run(args) -> int`. A subcommand whose module is not
built yet exits with status 2 and names the missing part, so nothing that looks
like a result is ever printed by a part that does not exist.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

# subcommand -> (owning module, one-line help, the part it belongs to)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "bot": (
        "hip3.app.cli",
        "run the trading bot (default network: the built-in simulator)",
        "the bot",
    ),
    "guard": (
        "hip3.guard.cli",
        "watch the bot's heartbeat; when it stops, cancel, flatten and verify",
        "the watchdog",
    ),
    "sim": ("hip3.sim.cli", "run the local Hyperliquid-compatible exchange", "the simulator"),
    "diagrams": ("hip3.diagrams", "generate or check the state-machine diagrams", "the diagrams"),
    "journal": ("hip3.journal.cli", "summarise, export or chart a trading journal", "the journal"),
    "backtest": (
        "hip3.backtest.cli",
        "replay recorded market data through the bot against the simulated exchange",
        "the backtest",
    ),
    "config": (
        "hip3.app.config_cli",
        "print (show) or copy (init) an example configuration",
        "the configuration examples",
    ),
}

EXIT_NOT_BUILT = 2


def _load(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only a missing owning module means "not built"; a missing dependency inside
        # a built module is a real error and must surface as such.
        if exc.name is not None and module_name.startswith(exc.name):
            return None
        raise


class _Parser(argparse.ArgumentParser):
    """argparse, but a command-line mistake is one line (what is wrong and where to look), not
    the usage block followed by the error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from hip3 import __version__

    parser = _Parser(
        prog="hip3",
        description="Trade oracle/book dislocations on Hyperliquid HIP-3 markets.",
    )
    parser.add_argument("--version", action="version", version=f"hip3 {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text, part) in SUBCOMMANDS.items():
        module = _load(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        if module is None:
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            p.set_defaults(_run=_not_built(name, module_name, part))
        else:
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def _not_built(name: str, module_name: str, part: str):
    def run(_args: argparse.Namespace) -> int:
        print(
            f"hip3 {name}: {part} ({module_name}) is not built yet",
            file=sys.stderr,
        )
        return EXIT_NOT_BUILT

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_NOT_BUILT
    return int(args._run(args) or 0)
