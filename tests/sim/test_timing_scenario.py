"""Scenario `[timing]` and `[[competitors]]` keys, and the `hip3 sim` timing options."""

from __future__ import annotations

import argparse
import subprocess
import sys
from decimal import Decimal

import pytest

from hip3.sim.cli import add_arguments, timing_config
from hip3.sim.latency import LatencySpec, LatencySpecError
from hip3.sim.scenario import ScenarioError, load_scenario, parse_scenario
from hip3.sim.timing import TimingConfig


def test_bundled_scenarios_time_like_the_exchange() -> None:
    for name in ("default", "calm", "jumpy", "contested"):
        timing = load_scenario(name).timing
        assert timing.block_ms == 70 and timing.commit_blocks == 2, name
        assert timing.latency == LatencySpec(200, 900), name
        assert timing.mempool.order_wait_ms == 360, name
    contested = load_scenario("contested").competitors
    assert (contested[0].name, contested[0].reaction_ms, contested[0].rate) == ("fast", 40, 80_000)
    assert len(contested) == 2


def test_timing_keys_are_read() -> None:
    scenario = parse_scenario(
        """
        [timing]
        block_ms = 100
        commit_blocks = 3
        order_wait_ms = 500
        ms_per_bp = 50
        max_priority_bps = 6
        latency_median_ms = 20
        latency_p99_ms = 80
        info_latency = false
        """
    )
    timing = scenario.timing
    assert (timing.block_ms, timing.commit_blocks, timing.info_latency) == (100, 3, False)
    assert timing.mempool.order_wait(60_000) == 200
    assert timing.latency == LatencySpec(20, 80)


def test_a_latency_median_alone_keeps_the_default_shape() -> None:
    timing = parse_scenario("[timing]\nlatency_median_ms = 100\n").timing
    assert timing.latency == LatencySpec(100, 450)
    assert parse_scenario("[timing]\nlatency_median_ms = 0\n").timing.latency.is_zero


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[timing]\nblock_ms = 0\n", "block_ms must be an integer >= 1"),
        ("[timing]\nblocks = 70\n", "unknown key"),
        ("[timing]\ninfo_latency = 1\n", "info_latency must be true or false"),
        ("[timing]\nlatency_median_ms = 300\nlatency_p99_ms = 100\n", "must not be below"),
        ("[[competitors]]\nreaction = 3\n", "unknown key"),
        ("[[competitors]]\npriority_bps = 20000\n", "priority_bps must be <= 10000"),
        ("[[competitors]]\nnotional_usd = 0\n", "notional_usd must be > 0"),
        ("[[competitors]]\nreaction_ms = -1\n", "reaction_ms must be an integer >= 0"),
        ("competitors = 3\n", "array of tables"),
        ("hype_usd = 0\n", "hype_usd must be > 0"),
        ('account_staking_hype = "lots"\n', "account_staking_hype must be a number"),
    ],
)
def test_bad_timing_and_competitor_keys_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ScenarioError, match=problem):
        parse_scenario(text, origin="x.toml")


def test_staking_keys_fund_the_printed_account_and_price_hype() -> None:
    scenario = parse_scenario('account_staking_hype = "2.5"\nhype_usd = 25\n')
    assert (scenario.account_staking_hype, scenario.hype_usd) == (Decimal("2.5"), 25)
    default = parse_scenario("")
    assert (default.account_staking_hype, default.hype_usd) == (1000, 40)


def test_competitors_default_names_and_values() -> None:
    scenario = parse_scenario("[[competitors]]\npriority_bps = 2.5\n[[competitors]]\n")
    first, second = scenario.competitors
    assert (first.name, first.rate, first.priority_bps) == ("taker1", 25_000, Decimal("2.5"))
    assert second.name == "taker2" and second.rate == 0


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_timing_options_override_the_scenario() -> None:
    scenario = load_scenario("default")
    assert timing_config(_args(), scenario) == scenario.timing
    assert timing_config(_args("--no-timing"), scenario) is None
    config = timing_config(_args("--latency-ms", "50,300", "--block-ms", "100"), scenario)
    assert isinstance(config, TimingConfig)
    assert (config.latency, config.block_ms) == (LatencySpec(50, 300), 100)
    assert timing_config(_args("--latency-ms", "0"), scenario).latency.is_zero  # type: ignore[union-attr]


def test_cli_timing_options_refuse_nonsense() -> None:
    scenario = load_scenario("default")
    with pytest.raises(LatencySpecError, match="is not a number"):
        timing_config(_args("--latency-ms", "fast"), scenario)
    with pytest.raises(ScenarioError, match="cannot be combined"):
        timing_config(_args("--no-timing", "--latency-ms", "5"), scenario)
    with pytest.raises(SystemExit):
        _args("--block-ms", "0")


BAD_TIMING = {
    "not_a_number": (["--latency-ms", "fast"], "latency 'fast': fast is not a number"),
    "tail_below_median": (["--latency-ms", "900,200"], "must not be below the median"),
    "no_timing_with_blocks": (["--no-timing", "--block-ms", "100"], "cannot be combined"),
}


@pytest.fixture(scope="module")
def refused_sims() -> dict[str, tuple[int, str, str]]:
    """`hip3 sim` with each bad timing option, the processes started side by side (each is
    mostly interpreter start-up): case -> (exit code, stdout, stderr)."""
    started = {
        case: subprocess.Popen(
            [sys.executable, "-m", "hip3", "sim", "--port", "0", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for case, (argv, _problem) in BAD_TIMING.items()
    }
    results = {}
    for case, proc in started.items():
        try:
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        results[case] = (proc.returncode, out, err)
    return results


@pytest.mark.parametrize("case", sorted(BAD_TIMING))
def test_hip3_sim_refuses_bad_timing_options_in_one_line(
    case: str, refused_sims: dict[str, tuple[int, str, str]]
) -> None:
    code, out, err = refused_sims[case]
    problem = BAD_TIMING[case][1]
    assert code == 2
    assert problem in err and len(err.strip().splitlines()) == 1
    assert out == ""
