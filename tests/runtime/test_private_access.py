"""A module's private names are its own: no code in hip3/ reaches into another module's
`_name` (a method, an attribute, a module-level helper). Components talk through their public
methods and the collaborators passed to their constructors, so a reader can tell what one
depends on from its constructor and its calls, and a change inside one module cannot break
another through a side door.

What counts: `obj._x` (also `self._x`: a mixin or a base class in another file is the same
side door) and `from m import _x`, where `_x` is defined in another module of hip3/ and not in
the module that uses it. Defined means: a function, method or class named `_x`, a module or
class attribute `_x = ...`, an instance attribute `self._x = ...`, a `__slots__` entry, or a
keyword argument `_x=` (argparse's `set_defaults(_x=...)` sets an attribute by name).
Private names of other packages (`sys._getframe`, a named tuple's `_replace`) are not hip3's
to police.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# hip3/ and the state machines (packaged as hip3.machines from the top-level machines/)
SOURCES = sorted([*(ROOT / "hip3").rglob("*.py"), *(ROOT / "machines").rglob("*.py")])


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def defined_names(tree: ast.AST) -> set[str]:
    """The private names a module defines."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(node.name)
            continue
        if isinstance(node, ast.keyword) and node.arg:
            out.add(node.arg)  # an attribute set by name, e.g. argparse's set_defaults(_run=)
            continue
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        else:
            continue
        for target in targets:
            for t in ast.walk(target):
                if isinstance(t, ast.Name):
                    out.add(t.id)
                    if t.id == "__slots__" and isinstance(node, ast.Assign):
                        out.update(
                            c.value
                            for c in ast.walk(node.value)
                            if isinstance(c, ast.Constant) and isinstance(c.value, str)
                        )
                elif (
                    isinstance(t, ast.Attribute)
                    and isinstance(t.value, ast.Name)
                    and t.value.id in ("self", "cls")
                ):
                    out.add(t.attr)
    return {n for n in out if _private(n)}


def used_names(tree: ast.AST) -> list[tuple[int, str, str]]:
    """(line, private name, the expression or import that uses it)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            out.append((node.lineno, node.attr, ast.unparse(node)[:80]))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hip3"):
            for alias in node.names:
                if _private(alias.name):
                    out.append((node.lineno, alias.name, f"from {node.module} import {alias.name}"))
    return out


def violations(sources: dict[str, str]) -> list[str]:
    """`sources`: module path -> its text. Every use of another module's private name."""
    trees = {path: ast.parse(text) for path, text in sources.items()}
    defined = {path: defined_names(tree) for path, tree in trees.items()}
    owners: dict[str, set[str]] = {}
    for path, names in defined.items():
        for name in names:
            owners.setdefault(name, set()).add(path)
    found = []
    for path, tree in trees.items():
        for line, name, text in used_names(tree):
            if name in defined[path] or name not in owners:
                continue  # its own, or not hip3's
            found.append(f"{path}:{line}: {text} (defined in {', '.join(sorted(owners[name]))})")
    return sorted(found)


def _hip3_sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text() for p in SOURCES}


def test_no_module_uses_another_modules_private_names() -> None:
    found = violations(_hip3_sources())
    assert found == [], "private names used outside their module:\n" + "\n".join(found)


def test_the_check_sees_each_kind_of_side_door() -> None:
    # the same shapes the runtime once had: a mixin calling a sibling's step, a component
    # reading another's state, a private helper imported across modules
    sources = {
        "hip3/a.py": (
            "class Steps:\n"
            "    def _trip(self, reason):\n"
            "        self._last = reason\n"
            "def _helper():\n"
            "    return 1\n"
        ),
        "hip3/b.py": (
            "from hip3.a import _helper\n"
            "class Other:\n"
            "    def go(self, steps):\n"
            "        self._trip('x')\n"
            "        return steps._last\n"
        ),
        "hip3/c.py": (
            "import sys\n"
            "class Own:\n"
            "    __slots__ = ('_n',)\n"
            "    def _step(self):\n"
            "        return self._n, sys._getframe(), self._step\n"
        ),
    }
    found = violations(sources)
    assert [f.split(": ", 1)[1] for f in found] == [
        "from hip3.a import _helper (defined in hip3/a.py)",
        "self._trip (defined in hip3/a.py)",
        "steps._last (defined in hip3/a.py)",
    ]
