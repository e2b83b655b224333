"""Every import of the state machines goes through `hip3.machines`. In a checkout the folder is
also importable by its bare name `machines`, but that loads a second copy of every module:
its classes are not the runtime's, so an isinstance check or a shared registry would silently
disagree. The wheel has no top-level `machines` at all."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BARE = re.compile(r"^\s*(?:from\s+machines(?:\.|\s)|import\s+machines\b)", re.M)


def test_no_module_imports_the_machines_by_their_bare_name():
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("hip3", "machines", "tests", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if BARE.search(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, f"import hip3.machines instead of machines in: {offenders}"
