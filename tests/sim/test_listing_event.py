"""A market listed mid-run (`[[events]] list = "xyz:NEW"` on an asset declared
`unlisted = true`), seen over the socket as an outside client sees it: unknown before the
listing (not in meta, subscription and order refused), then appended to its dex's meta with
every other asset id where it was, subscribable and tradable."""

from __future__ import annotations

import asyncio

import pytest

from hip3.sim.scenario import ScenarioError, parse_scenario
from tests.sim.doc_client import DocClient, limit_order, seed_book, statuses

SCENARIO = """
[[dexes]]
name = ""
[[dexes.assets]]
name = "ETH"
sz_decimals = 4
start_px = "3000"

[[dexes]]
name = "xyz"
[[dexes.assets]]
name = "AAA"
sz_decimals = 2
start_px = "25"
[[dexes.assets]]
name = "BBB"
sz_decimals = 1
start_px = "180"
[[dexes.assets]]
name = "NEW"
sz_decimals = 0
start_px = "4"
unlisted = true
"""
AAA, BBB, NEW = 110000, 110001, 110002


def names(meta: dict) -> list[str]:
    return [entry["name"] for entry in meta["universe"]]


async def until_listed(client: DocClient, coin: str) -> dict:
    async with asyncio.timeout(5):
        while True:
            meta = await client.info({"type": "meta", "dex": "xyz"})
            if coin in names(meta):
                return meta
            await asyncio.sleep(0.02)


async def test_a_listed_market_joins_the_meta_at_the_end_and_trades(make_sim) -> None:
    scenario = parse_scenario(SCENARIO + '\n[[events]]\nat_s = 0.4\nlist = "xyz:NEW"\n')
    sim = await make_sim(scenario=scenario)
    seed_book(sim.exchange, "xyz:NEW", [("3.9", "100")], [("4.1", "100")])
    async with await DocClient.connect(sim.ws_url, sim.account[1]) as client:
        before = await client.info({"type": "meta", "dex": "xyz"})
        assert names(before) == ["xyz:AAA", "xyz:BBB"]
        dexs = await client.info({"type": "perpDexs"})
        assert [c for c, _cap in dexs[1]["assetToStreamingOiCap"]] == ["xyz:AAA", "xyz:BBB"]
        refused = await client.subscribe({"type": "bbo", "coin": "xyz:NEW"})
        assert refused["channel"] == "error"
        assert refused["data"].startswith("Invalid subscription")
        [unknown] = statuses(await client.order(limit_order(NEW, True, "3.9", "5")))
        assert "error" in unknown and str(NEW) in unknown["error"]
        assert await client.info({"type": "l2Book", "coin": "xyz:NEW"}) is None

        after = await until_listed(client, "xyz:NEW")
        assert names(after) == ["xyz:AAA", "xyz:BBB", "xyz:NEW"]  # appended: no id moved
        assert after["universe"][2]["szDecimals"] == 0
        ack = await client.subscribe({"type": "bbo", "coin": "xyz:NEW"})
        assert ack["channel"] == "subscriptionResponse"
        bbo = await client.wait_for(
            lambda f: f.get("channel") == "bbo" and f["data"]["coin"] == "xyz:NEW"
        )
        assert bbo["data"]["bbo"][0]["px"] == "3.9"
        [filled] = statuses(await client.order(limit_order(NEW, True, "4.1", "5", "Ioc")))
        assert filled["filled"]["totalSz"] == "5"
        [other] = statuses(await client.order(limit_order(AAA, True, "24", "1")))
        assert "resting" in other  # AAA's id is the one it always had
        assert sim.exchange.positions(client.address) == {"xyz:NEW": pytest.approx(5)}


def test_an_unlisted_market_must_follow_every_listed_one_of_its_dex() -> None:
    swapped = SCENARIO.replace('name = "BBB"', 'name = "ZZZ"\nunlisted = true', 1).replace(
        'name = "NEW"\nsz_decimals = 0\nstart_px = "4"\nunlisted = true',
        'name = "NEW"\nsz_decimals = 0\nstart_px = "4"',
    )
    with pytest.raises(ScenarioError, match="unlisted assets must come after every listed one"):
        parse_scenario(swapped)


def test_a_list_event_names_a_market_declared_unlisted() -> None:
    with pytest.raises(ScenarioError, match="list 'xyz:AAA' is not a market declared"):
        parse_scenario(SCENARIO + '\n[[events]]\nat_s = 1\nlist = "xyz:AAA"\n')
