"""Whole dexes that change during a run (pure parts): the markets a rediscovery finds listed
since the start, each with its whole-dex entry's settings; the `[discovery]` key; and an
epoch's readiness taking a market that joins it without losing READY."""

from __future__ import annotations

from collections import Counter

import pytest
from hip3.machines.readiness import ReadinessMachine

from hip3.config import ConfigError, MarketConfig, load_config
from hip3.runtime.rediscovery import Rediscovery
from hip3.runtime.whole_dex import expand_markets, new_listings


def meta(*assets):
    return {
        "universe": [
            {"name": n, "szDecimals": 1, **({"isDelisted": True} if d else {})} for n, d in assets
        ]
    }


def test_the_wildcard_gives_each_market_its_priority_cap_too():
    entry = MarketConfig(coin="xyz:*", threshold_bps=30.0, priority_cap_bps=2.0, leverage=3)
    [m] = expand_markets((entry,), {"xyz": meta(("xyz:A", False))})
    assert (m.threshold_bps, m.priority_cap_bps, m.leverage) == (30.0, 2.0, 3)


def test_new_listings_are_the_live_markets_the_run_does_not_know():
    entries = (
        MarketConfig(coin="xyz:*", threshold_bps=30.0, leverage=2),
        MarketConfig(coin="abc:*"),
    )
    metas = {
        "xyz": meta(("xyz:A", False), ("xyz:B", True), ("xyz:C", False), ("xyz:N", False)),
        "abc": meta(("abc:Q", False)),
    }
    out = new_listings(entries, metas, known={"xyz:A", "xyz:B", "xyz:C", "abc:Q"})
    assert [(m.coin, m.threshold_bps, m.leverage) for m in out] == [("xyz:N", 30.0, 2)]
    # a delisted newcomer is not added, and a dex whose meta did not come adds nothing
    assert new_listings(entries, {"xyz": meta(("xyz:Z", True))}, known=set()) == []
    assert new_listings(entries, {}, known=set()) == []


def test_rediscover_s_is_validated():
    assert load_config().discovery.rediscover_s == 60.0
    assert load_config(overrides={"discovery": {"rediscover_s": 0}}).discovery.rediscover_s == 0
    for bad, why in ((0.01, "at least 0.1"), (-1, ">= 0"), (7200, "<= 3600")):
        with pytest.raises(ConfigError, match=f"discovery.rediscover_s.*{why}"):
            load_config(overrides={"discovery": {"rediscover_s": bad}})


def ready_epoch(outbox: list) -> ReadinessMachine:
    m = ReadinessMachine(
        epoch=1,
        markets=["xyz:A", "xyz:B"],
        trading=True,
        first_data_timeout_ms=1_000,
        exclude_on_timeout=True,
        started_ms=0,
        hardstop_is_armed=True,
        outbox=outbox,
    )
    for coin in ("xyz:A", "xyz:B"):
        for key in (f"bbo:{coin}", f"activeAssetCtx:{coin}"):
            m.send("data", key=key)
    for key in ("orderUpdates", "userEvents"):
        m.send("ack", key=key)
    m.send("data", key="userFills", snapshot=True)
    for part in ("positions", "open_orders", "fills"):
        m.send("reconciled", part=part)
    m.send("connection_live")
    assert m.trading_ready
    return m


def test_a_joined_market_is_ready_on_its_own_data_and_never_holds_the_others_back():
    outbox: list = []
    m = ready_epoch(outbox)
    outbox.clear()
    m.send("join", market="xyz:N")
    assert m.trading_ready and not m.market_ready("xyz:N")  # nothing else moved
    assert m.ready_markets() == {"xyz:A", "xyz:B"}
    m.send("tick", now_ms=60_000)  # long past the first-data timeout: not excluded for it
    assert "xyz:N" not in m.excluded and outbox == []
    m.send("ack", key="bbo:xyz:N")
    m.send("data", key="bbo:xyz:N")
    assert not m.market_ready("xyz:N") and outbox == []
    m.send("data", key="activeAssetCtx:xyz:N")
    assert m.market_ready("xyz:N") and m.trading_ready
    [announced] = outbox
    assert announced.md_ready == {"xyz:A", "xyz:B", "xyz:N"} and announced.trading
    with pytest.raises(ValueError, match="already part of epoch 1"):
        m.send("join", market="xyz:N")


def test_a_joined_market_can_be_retired_again():
    m = ready_epoch([])
    m.send("join", market="xyz:N")
    m.send("retire", market="xyz:N", reason="delisted")
    m.send("data", key="bbo:xyz:N")
    m.send("data", key="activeAssetCtx:xyz:N")
    assert not m.market_ready("xyz:N") and m.trading_ready


