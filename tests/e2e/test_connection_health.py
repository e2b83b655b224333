"""Connection health that protects money, end to end over real sockets against the simulator:
with a position open, repeated drops are retried well inside the exposure limit, and a socket
that goes silent (no pong, or half-open: a proxy that stops forwarding without closing) is
found and replaced within seconds."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from hip3.protocol.actions import limit_order_wire, order_action
from hip3.protocol.numbers import Rounding, format_price
from hip3.protocol.signing import FastSigner, NonceSource
from hip3.sim.harness import SimHarness

from .relay import Relay
from .support import run_against, truth_positions, wait_for

pytestmark = pytest.mark.e2e

# The bot streams and trades xyz:AAA only; the account also holds xyz:DDD, which no exit rule
# touches (no market state for it): steady exposure for the whole run until the stop flattens it.
# The stop's flatten of xyz:DDD may find no bid at first (the outside entry took the book's
# top); quick retries let it go as soon as the book refills.
QUIET = {
    "markets": [{"coin": "xyz:AAA"}],
    "detector": {"min_edge_bps": 5000.0},
    "flatten": {"retry_backoff_s": 0.2, "retry_backoff_max_s": 0.5},
}


def sim_port(sim: SimHarness) -> int:
    return int(sim.ws_url.rsplit(":", 1)[1].split("/", 1)[0])


def open_position_outside_the_bot(sim: SimHarness, coin: str = "xyz:DDD") -> None:
    signer = FastSigner(bytes.fromhex(sim.account[1].removeprefix("0x")))
    ask = Decimal(sim.exchange.bbo(coin)["bbo"][1]["px"])
    px = format_price(ask * Decimal("1.01"), sz_decimals=3, is_buy=True, rounding=Rounding.PASSIVE)
    wire = limit_order_wire(
        asset=110003, is_buy=True, px=px, sz="0.02", reduce_only=False, tif="Ioc"
    )
    action = order_action([wire])
    nonce = NonceSource().next()
    resp = sim.exchange.action(
        {
            "action": action,
            "nonce": nonce,
            "signature": signer.sign_l1(action, nonce, mainnet=False),
        }
    )
    assert "filled" in resp["response"]["data"]["statuses"][0], resp
    assert coin in truth_positions(sim)


async def test_repeated_drops_with_a_position_open_do_not_trip_the_exposure_stop():
    """Seven drops in a row, each as soon as the bot is live again. Flat, the backoff would
    reach 8-16 s by the seventh (attempts never reset: no epoch lives 30 s), past the 6 s
    exposure limit; with the position open each retry comes within the 1 s exposed cap, so
    the HardStop never trips on the drops alone, and the stop still flattens at the end."""
    gaps: list[float] = []

    async def during(d, sim):
        loop = asyncio.get_running_loop()
        for _ in range(7):
            assert await wait_for(lambda: d.conn.state == "live", 10.0), d.conn.state
            assert d.positions.open_coins() == ["xyz:DDD"]
            epoch = d.conn.epoch
            lost = loop.time()
            sim.faults.drop_all()
            assert await wait_for(lambda e=epoch: d.conn.epoch > e, 10.0), d.conn.state
            gaps.append(loop.time() - lost)
        assert d.hardstop.is_armed, d.hardstop.reasons

    async with SimHarness(seed=11) as sim:
        open_position_outside_the_bot(sim)
        summary, d = await run_against(
            sim,
            duration_s=14,
            during=during,
            websocket={
                "backoff_min_s": 0.25,
                "backoff_max_s": 60.0,
                "exposed_backoff_max_s": 1.0,
            },
            risk={"disconnect_exposure_s": 6.0},
            **QUIET,
        )
    print("reconnect gaps (s):", [round(g, 2) for g in gaps])
    assert len(gaps) == 7
    assert d.conn.attempt >= 7  # the flat backoff kept growing underneath
    assert not any("disconnected" in r for r in summary["hardstop"]["reasons"]), summary
    assert summary["reconciled"] is True
    assert summary["positions"] == {}


async def test_missing_pong_with_a_position_open_reconnects_within_seconds():
    """The server stops answering pings while the bot holds a position and market data keeps
    flowing: the exposed heartbeat (ping every 0.5 s, pong within 1 s) ends the epoch; the
    idle ping (45 s after silence) would never even have fired."""

    async def during(d, sim):
        assert await wait_for(d.ready.trading, 10.0)
        assert d.positions.open_coins() == ["xyz:DDD"]
        sim.faults.no_pong = True
        assert await wait_for(lambda: d.counters["epoch_end:heartbeat timeout"] >= 1, 6.0)
        sim.faults.no_pong = False
        assert await wait_for(d.ready.trading, 10.0)

    async with SimHarness(seed=11) as sim:
        open_position_outside_the_bot(sim)
        summary, _d = await run_against(
            sim,
            duration_s=8,
            during=during,
            websocket={"exposed_ping_interval_s": 0.5, "exposed_pong_timeout_s": 1.0},
            **QUIET,
        )
    assert summary["reconnects"] >= 1
    assert summary["reconciled"] is True and summary["positions"] == {}


async def test_flat_connection_keeps_the_idle_heartbeat():
    """Flat (no position, no order), a connection with steady market data is not pinged: the
    exposed interval applies only while money is at stake."""

    async def during(d, sim):
        assert await wait_for(d.ready.trading, 10.0)
        await asyncio.sleep(2.0)
        assert not d.positions.open_coins() and not d.orders.machines
        assert d.counters["pings_sent"] == 0, dict(d.counters)

    async with SimHarness(seed=11) as sim:
        await run_against(
            sim,
            duration_s=4,
            during=during,
            websocket={"exposed_ping_interval_s": 0.5, "exposed_pong_timeout_s": 1.0},
            **QUIET,
        )


async def test_half_open_socket_with_a_position_open_is_replaced_within_seconds():
    """The route dies silently (no FIN, no RST, nothing forwarded either way) while the bot
    holds a position: the exposed heartbeat ends that epoch, the bot reconnects through a new
    connection, becomes READY again and the stop still flattens and reconciles."""
    async with SimHarness(seed=11) as sim:
        open_position_outside_the_bot(sim)
        proxy = await Relay(sim_port(sim)).start()

        async def during(d, sim):
            assert await wait_for(d.ready.trading, 10.0)
            epoch = d.conn.epoch
            proxy.blackhole()
            assert await wait_for(lambda: d.conn.epoch > epoch, 6.0), d.conn.state
            assert d.counters["epoch_end:heartbeat timeout"] >= 1, dict(d.counters)
            assert await wait_for(d.ready.trading, 10.0)

        try:
            summary, _d = await run_against(
                sim,
                duration_s=10,
                during=during,
                websocket={"exposed_ping_interval_s": 0.5, "exposed_pong_timeout_s": 1.0},
                ws_url=proxy.ws_url,
                **QUIET,
            )
        finally:
            await proxy.sever()
    assert proxy.connections >= 2
    assert summary["reconciled"] is True and summary["positions"] == {}
    assert truth_positions(sim) == {}
