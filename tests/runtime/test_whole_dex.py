"""Whole-dex expansion (pure): every listed market of the dex, exact entries overriding the
wildcard in their own place, delisted markets left out, unknown or empty dexes refused; and
the readiness of an epoch letting a delisted market go."""

from __future__ import annotations

import pytest
from hip3.machines.readiness import ReadinessMachine

from hip3.config import ConfigError, MarketConfig, load_config
from hip3.runtime.whole_dex import WholeDexError, expand_markets


def meta(*assets):
    return {
        "universe": [
            {"name": n, "szDecimals": 1, **({"isDelisted": True} if d else {})} for n, d in assets
        ]
    }


XYZ = meta(("xyz:A", False), ("xyz:B", True), ("xyz:C", False), ("xyz:D", False))


def test_wildcard_expands_in_meta_order_without_delisted_markets():
    out = expand_markets((MarketConfig(coin="xyz:*", threshold_bps=30.0),), {"xyz": XYZ})
    assert [m.coin for m in out] == ["xyz:A", "xyz:C", "xyz:D"]
    assert {m.threshold_bps for m in out} == {30.0}


def test_exact_entries_beat_the_wildcard_and_other_dexes_are_kept():
    markets = (
        MarketConfig(coin="BTC"),
        MarketConfig(coin="xyz:*", threshold_bps=30.0),
        MarketConfig(coin="xyz:C", threshold_bps=5.0),
    )
    out = expand_markets(markets, {"xyz": XYZ})
    assert [(m.coin, m.threshold_bps) for m in out] == [
        ("BTC", None),
        ("xyz:A", 30.0),
        ("xyz:D", 30.0),
        ("xyz:C", 5.0),
    ]


def test_unknown_dex_and_dex_without_live_markets_are_refused_by_name():
    with pytest.raises(WholeDexError, match="dex 'abc' is not listed"):
        expand_markets((MarketConfig(coin="abc:*"),), {"xyz": XYZ})
    with pytest.raises(WholeDexError, match="dex 'old' lists no market that trades"):
        expand_markets((MarketConfig(coin="old:*"),), {"old": meta(("old:X", True))})


def test_config_accepts_a_whole_dex_and_refuses_other_wildcards():
    cfg = load_config(overrides={"markets": [{"coin": "xyz:*"}, {"coin": "xyz:AAA"}]})
    assert cfg.whole_dexes == ("xyz",) and cfg.dexes == ("xyz",)
    for bad in ("*", "xyz:A*", ":*"):
        with pytest.raises(ConfigError, match="'dex:\\*'"):
            load_config(overrides={"markets": [{"coin": bad}]})


def test_a_retired_market_no_longer_holds_the_epoch_back():
    m = ReadinessMachine(
        epoch=1,
        markets=["xyz:A", "xyz:B"],
        trading=False,
        first_data_timeout_ms=10_000,
        exclude_on_timeout=True,
        started_ms=0,
    )
    for key in ("bbo:xyz:A", "activeAssetCtx:xyz:A"):
        m.send("ack", key=key)
        m.send("data", key=key)
    assert not m.is_md_ready
    m.send("retire", market="xyz:B", reason="delisted")
    assert m.is_md_ready and m.excluded == {"xyz:B": "delisted"}
    # data that still comes does not bring a delisted market back
    m.send("ack", key="bbo:xyz:B")
    m.send("data", key="bbo:xyz:B")
    m.send("ack", key="activeAssetCtx:xyz:B")
    m.send("data", key="activeAssetCtx:xyz:B")
    assert not m.market_ready("xyz:B")
    with pytest.raises(ValueError, match="unknown market"):
        m.send("retire", market="xyz:Z", reason="delisted")