class FakeConn:
    def __init__(self) -> None:
        self.state, self.epoch = "live", 1


class Asker:
    """The reconciler's `ask`: records each request; the test answers or fails it."""

    def __init__(self) -> None:
        self.calls: dict[str, tuple] = {}
        self.refuse = False

    def __call__(self, payload, key, *, on_answer, on_failure) -> bool:
        if self.refuse:
            return False
        self.calls[key] = (payload, on_answer, on_failure)
        return True


PERP_DEXS = [None, {"name": "xyz", "deployerFeeScale": "1.0"}]


def xyz_meta(*names, delisted=()):
    return {
        "universe": [
            {
                "name": n,
                "szDecimals": 1,
                "maxLeverage": 5,
                **({"isDelisted": True} if n in delisted else {}),
            }
            for n in names
        ]
    }


def rediscovery(asker, applied, joined, counters):
    return Rediscovery(
        entries=(MarketConfig(coin="xyz:*", threshold_bps=40.0),),
        rediscover_s=1.0,
        ask=asker,
        conn=FakeConn(),
        specs={},
        known=lambda: {"xyz:A", "xyz:B"},
        apply_specs=applied.append,
        join=lambda entry, spec: joined.append((entry, spec)),
        counters=counters if counters is not None else Counter(),
    )


def test_a_round_asks_every_period_and_a_new_listing_joins_with_its_meta_position_id():
    asker, applied, joined, counters = Asker(), [], [], Counter()
    r = rediscovery(asker, applied, joined, counters)
    r.tick(0)  # the connection's own reconciliation just discovered: one period from now
    r.tick(999)
    assert asker.calls == {}
    r.tick(1000)
    assert sorted(asker.calls) == ["rediscover:meta:xyz", "rediscover:perpDexs"]
    asker.calls.pop("rediscover:perpDexs")[1](PERP_DEXS, 1001)
    assert applied == []  # not before every answer is in
    asker.calls.pop("rediscover:meta:xyz")[1](xyz_meta("xyz:A", "xyz:B", "xyz:N"), 1002)
    [specs] = applied
    assert specs["xyz:N"].asset == 110002 and specs["xyz:A"].asset == 110000
    [(entry, spec)] = joined
    assert (entry.coin, entry.threshold_bps, spec.asset) == ("xyz:N", 40.0, 110002)
    r.tick(1500)
    assert asker.calls == {}  # the next round is one period after the last answer
    r.tick(2002)
    assert len(asker.calls) == 2


def test_a_failed_or_incoherent_read_is_counted_retried_and_changes_nothing():
    asker, applied, joined, counters = Asker(), [], [], Counter()
    r = rediscovery(asker, applied, joined, counters)
    r.tick(0)
    r.tick(1000)
    asker.calls.pop("rediscover:perpDexs")[2]("post timed out", 1100)
    assert counters["rediscovery_failed"] == 1
    # the meta of the failed round still answers: it is not used
    asker.calls.pop("rediscover:meta:xyz")[1](xyz_meta("xyz:A", "xyz:N"), 1101)
    assert applied == [] and joined == []
    r.tick(1300)
    assert asker.calls == {}
    r.tick(1350)  # asked again after the first backoff (250 ms)
    asker.calls.pop("rediscover:perpDexs")[1]([None], 1400)  # xyz missing from perpDexs
    asker.calls.pop("rediscover:meta:xyz")[1](xyz_meta("xyz:A", "xyz:N"), 1401)
    assert applied == [] and joined == [] and counters["rediscovery_failed"] == 2
    asker.refuse = True  # no room on the wire: a failure too
    r.tick(1901)
    assert counters["rediscovery_failed"] == 3
    for failed_at in range(1901, 20_000, 1000):  # backoff 1 s (the period), never shorter
        r.tick(failed_at + 999)
        assert counters["rediscovery_failed"] == 3 + (failed_at - 1901) // 1000
        r.tick(failed_at + 1000)


def test_no_round_off_a_live_connection_or_without_whole_dexes():
    asker = Asker()
    r = rediscovery(asker, [], [], Counter())
    r.conn.state = "reconciling"
    r.tick(0)
    r.tick(5000)
    assert asker.calls == {}
    r.conn.state = "live"
    r.tick(5000)
    assert len(asker.calls) == 2
    r.conn.epoch, r.conn.state = 2, "subscribing"  # a new connection voids the round
    asker.calls.pop("rediscover:perpDexs")[2]("connection lost", 5001)
    assert r.counters["rediscovery_failed"] == 0
