"""One [freshness] section: its keys reach every market state, and the old keys that spread
freshness over [ready], [gates], [detector] and [exits] fail with their new place named."""

from __future__ import annotations

import pytest

from hip3.config import ConfigError, load_config
from hip3.market.state import Freshness
from tests.runtime.fakes import Harness

OLD_KEYS = [
    ("ready", "max_bbo_age_s", "freshness.max_bbo_age_s"),
    ("ready", "max_ctx_age_s", "freshness.max_ctx_age_s"),
    ("gates", "max_bbo_age_s", "freshness.max_bbo_age_s"),
    ("gates", "max_ctx_age_s", "freshness.max_ctx_age_s"),
    ("gates", "time_regression_block_s", "freshness.time_regression_block_s"),
    ("detector", "max_data_age_s", "freshness.max_bbo_age_s and freshness.max_ctx_age_s"),
    ("exits", "max_data_age_s", "freshness.max_bbo_age_s and freshness.max_ctx_age_s"),
    ("detector", "spread_ewma_alpha", "gates.spread_ewma_alpha"),
]


@pytest.mark.parametrize(("section", "key", "new"), OLD_KEYS)
def test_an_old_key_names_its_new_place(section, key, new):
    with pytest.raises(ConfigError) as info:
        load_config(overrides={section: {key: 2.0}})
    message = str(info.value)
    assert f"{section}.{key} has moved to {new}" in message
    assert "\n" not in message  # one line


def test_an_old_key_in_a_file_names_the_file_and_every_old_key(tmp_path):
    path = tmp_path / "old.toml"
    path.write_text("[ready]\nmax_bbo_age_s = 1.0\n\n[exits]\nmax_data_age_s = 2.0\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert len(info.value.problems) == 2


def test_the_freshness_section_reaches_every_market_state():
    h = Harness(freshness={"max_bbo_age_s": 1.5, "max_future_skew_s": 3.0})
    expected = Freshness(max_bbo_age_s=1.5, max_ctx_age_s=8.0, max_future_skew_s=3.0)
    assert {st.freshness for st in h.d.markets.values()} == {expected}
    alpha = {st.spread.alpha for st in h.d.markets.values()}
    assert alpha == {load_config().gates.spread_ewma_alpha}


@pytest.mark.parametrize(
    ("key", "value"),
    [("max_bbo_age_s", 0), ("max_ctx_age_s", -1), ("max_future_skew_s", 0)],
)
def test_freshness_limits_must_be_positive(key, value):
    with pytest.raises(ConfigError, match=f"freshness.{key}"):
        load_config(overrides={"freshness": {key: value}})
