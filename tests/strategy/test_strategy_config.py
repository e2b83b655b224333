"""Strategy config keys: every shipped file builds valid detector, gate and exit parameters,
and the new cross-key rules name both keys."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from hip3.config import ConfigError, load_config
from hip3.market.gates import GateParams
from hip3.strategy.detector import DetectorParams
from hip3.strategy.exits import ExitParams

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


@pytest.mark.parametrize("name", ["default.toml", "testnet.toml", "mainnet.toml"])
def test_shipped_configs_build_strategy_params(name):
    cfg = load_config(CONFIG_DIR / name)
    det = DetectorParams.from_config(cfg.detector, cfg.markets)
    gates = GateParams.from_config(cfg.gates)
    exits = ExitParams.from_config(cfg.exits)
    for m in cfg.markets:
        if m.threshold_bps is not None:
            assert det.thresholds[m.coin] == Decimal(repr(m.threshold_bps))
    assert 0 < gates.spread_shock_size_factor <= 1
    assert exits.time_stop_s > 0


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        (
            {"detector.min_book_notional_usd": 6000.0},
            ("detector.min_book_notional_usd", "detector.normal_book_notional_usd"),
        ),
        (
            {"detector.min_quote_lag_s": 1.0, "detector.max_quote_lag_s": 0.5},
            ("detector.min_quote_lag_s", "detector.max_quote_lag_s"),
        ),
        ({"gates.spread_shock_size_factor": 0.0}, ("gates.spread_shock_size_factor",)),
        ({"gates.spread_shock_multiplier": 0.5}, ("gates.spread_shock_multiplier",)),
        ({"detector.min_confidence": 1.5}, ("detector.min_confidence",)),
        ({"gates.unknown_gate": 1.0}, ("gates.unknown_gate",)),
    ],
)
def test_bad_strategy_settings_name_the_keys(overrides, names):
    with pytest.raises(ConfigError) as exc:
        load_config(overrides=overrides)
    for name in names:
        assert name in str(exc.value)


def test_min_quote_lag_alone_is_fine_when_the_maximum_is_off():
    cfg = load_config(overrides={"detector.min_quote_lag_s": 0.05})
    assert DetectorParams.from_config(cfg.detector).min_quote_lag_s == 0.05
