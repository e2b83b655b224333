"""The guides' code runs: docs/guides/write-a-strategy.md's strategy is saved as the module its
sibling guide imports, its configuration example loads, and the test in
docs/guides/test-with-the-simulator.md runs against the simulator through the `hip3_sim`
fixture of hip3's pytest plugin."""

from __future__ import annotations

import inspect
import re
import sys
import tomllib
from pathlib import Path

import pytest

from hip3.config import load_config
from hip3.strategy.api import Strategy
from hip3.strategy.loader import strategy_params

GUIDES = Path(__file__).resolve().parents[1] / "docs" / "guides"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(name: str, language: str) -> list[str]:
    text = (GUIDES / name).read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang == language]


@pytest.fixture
def my_strategy(tmp_path, monkeypatch):
    """The minimal strategy of the first guide, as the module `my_strategy`."""
    (tmp_path / "my_strategy.py").write_text("\n".join(blocks("write-a-strategy.md", "python")))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_strategy", raising=False)
    import my_strategy

    yield my_strategy
    sys.modules.pop("my_strategy", None)


def test_the_minimal_strategy_is_twenty_lines_or_so_and_loads(my_strategy):
    (code,) = blocks("write-a-strategy.md", "python")
    assert len([line for line in code.splitlines() if line.strip()]) <= 28
    cls = my_strategy.OracleDipBuyer
    assert issubclass(cls, Strategy)
    assert strategy_params(cls, {"coin": "xyz:BBB"}).coin == "xyz:BBB"


def test_the_configuration_example_loads(tmp_path):
    (toml,) = blocks("write-a-strategy.md", "toml")
    raw = tomllib.loads(toml)
    name = raw["strategy"]["name"]
    raw["strategy"]["name"] = str(GUIDES.parents[1] / name.partition(":")[0]) + ":AloMaker"
    cfg = load_config(overrides=raw)
    assert cfg.strategy.params["half_spread_bps"] == 25


async def test_the_simulator_guide_runs(my_strategy, hip3_sim):
    namespace: dict = {}
    exec(
        compile("\n".join(blocks("test-with-the-simulator.md", "python")), "guide", "exec"),
        namespace,
    )
    tests = [
        f for n, f in namespace.items() if n.startswith("test_") and inspect.iscoroutinefunction(f)
    ]
    assert len(tests) == 1
    await tests[0](hip3_sim)
