"""The timing model through the simulator's socket (WS post and HTTP), as a client sees it.

No wall-clock speed assertions: the tests assert the order things happen in, the exchange's
own timestamps (a block's time is the end of its 70 ms bucket), and lower bounds that hold
by construction (an answer never leaves before its block's commit plus the fixed latency).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from hip3.sim.blocks import MempoolRules
from hip3.sim.harness import SimHarness
from hip3.sim.latency import LatencySpec
from hip3.sim.timing import TimingConfig
from tests.sim.doc_client import AAA, DocClient, limit_order, seed_book, sign_l1, statuses

NO_LATENCY = LatencySpec(0, 0)
USDC = Decimal(100_000)
CLOCK_SLACK_MS = 2  # the loop's timers and time.time() may disagree by a hair


def now_ms() -> float:
    return time.time_ns() / 1e6


class Poster:
    """Sends signed actions without waiting, then collects each answer by post id."""

    def __init__(self, client: DocClient) -> None:
        self.client = client
        self._next = 10_000

    async def send(self, kind: str, payload: dict[str, Any]) -> int:
        self._next += 1
        message = {
            "method": "post",
            "id": self._next,
            "request": {"type": kind, "payload": payload},
        }
        await self.client.ws.send(json.dumps(message))
        return self._next

    async def send_action(self, action: dict[str, Any]) -> int:
        return await self.send("action", self.client.signed_payload(action))

    async def answer(self, post_id: int) -> dict[str, Any]:
        frame = await self.client.wait_for(
            lambda f: f.get("channel") == "post" and f["data"].get("id") == post_id
        )
        return frame["data"]["response"]["payload"]


def order_action(*orders: dict[str, Any], p: int | None = None) -> dict[str, Any]:
    action: dict[str, Any] = {"type": "order", "orders": list(orders), "grouping": "na"}
    if p is not None:
        action["grouping"] = {"p": p}
    return action


async def client_for(sim: SimHarness, key: str) -> DocClient:
    return await DocClient.connect(sim.ws_url, key)


async def test_a_cancel_sent_after_an_ioc_in_the_same_block_executes_first(
    make_sim: Callable[..., Awaitable[SimHarness]],
) -> None:
    # Long blocks and no taker wait: only the in-block order decides, and both actions are
    # sent early in one bucket (their statuses carry the same block time).
    timing = TimingConfig(block_ms=1000, mempool=MempoolRules(order_wait_ms=0), latency=NO_LATENCY)
    sim = await make_sim(timing=timing)
    maker_key = sim.account[1]
    _, taker_key = sim.new_account(USDC, every_dex=True)
    async with await client_for(sim, maker_key) as maker, await client_for(sim, taker_key) as taker:
        rest = await maker.order(limit_order(AAA, False, "25.1", "2", "Gtc"))
        [resting] = statuses(rest)
        oid = resting["resting"]["oid"]
        await maker.subscribe({"type": "orderUpdates", "user": maker.address})
        await taker.subscribe({"type": "orderUpdates", "user": taker.address})
        await asyncio.sleep((1000 - now_ms() % 1000 + 30) / 1000)  # just after a bucket starts
        ioc_id = await Poster(taker).send_action(
            order_action(limit_order(AAA, True, "25.1", "2", "Ioc"))
        )
        cancel_id = await Poster(maker).send_action(
            {"type": "cancel", "cancels": [{"a": AAA, "o": oid}]}
        )
        ioc = await Poster(taker).answer(ioc_id)
        cancel = await Poster(maker).answer(cancel_id)
        assert statuses(cancel) == ["success"]
        [ioc_status] = statuses(ioc)
        assert "could not immediately match" in ioc_status["error"]
        canceled = await maker.wait_for(_update("canceled"))
        rejected = await taker.wait_for(_update("iocCancelRejected"))
        block_time = canceled["data"][0]["statusTimestamp"]
        assert rejected["data"][0]["statusTimestamp"] == block_time  # one block
        assert block_time % 1000 == 0


def _update(status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("channel") == "orderUpdates" and f["data"][0]["status"] == status


async def test_a_higher_priority_ioc_beats_an_earlier_one_without_priority(
    make_sim: Callable[..., Awaitable[SimHarness]],
) -> None:
    sim = await make_sim(timing=TimingConfig(latency=NO_LATENCY))
    seed_book(sim.exchange, "xyz:AAA", [("20", "1")], [("25.1", "2")])
    _, early_key = sim.new_account(USDC, every_dex=True)
    rich, rich_key = sim.new_account(USDC, every_dex=True)
    sim.exchange.staking.fund(rich, Decimal(10))
    async with await client_for(sim, early_key) as early, await client_for(sim, rich_key) as late:
        take = limit_order(AAA, True, "25.1", "2", "Ioc")
        early_id = await Poster(early).send_action(order_action(take))
        late_id = await Poster(late).send_action(order_action(take, p=80_000))
        [late_status] = statuses(await Poster(late).answer(late_id))
        [early_status] = statuses(await Poster(early).answer(early_id))
    assert late_status["filled"]["totalSz"] == "2"
    assert "could not immediately match" in early_status["error"]


async def test_answers_follow_commit_plus_latency_and_user_events_follow_answers(
    make_sim: Callable[..., Awaitable[SimHarness]],
) -> None:
    latency = 150
    sim = await make_sim(timing=TimingConfig(latency=LatencySpec(latency, latency)))
    seed_book(sim.exchange, "xyz:AAA", [("20", "1")], [("25.1", "5")])
    async with await client_for(sim, sim.account[1]) as client:
        user = client.address
        await client.subscribe({"type": "userFills", "user": user})
        await client.subscribe({"type": "orderUpdates", "user": user})
        await client.wait_for(lambda f: f.get("channel") == "userFills")  # the snapshot
        sent = now_ms()
        response = await client.action(order_action(limit_order(AAA, True, "25.1", "1", "Ioc")))
        answered = now_ms()
        [status] = statuses(response)
        oid = status["filled"]["oid"]
        # Nothing about the order came before its answer on this socket.
        assert not [f for f in client.frames if f.get("channel") in ("userFills", "orderUpdates")]
        fills = await client.wait_for(lambda f: f.get("channel") == "userFills")
        update = await client.wait_for(lambda f: f.get("channel") == "orderUpdates")
    [fill] = fills["data"]["fills"]
    block_time = fill["time"]
    assert fill["oid"] == oid and update["data"][0]["statusTimestamp"] == block_time
    assert block_time % 70 == 0
    # An IOC without priority waits 360 ms in the mempool before its block can include it.
    assert block_time >= sent + 360
    assert answered >= block_time + 2 * 70 + latency - CLOCK_SLACK_MS


async def test_info_waits_for_the_network_only(
    make_sim: Callable[..., Awaitable[SimHarness]],
) -> None:
    sim = await make_sim(timing=TimingConfig(latency=LatencySpec(100, 100)))
    async with await client_for(sim, sim.account[1]) as client:
        poster = Poster(client)
        action_id = await poster.send_action({"type": "noop"})
        info_id = await poster.send("info", {"type": "meta"})
        first = await client.wait_for(lambda f: f.get("channel") == "post")
        assert first["data"]["id"] == info_id
        assert (await poster.answer(action_id))["status"] == "ok"


async def test_a_reject_fault_and_a_timed_answer_keep_the_post_slot_count(
    make_sim: Callable[..., Awaitable[SimHarness]],
) -> None:
    # A burst of timed posts is answered in full, and the in-flight count returns to zero.
    sim = await make_sim(timing=TimingConfig(latency=NO_LATENCY))
    async with await client_for(sim, sim.account[1]) as client:
        poster = Poster(client)
        ids = [await poster.send_action({"type": "noop"}) for _ in range(20)]
        answers = [await poster.answer(i) for i in ids]
    assert all(a["status"] == "ok" for a in answers)
    assert all(session.inflight_posts == 0 for session in sim.server.sessions)


# --- priority fees: eligibility and charging (timing off: they do not depend on it) -------


@pytest.fixture
async def priced(make_sim: Callable[..., Awaitable[SimHarness]]) -> SimHarness:
    sim = await make_sim()
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "10")], [("25.1", "10")])
    return sim


async def _undelegated(client: DocClient) -> Decimal:
    summary = await client.info({"type": "delegatorSummary", "user": client.address})
    return Decimal(summary["undelegated"])


async def test_an_ioc_pays_its_rate_on_the_filled_notional_from_staking(
    priced: SimHarness,
) -> None:
    async with await client_for(priced, priced.account[1]) as client:
        before = await _undelegated(client)
        assert before == 1000
        response = await client.action(
            order_action(limit_order(AAA, True, "25.2", "3", "Ioc"), p=30_000)
        )
        assert statuses(response)[0]["filled"]["totalSz"] == "3"
        after = await _undelegated(client)
    # 3 x 25.1 = 75.3 USDC at 3 bps = 0.02259 USDC, at 40 USDC per HYPE.
    assert before - after == Decimal("0.00056475")
    assert priced.exchange.staking.burned == Decimal("0.00056475")


async def test_an_alo_pays_on_its_resting_notional_at_placement(priced: SimHarness) -> None:
    async with await client_for(priced, priced.account[1]) as client:
        before = await _undelegated(client)
        response = await client.action(
            order_action(limit_order(AAA, True, "24", "2", "Alo"), p=10_000)
        )
        oid = statuses(response)[0]["resting"]["oid"]
        placed = await _undelegated(client)
        cancel = await client.action({"type": "cancel", "cancels": [{"a": AAA, "o": oid}]})
        assert statuses(cancel) == ["success"]
        after_cancel = await _undelegated(client)
    assert before - placed == Decimal("0.00012")  # 48 USDC at 1 bp, no refund on cancel
    assert after_cancel == placed


async def test_no_priority_and_a_missed_ioc_cost_nothing(priced: SimHarness) -> None:
    async with await client_for(priced, priced.account[1]) as client:
        before = await _undelegated(client)
        await client.action(order_action(limit_order(AAA, True, "25.2", "1", "Ioc")))
        missed = await client.action(
            order_action(limit_order(AAA, True, "20", "1", "Ioc"), p=80_000)
        )
        assert "could not immediately match" in statuses(missed)[0]["error"]
        assert await _undelegated(client) == before


INELIGIBLE = "Priority fee is only allowed on a batch of IOC orders or of non-reduce-only ALO"


@pytest.mark.parametrize(
    ("orders", "p", "problem"),
    [
        ([limit_order(AAA, True, "24", "1", "Gtc")], 10_000, INELIGIBLE),
        (
            [limit_order(AAA, True, "24", "1", "Alo"), limit_order(AAA, True, "25.2", "1", "Ioc")],
            10_000,
            INELIGIBLE,
        ),
        ([limit_order(AAA, False, "26", "1", "Alo", reduce_only=True)], 0, INELIGIBLE),
        ([limit_order(AAA, True, "25.2", "1", "Ioc")], 100_000_001, "grouping.p must be"),
        ([limit_order(AAA, True, "25.2", "1", "Ioc")], -1, "grouping.p must be"),
    ],
)
async def test_ineligible_or_out_of_range_priority_is_refused_whole(
    priced: SimHarness, orders: list[dict[str, Any]], p: int, problem: str
) -> None:
    async with await client_for(priced, priced.account[1]) as client:
        if problem == INELIGIBLE:
            response = await client.action(order_action(*orders, p=p))
            assert response["status"] == "err"
            assert problem in response["response"]
        else:  # a rate outside 0..1e8 does not fit the schema
            assert problem in await client.unparsable(
                client.signed_payload(order_action(*orders, p=p))
            )
        assert await client.info({"type": "openOrders", "user": client.address, "dex": "xyz"}) == []
    assert priced.exchange.positions(priced.account[0]) == {}


async def test_a_grouping_with_extra_keys_is_refused(priced: SimHarness) -> None:
    async with await client_for(priced, priced.account[1]) as client:
        action = order_action(limit_order(AAA, True, "25.2", "1", "Ioc"))
        action["grouping"] = {"p": 10_000, "q": 1}
        text = await client.unparsable(client.signed_payload(action))
    assert "only the key p" in text


async def test_priority_beyond_the_staking_balance_is_refused_before_anything_executes(
    priced: SimHarness,
) -> None:
    poor, poor_key = priced.new_account(USDC, every_dex=True)
    priced.exchange.staking.fund(poor, Decimal("0.0001"))
    async with await client_for(priced, poor_key) as client:
        response = await client.action(
            order_action(limit_order(AAA, True, "25.2", "4", "Ioc"), p=80_000)
        )
        assert response == {
            "status": "err",
            "response": "Insufficient undelegated staking balance for the priority fee.",
        }
        assert await _undelegated(client) == Decimal("0.0001")
    assert priced.exchange.positions(poor) == {}


# --- the same model over HTTP ----------------------------------------------------------------


def _http_post(port: int, path: str, body: dict[str, Any]) -> tuple[int, Any, float]:
    """POST a JSON body; (status, decoded JSON, unix ms when the answer was read)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        data = json.loads(response.read())
        return response.status, data, now_ms()
    finally:
        conn.close()


def _signed(private_key: str, action: dict[str, Any]) -> dict[str, Any]:
    nonce = time.time_ns() // 1_000_000
    return {
        "action": action,
        "nonce": nonce,
        "signature": sign_l1(private_key, action, nonce),
        "vaultAddress": None,
    }


async def test_over_http_a_higher_priority_ioc_beats_an_earlier_one(
    make_sim: Callable[..., Awaitable[SimHarness]],
) -> None:
    sim = await make_sim(timing=TimingConfig(latency=NO_LATENCY))
    seed_book(sim.exchange, "xyz:AAA", [("20", "1")], [("25.1", "2")])
    _, early_key = sim.new_account(USDC, every_dex=True)
    rich, rich_key = sim.new_account(USDC, every_dex=True)
    sim.exchange.staking.fund(rich, Decimal(10))
    take = limit_order(AAA, True, "25.1", "2", "Ioc")
    early = asyncio.create_task(
        asyncio.to_thread(
            _http_post, sim.server.port, "/exchange", _signed(early_key, order_action(take))
        )
    )
    await asyncio.sleep(0.05)  # the early one is in the mempool; the rich one pays to pass it
    late = await asyncio.to_thread(
        _http_post, sim.server.port, "/exchange", _signed(rich_key, order_action(take, p=80_000))
    )
    early_status, early_body, _ = await early
    assert (early_status, late[0]) == (200, 200)
    assert statuses(late[1])[0]["filled"]["totalSz"] == "2"
    assert "could not immediately match" in statuses(early_body)[0]["error"]


async def test_over_http_an_answer_waits_for_commit_plus_latency(
    make_sim: Callable[..., Awaitable[SimHarness]],
) -> None:
    latency = 120
    sim = await make_sim(timing=TimingConfig(latency=LatencySpec(latency, latency)))
    seed_book(sim.exchange, "xyz:AAA", [("20", "1")], [("25.1", "5")])
    user, key = sim.account
    sent = now_ms()
    action = order_action(limit_order(AAA, True, "25.1", "1", "Ioc"), p=80_000)
    status, body, answered = await asyncio.to_thread(
        _http_post, sim.server.port, "/exchange", _signed(key, action)
    )
    assert status == 200 and statuses(body)[0]["filled"]["totalSz"] == "1"
    _, fills, _ = await asyncio.to_thread(
        _http_post, sim.server.port, "/info", {"type": "userFills", "user": user}
    )
    block_time = fills[0]["time"]
    assert block_time % 70 == 0 and block_time > sent  # 8 bps: no mempool wait
    assert answered >= block_time + 2 * 70 + latency - CLOCK_SLACK_MS


async def test_an_ioc_whose_expiry_passes_in_the_mempool_dies_there(
    make_sim: Callable[..., Awaitable[SimHarness]],
) -> None:
    # Its block comes 360 ms after arrival (no priority): an expiresAfter 100 ms ahead has
    # passed by then, so the exchange refuses it instead of filling it late.
    sim = await make_sim(timing=TimingConfig(latency=NO_LATENCY))
    seed_book(sim.exchange, "xyz:AAA", [("20", "1")], [("25.1", "5")])
    async with await client_for(sim, sim.account[1]) as client:
        take = order_action(limit_order(AAA, True, "25.1", "1", "Ioc"))
        late = await client.action(take, expires_after=int(now_ms()) + 100)
        in_time = await client.action(take, expires_after=int(now_ms()) + 5000)
    assert late["status"] == "err" and "Action already expired" in late["response"]
    assert statuses(in_time)[0]["filled"]["totalSz"] == "1"
    assert sim.exchange.positions(sim.account[0]) == {"xyz:AAA": Decimal(1)}


async def _alo_race(sim: SimHarness, pause_s: float) -> tuple[list, list]:
    """A rests an ALO without priority, B one at 1 bp `pause_s` later at the same price; a
    taker then buys one order's worth. Returns (A's open orders, B's open orders)."""
    b, b_key = sim.new_account(USDC, every_dex=True)
    _, taker_key = sim.new_account(USDC, every_dex=True)
    sim.exchange.staking.fund(b, Decimal(1))
    ask = limit_order(AAA, False, "26", "1", "Alo")
    async with (
        await client_for(sim, sim.account[1]) as first,
        await client_for(sim, b_key) as payer,
        await client_for(sim, taker_key) as taker,
    ):
        assert "resting" in statuses(await first.action(order_action(ask)))[0]
        await asyncio.sleep(pause_s)
        assert "resting" in statuses(await payer.action(order_action(ask, p=10_000)))[0]
        take = await taker.action(order_action(limit_order(AAA, True, "26", "1", "Ioc")))
        assert statuses(take)[0]["filled"]["totalSz"] == "1"
        a_open = await taker.info({"type": "openOrders", "user": first.address, "dex": "xyz"})
        b_open = await taker.info({"type": "openOrders", "user": b, "dex": "xyz"})
    return a_open, b_open


async def test_a_paying_alo_rests_ahead_of_a_recent_one_that_paid_nothing(
    make_sim: Callable[..., Awaitable[SimHarness]],
) -> None:
    a_open, b_open = await _alo_race(await make_sim(), 0)
    assert (len(a_open), len(b_open)) == (1, 0)


async def test_a_paying_alo_does_not_pass_an_order_older_than_the_window(
    make_sim: Callable[..., Awaitable[SimHarness]],
) -> None:
    a_open, b_open = await _alo_race(await make_sim(), 0.45)  # > 400 ms between the two
    assert (len(a_open), len(b_open)) == (0, 1)
