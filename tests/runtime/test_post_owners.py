"""Posts have typed owners: every pending post carries the object that handles its answer and
its failure, and nothing in the runtime decides what a post is by the text of its kind or key
(a chain of `key.startswith("orderStatus:")` tests grows with every new request and silently
drops the one nobody added a branch for)."""

from __future__ import annotations

import ast
from pathlib import Path

from hip3.runtime.post_owners import CancelPost, InfoQuery, OrderPost, ScheduleCancelPost

from .fakes import Harness

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = sorted((ROOT / "hip3" / "runtime").glob("*.py"))
_PREFIX_TESTS = ("startswith", "endswith")
_SPLITS = ("split", "rsplit", "partition", "rpartition")
# names under which the runtime holds a post's kind or an info request's key
_POST_NAMES = ("kind", "key", "owner")


def _ends_in_colon(node: ast.expr) -> bool:
    """A prefix such as "info:" or f"{part}:" or part + ":"."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.endswith(":")
    if isinstance(node, ast.JoinedStr) and node.values:
        return _ends_in_colon(node.values[-1])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _ends_in_colon(node.right)
    if isinstance(node, ast.Tuple):
        return any(_ends_in_colon(e) for e in node.elts)
    return False


def _names_a_post(receiver: ast.expr) -> bool:
    if isinstance(receiver, ast.Name):
        return receiver.id in ("kind",)
    return isinstance(receiver, ast.Attribute) and receiver.attr in _POST_NAMES


def prefix_dispatch(source: str) -> list[str]:
    """Calls that tell posts (or requests) apart by the text of their name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method, receiver = node.func.attr, node.func.value
        by_prefix = method in _PREFIX_TESTS and (
            _names_a_post(receiver) or any(_ends_in_colon(a) for a in node.args)
        )
        by_split = method in _SPLITS and (
            _names_a_post(receiver) or ast.unparse(receiver).endswith(("key", "kind"))
        )
        if by_prefix or by_split:
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_checker_finds_prefix_dispatch() -> None:
    # the shapes the runtime used before posts had owners, and what it may still do
    assert prefix_dispatch('if p.kind.startswith("info:"): pass') != []
    assert prefix_dispatch('if kind.startswith("info:"): pass') != []
    assert prefix_dispatch('if key.startswith("orderStatus:"): pass') != []
    assert prefix_dispatch('any(k.startswith(part + ":") for k in x)') != []
    assert prefix_dispatch('dex = key.split(":", 1)[1]') != []
    assert prefix_dispatch('dex = key.rsplit(":", 1)[1]') != []
    assert prefix_dispatch('if text.startswith("Invalid subscription"): pass') == []


def test_no_string_prefix_dispatch_in_the_runtime() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{hit}"
        for path in RUNTIME
        for hit in prefix_dispatch(path.read_text())
    ]
    assert found == [], f"posts told apart by the text of their kind or key: {found}"


OWNERS = (OrderPost, CancelPost, ScheduleCancelPost, InfoQuery)


def _owners(h: Harness) -> list:
    return [p.owner for p in h.d.wire.posts.pending()]


def test_every_post_the_bot_sends_carries_its_owner() -> None:
    h = Harness()
    h.start()
    h.open_socket()
    while h.acks():
        h.ack(0)
    seen = _owners(h)  # the reconciliation's info requests
    h.bring_up()
    assert h.d.ready.trading()
    h.entry()
    seen += _owners(h)  # the entry order
    h.settle()
    h.operator("hardstop")  # cancels, flattens, verifies
    for _ in range(5):
        seen += _owners(h)
        h.settle()
        h.tick(1_000)
    assert seen and all(isinstance(o, OWNERS) for o in seen), seen
    kinds = {type(o) for o in seen}
    assert {OrderPost, InfoQuery} <= kinds, kinds
    assert h.d.hardstop.state == "halted"
    assert h.bot_positions() == h.true_positions() == {}
