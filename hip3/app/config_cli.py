"""`hip3 config show|init`: the example configurations that ship with hip3.

`default` lists every key with its default and a comment; `testnet` and `mainnet` are
starting points for those networks (mainnet in observation mode). The checkout keeps them in
`config/`; the wheel ships them inside the package, so an installed hip3 can print or copy
them without a clone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent


def examples_dir() -> Path:
    """Where the example configurations are: inside the installed package, else the checkout."""
    packaged = _PACKAGE / "example_configs"
    return packaged if packaged.is_dir() else _PACKAGE.parent / "config"


def example_names() -> list[str]:
    return sorted(p.stem for p in examples_dir().glob("*.toml"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="print an example configuration")
    show.add_argument("name", nargs="?", default="default", help="default, testnet or mainnet")
    init = sub.add_parser("init", help="write an example configuration to a new file")
    init.add_argument("path", type=Path, help="the file to create (never overwritten)")
    init.add_argument(
        "--from",
        dest="name",
        default="default",
        help="which example: default, testnet or mainnet (default: default)",
    )


def run(args: argparse.Namespace) -> int:
    names = example_names()
    if args.name not in names:
        print(
            f"hip3 config: no example named {args.name!r}; choose one of {', '.join(names)}",
            file=sys.stderr,
        )
        return 2
    text = (examples_dir() / f"{args.name}.toml").read_text(encoding="utf-8")
    if args.action == "show":
        sys.stdout.write(text)
        return 0
    try:
        with args.path.open("x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        print(f"hip3 config: {args.path} already exists; not overwritten", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"hip3 config: cannot write {args.path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.path} (from the {args.name} example); run: hip3 bot --config {args.path}")
    return 0
