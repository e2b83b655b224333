"""`hip3 bot --strategy` as an operator runs it: the example maker and the built-in taker named
explicitly run against the built-in simulator and stop clean; a wrong strategy name or
parameter is one clear line before anything starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hip3.app.exit_codes import ExitCode
from hip3.config import ConfigError, load_config
from tests.test_bot_process import NO_JOURNAL, assert_one_clear_line, hip3

pytestmark = pytest.mark.e2e

MAKER = str(Path(__file__).resolve().parents[2] / "examples" / "maker.py") + ":AloMaker"
ONE_MARKET = '[[markets]]\ncoin = "xyz:AAA"\n'


def test_the_example_maker_runs_through_hip3_bot(tmp_path):
    config = NO_JOURNAL + ONE_MARKET + '[strategy.params]\ncoin = "xyz:AAA"\n'
    summary = tmp_path / "summary.json"
    code, out, err = hip3(
        "bot", "--no-status", "--duration", "4", "--strategy", MAKER,
        "--summary-json", str(summary), config=config, tmp=tmp_path,
    )  # fmt: skip
    assert code == ExitCode.OK, err
    s = json.loads(summary.read_text())
    assert s["orders_submitted"] >= 2, s  # a bid and an ask at least
    assert s["entries_submitted"] == 0 and s["reconciled"] is True, s
    assert "HardStop" not in out


def test_the_built_in_taker_named_explicitly_runs_through_hip3_bot(tmp_path):
    code, out, err = hip3(
        "bot", "--no-status", "--duration", "3",
        "--strategy", "hip3.strategy.taker:DislocationTaker", config=NO_JOURNAL, tmp=tmp_path,
    )  # fmt: skip
    assert code == ExitCode.OK, err
    assert "reconciled: True" in out


@pytest.mark.parametrize(
    ("params", "needles"),
    [
        ({"coin": 5}, ("strategy.params.coin = 5", "expected `str`, got `int`")),
        ({"coin": "xyz:AAA", "sise": 2}, ("unknown key 'strategy.params.sise'",)),
        ({"size": 2}, ("strategy.params.coin is missing",)),
        ({"coin": "xyz:AAA", "size": -1}, ("strategy.params", "size and max_position must be > 0")),
    ],
)
def test_bad_strategy_params_are_one_line_config_errors(params, needles):
    with pytest.raises(ConfigError) as caught:
        load_config(overrides={"strategy": {"name": MAKER, "params": params}})
    (problem,) = caught.value.problems
    assert "\n" not in problem
    for needle in needles:
        assert needle in problem, problem


def test_params_without_a_strategy_name_are_refused():
    with pytest.raises(ConfigError, match=r"strategy\.params is given but strategy\.name is not"):
        load_config(overrides={"strategy": {"params": {"coin": "xyz:AAA"}}})


def test_params_convert_to_the_declared_types():
    from decimal import Decimal

    from hip3.strategy.loader import load_strategy_class, strategy_params

    cls = load_strategy_class(MAKER)
    p = strategy_params(cls, {"coin": "xyz:AAA", "size": 2, "half_spread_bps": 12.5})
    assert p.size == Decimal(2) and p.half_spread_bps == Decimal("12.5")


def test_a_strategy_that_does_not_exist_is_one_line(tmp_path):
    code, _out, err = hip3(
        "bot", "--no-status", "--strategy", "no_such_pkg.mod:Thing", config=NO_JOURNAL, tmp=tmp_path
    )
    assert_one_clear_line(code, err, "strategy.name", "cannot import no_such_pkg.mod")
