"""The machines are the behaviour: every event a machine in machines/ declares is sent by the
bot's runtime (hip3/, the simulator aside), so the generated diagrams draw only transitions the
bot can take. An event nobody sends is either a missing call in the runtime or dead weight in
the machine; this test names it.

The runtime delivers events as `<machine>.send("event", ...)` (the base class applies event
aliases there), as `self.orders.send(cloid, "event", ...)` for order machines (the registry
forwards to the order's machine), or as a direct `<machine>.event(...)` call. The receiver is
placed by the name the runtime gives each machine; a local variable is followed to what it
was assigned from in its function.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

from hip3.machines.base import HipChart

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_SOURCES = [
    p for p in sorted((ROOT / "hip3").rglob("*.py")) if p.relative_to(ROOT).parts[1] != "sim"
]

# How the runtime refers to each machine (an expression's text, matched as a prefix).
RECEIVERS = (
    ("self.conn", "ConnectionMachine"),
    ("self.readiness", "ReadinessMachine"),
    ("self.hardstop", "HardStopMachine"),
    ("self.orders", "OrderMachine"),
    ("self.machines", "OrderMachine"),  # inside the order registry
    ("self.flatten", "FlattenMachine"),
    ("self.flatten_machine(", "FlattenMachine"),
)


def declared_machines() -> dict[str, type[HipChart]]:
    found: dict[str, type[HipChart]] = {}
    for path in sorted((ROOT / "machines").glob("*.py")):
        module = importlib.import_module(f"hip3.machines.{path.stem}")
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, HipChart)
                and obj is not HipChart
                and obj.__module__ == module.__name__
            ):
                found[name] = obj
    return found


def _machine_of(expr: str) -> str | None:
    for prefix, machine in RECEIVERS:
        if expr == prefix or expr.startswith((prefix + ".", prefix + "[", prefix + "(")):
            return machine
        if prefix.endswith("(") and expr.startswith(prefix):
            return machine
    return None


def _local_sources(func: ast.AST) -> dict[str, str]:
    """name -> the text of what it was bound from inside `func` (assignments, for loops)."""
    out: dict[str, str] = {}
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.For):
            target, value = node.target, node.iter
        else:
            continue
        names = [target] if isinstance(target, ast.Name) else getattr(target, "elts", [])
        for n in names:
            if isinstance(n, ast.Name):
                out[n.id] = ast.unparse(value)
    return out


def _receiver_machine(receiver: ast.expr, locals_: dict[str, str]) -> str | None:
    text = ast.unparse(receiver)
    if isinstance(receiver, ast.Name) and receiver.id in locals_:
        text = locals_[receiver.id]
        # `list(self.flatten.values())` and the like: the machine is inside the call
        if text.startswith(("list(", "sorted(", "tuple(")):
            text = text[text.index("(") + 1 :]
    return _machine_of(text)


def sent_events() -> tuple[dict[str, set[str]], list[str]]:
    """machine class name -> event names the runtime sends it; plus the call sites with a
    constant event whose receiver could not be placed."""
    machines = declared_machines()
    sent: dict[str, set[str]] = {name: set() for name in machines}
    unplaced: list[str] = []
    for path in RUNTIME_SOURCES:
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            locals_ = _local_sources(func)
            for node in ast.walk(func):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                machine = _receiver_machine(node.func.value, locals_)
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                if node.func.attr == "send":
                    event = next(
                        (
                            a.value
                            for a in node.args
                            if isinstance(a, ast.Constant) and isinstance(a.value, str)
                        ),
                        None,
                    )
                    if event is None:
                        continue  # payload bytes, or an event chosen at run time
                    if machine is None:
                        unplaced.append(f"{where}: {ast.unparse(node)[:80]}")
                        continue
                    cls = machines[machine]
                    sent[machine].add(cls.event_aliases.get(event, event))
                elif machine is not None:
                    ids = {e.id for e in machines[machine].events}
                    if node.func.attr in ids:
                        sent[machine].add(node.func.attr)
    return sent, unplaced


def test_every_declared_event_is_sent_by_the_runtime() -> None:
    machines = declared_machines()
    assert set(machines) >= {
        "ConnectionMachine",
        "ReadinessMachine",
        "OrderMachine",
        "HardStopMachine",
        "FlattenMachine",
    }
    sent, _unplaced = sent_events()
    never_sent = sorted(
        f"{name}.{event.id}"
        for name, cls in machines.items()
        for event in cls.events
        # an event a machine sends itself, from an event the runtime sent it (`recheck`)
        if event.id not in sent[name] and event.id not in getattr(cls, "self_sent_events", ())
    )
    assert never_sent == [], (
        f"events declared in machines/ that the runtime never sends: {never_sent}; "
        "send them where the fact they describe happens, or delete them"
    )


def test_every_event_sent_is_placed_on_a_machine() -> None:
    # A send whose receiver this test cannot name would escape the check above.
    _sent, unplaced = sent_events()
    assert unplaced == [], f"name these receivers in RECEIVERS: {unplaced}"


def test_the_runtime_sends_only_declared_events() -> None:
    machines = declared_machines()
    sent, _unplaced = sent_events()
    unknown = sorted(
        f"{name}.{event}"
        for name, events in sent.items()
        for event in events
        if event not in {e.id for e in machines[name].events}
    )
    assert unknown == [], f"events sent that no machine declares: {unknown}"


# A machine's state lives in the machine. A container named after what a machine owns (a set
# of markets "waiting" to flatten, a dict of "armed" flags...) is a second copy that drifts.
# A set of subscriptions that have had their "first data" (or acks) is the ReadinessMachine's
# per-subscription status again.
_MACHINE_CONCEPTS = re.compile(
    r"flatten|hardstop|halt|armed|readiness|ready(?!_latency)|first_data|acked|subscri", re.I
)


def _container(value: ast.expr | None) -> bool:
    if isinstance(value, ast.Set | ast.Dict | ast.List):
        return True
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id in ("set", "dict", "list", "Counter", "defaultdict")
    )


def test_no_side_table_shadows_machine_state() -> None:
    shadows = []
    for path in RUNTIME_SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.AnnAssign):
                targets, value, note = [node.target], node.value, ast.unparse(node.annotation)
            elif isinstance(node, ast.Assign):
                targets, value, note = node.targets, node.value, ""
            else:
                continue
            if not _container(value) or "Machine" in note:
                continue  # machines themselves, by market or by cloid, are the state
            for t in targets:
                if not (isinstance(t, ast.Attribute) and ast.unparse(t.value) == "self"):
                    continue  # module tables of constants hold no state
                name = t.attr
                if _MACHINE_CONCEPTS.search(name):
                    shadows.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert shadows == [], f"containers shadowing machine state: {shadows}"
