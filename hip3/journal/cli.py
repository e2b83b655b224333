"""`hip3 journal [PATH]`: summarise a trading journal, export its tables as CSV, or write an
HTML report of charts."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_PATH = Path("data/journal.sqlite")  # the default of config `journal.path`

EXIT_OK = 0
EXIT_ERROR = 2
# the file opened but SQLite's integrity check found damage
EXIT_CORRUPT = 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "path",
        nargs="?",
        type=Path,
        metavar="PATH",
        help=f"journal file (default: journal.path from --config, else {DEFAULT_PATH})",
    )
    p.add_argument("--config", type=Path, help="take the journal path from this TOML configuration")
    p.add_argument(
        "--csv",
        type=Path,
        metavar="DIR",
        help="also export every table to DIR/<table>.csv",
    )
    p.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="also write a self-contained HTML report (charts and tables) to FILE",
    )
    p.add_argument(
        "--session",
        metavar="ID",
        help="summarise (and chart) one session only: its id as listed, or `last`; default: all."
        " --csv exports every table whole",
    )


def _resolve_path(args: argparse.Namespace) -> Path:
    if args.path is not None:
        return args.path
    if args.config is not None:
        from hip3.config import load_config

        return Path(load_config(args.config).journal.path)
    return DEFAULT_PATH


def run(args: argparse.Namespace) -> int:
    from hip3.config import ConfigError
    from hip3.journal.report import JournalCorrupt, export_csv, load_summary, render
    from hip3.journal.store import JournalError

    try:
        path = _resolve_path(args)
    except ConfigError as exc:
        print(f"hip3 journal: configuration error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        if args.html is not None:
            from hip3.journal.html_report import load_report, write_html

            data = load_report(path, session=args.session)
            summary = data.summary
        else:
            summary = load_summary(path, session=args.session)
        print(render(summary))
        if args.html is not None:
            size = write_html(data, args.html)
            print()
            print(f"wrote the HTML report to {args.html} ({size / 1024:.0f} KB)")
        if args.csv is not None:
            written = export_csv(path, args.csv)
            print()
            print(f"exported {len(written)} tables to {args.csv}:")
            for f in written:
                print(f"  {f}")
    except JournalCorrupt as exc:
        print(f"hip3 journal: {exc}", file=sys.stderr)
        return EXIT_CORRUPT
    except JournalError as exc:
        print(f"hip3 journal: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # `hip3 journal | head`: the reader left; stop quietly instead of a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK
