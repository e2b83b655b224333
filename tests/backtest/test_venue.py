"""The backtest venue applies a recorded top of book only when something can see the core
(`Venue._defer`): the core it shows must be the one applying every frame at once would give,
with the same order ids, quote times and books, whatever came in between."""

from __future__ import annotations

import json
import random
from decimal import Decimal

from hip3.backtest.clock import VirtualTime
from hip3.backtest.venue import RECORDED_MAKER, Venue
from hip3.protocol.frames import decode_frame
from hip3.sim.exchange import Exchange
from hip3.sim.scenario import load_scenario

START_NS = 1_767_225_600_000_000_000
OTHER_MAKER = "0x" + "5a" * 20
COINS = ("xyz:AAA", "xyz:BBB")


def _bbo(coin: str, t_ms: int, bid: tuple[str, str] | None, ask: tuple[str, str] | None):
    level = lambda side: None if side is None else {"px": side[0], "sz": side[1], "n": 1}  # noqa: E731
    frame = {
        "channel": "bbo",
        "data": {"coin": coin, "time": t_ms, "bbo": [level(bid), level(ask)]},
    }
    return decode_frame(json.dumps(frame))


def _tops(rng: random.Random, n: int) -> list[tuple[int, str, tuple | None, tuple | None]]:
    """`n` recorded tops around 25 (AAA) and 50 (BBB), 37 ms apart: some sides empty, some
    sizes below a lot (no order), prices on and off the tick grid."""
    tops = []
    for i in range(n):
        coin = rng.choice(COINS)
        mid = 25 if coin == "xyz:AAA" else 50
        bid_px = Decimal(mid) - Decimal(rng.randint(1, 40)) / 100
        ask_px = Decimal(mid) + Decimal(rng.randint(1, 40)) / 1000
        size = lambda: str(rng.choice(["0.001", "1", "2.5", "12.34", "100"]))  # noqa: E731
        bid = None if rng.random() < 0.1 else (str(bid_px), size())
        ask = None if rng.random() < 0.1 else (str(ask_px), size())
        tops.append((START_NS + i * 37_000_000, coin, bid, ask))
    return tops


def _quotes(side: tuple[str, str] | None) -> list[tuple[Decimal, Decimal]]:
    return [] if side is None else [(Decimal(side[0]), Decimal(side[1]))]


def test_tops_applied_late_leave_the_core_as_applying_each_at_once_would() -> None:
    scenario = load_scenario(None)
    time = VirtualTime(START_NS)
    venue = Venue(scenario, time=time, seed=7, timing=scenario.timing, deliver=lambda e: None)
    ref_time = VirtualTime(START_NS)
    reference = Exchange(
        scenario.universe(), clock_ms=lambda: int(ref_time.now_ms()), emit=lambda e: None, seed=7
    )
    reference.new_account(scenario.account_usdc, every_dex=True)

    deferred_seen = 0
    for i, (t_ns, coin, bid, ask) in enumerate(_tops(random.Random(3), 400)):
        time.run_until(t_ns)
        ref_time.run_until(t_ns)
        venue.apply(_bbo(coin, t_ns // 1_000_000, bid, ask))
        reference.replace_maker_quotes(coin, RECORDED_MAKER, _quotes(bid), _quotes(ask))
        deferred_seen += bool(venue._deferred)  # white box: the late path is the one tested
        if i % 50 == 49:  # someone else quotes: its order ids come after every frame so far
            for core in (venue.exchange, reference):
                core.replace_maker_quotes(
                    "xyz:CCC", OTHER_MAKER, [(Decimal("9.5"), Decimal(i))], []
                )
    assert deferred_seen > 300

    core = venue.exchange
    for maker in (RECORDED_MAKER, OTHER_MAKER):
        # oid, price, size and timestamp of every resting quote
        assert core.open_orders(maker) == reference.open_orders(maker)
    for coin in COINS:
        assert core.l2_book(coin) == reference.l2_book(coin)
    for c in (core, reference):  # the next id handed out is the same
        c.replace_maker_quotes("xyz:DDD", OTHER_MAKER, [(Decimal("1400"), Decimal(1))], [])
    assert core.open_orders(OTHER_MAKER) == reference.open_orders(OTHER_MAKER)


def test_a_top_that_crosses_itself_is_applied_at_once() -> None:
    # Its ask trades with its own bid (a self-trade cancel and an internal trade hash): that
    # cannot be skipped, so the top is applied when it comes.
    scenario = load_scenario(None)
    time = VirtualTime(START_NS)
    venue = Venue(scenario, time=time, seed=7, timing=scenario.timing, deliver=lambda e: None)
    venue.apply(_bbo("xyz:AAA", START_NS // 1_000_000, ("25.01", "1"), ("25", "1")))
    assert not venue._deferred
    venue.apply(_bbo("xyz:AAA", START_NS // 1_000_000, ("24.99", "1"), ("25", "1")))
    assert list(venue._deferred) == ["xyz:AAA"]


def test_a_block_and_an_info_request_first_bring_the_core_up_to_date() -> None:
    scenario = load_scenario(None)
    time = VirtualTime(START_NS)
    venue = Venue(scenario, time=time, seed=7, timing=scenario.timing, deliver=lambda e: None)
    venue.open(1)
    venue.apply(_bbo("xyz:AAA", START_NS // 1_000_000, ("24.99", "1"), ("25.01", "1")))
    assert list(venue._deferred) == ["xyz:AAA"]
    answers: list = []
    # Any action waits for its block (this one is refused there: it is not signed).
    venue.gateway.submit("action", {"action": {"type": "noop"}, "nonce": 1}, answers.append)
    time.run_until(START_NS + 50_000_000)
    assert list(venue._deferred) == ["xyz:AAA"] and not answers  # its block has not run yet
    time.run_until(START_NS + 2_000_000_000)
    assert not venue._deferred and len(answers) == 1

    venue.apply(_bbo("xyz:AAA", START_NS // 1_000_000 + 2000, ("24.98", "2"), ("25.02", "2")))
    assert venue._deferred
    info = {"type": "l2Book", "coin": "xyz:AAA"}
    venue.send(
        json.dumps({"method": "post", "id": 1, "request": {"type": "info", "payload": info}})
    )
    assert not venue._deferred  # answered from the core as the recording showed it


# --- the core's clock ----------------------------------------------------------------------

HOUR_NS = 3_600_000_000_000


def test_funding_is_paid_on_the_hour_from_the_last_recorded_book() -> None:
    """A backtest crossing an hour pays funding as `hip3 sim` does, and from the book the
    recording showed last: the tops kept unapplied are brought in before the payment."""
    scenario = load_scenario(None)
    time = VirtualTime(START_NS + HOUR_NS - 10_000_000_000)  # 10 s before an hour begins
    venue = Venue(scenario, time=time, seed=7, timing=scenario.timing, deliver=lambda e: None)
    venue.exchange.set_oracle("xyz:AAA", Decimal("25"))
    t_ms = time.ns // 1_000_000
    venue.apply(_bbo("xyz:AAA", t_ms, ("24.9", "10"), ("25.1", "10")))
    time.run_until(time.ns + 5_000_000_000)
    venue.apply(_bbo("xyz:AAA", t_ms + 5_000, ("25.4", "10"), ("25.6", "10")))
    assert venue._deferred, "white box: the last top waits unapplied"
    assert "xyz:AAA" not in venue._core.funding.history

    time.run_until(START_NS + HOUR_NS + 100_000_000)
    [(at_ms, _rate, premium)] = venue.exchange.funding.history["xyz:AAA"]
    assert at_ms == (START_NS + HOUR_NS) // 1_000_000
    assert premium == Decimal("0.02")  # mid 25.5 against the oracle 25: the later top
    venue.stop()


def test_a_scheduled_cancel_fires_at_its_deadline_in_virtual_time() -> None:
    scenario = load_scenario(None)
    time = VirtualTime(START_NS)
    venue = Venue(scenario, time=time, seed=7, timing=scenario.timing, deliver=lambda e: None)
    user = OTHER_MAKER  # a resting order without signing one: a simulated maker's quote
    core = venue.exchange
    core.replace_maker_quotes("xyz:AAA", user, [(Decimal("20"), Decimal("1"))], [])
    account = core.accounts[user]
    account.volume = Decimal(1_000_000)  # white box: past the switch's volume gate
    assert len(core.open_orders(user)) == 1
    now_ms = time.ns // 1_000_000
    core.scheduled.set(account, now_ms + 6_000, now_ms)

    time.run_until(START_NS + 5_900_000_000)
    assert len(venue.exchange.open_orders(user)) == 1
    time.run_until(START_NS + 6_100_000_000)
    assert venue.exchange.open_orders(user) == []
    venue.stop()
