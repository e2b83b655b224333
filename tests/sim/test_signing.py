"""Signatures and nonces over the socket, as the exchange judges them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st

from hip3.sim.harness import SimHarness, wall_clock_ms
from hip3.sim.signatures import L1Verifier, action_hash
from tests.sim.doc_client import (
    AAA,
    DocClient,
    l1_connection_id,
    limit_order,
    seed_book,
    sign_l1,
    statuses,
)

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
DOC_ACTION = {
    "type": "order",
    "orders": [
        {
            "a": 4,
            "b": True,
            "p": "1670.1",
            "s": "0.0147",
            "r": False,
            "t": {"limit": {"tif": "Ioc"}},
        }
    ],
    "grouping": "na",
}
DOC_CONNECTION_ID = "0fcbeda5ae3c4950a548021552a4fea2226858c4453571bf3f24ba017eac2908"


@pytest.fixture
async def client(sim: SimHarness) -> AsyncIterator[DocClient]:
    seed_book(sim.exchange, "xyz:AAA", [("24.9", "100")], [("25.1", "100")])
    async with await DocClient.connect(sim.ws_url, sim.account[1]) as c:
        yield c


def unknown_signer_error(address: str) -> dict:
    return {"status": "err", "response": f"L1 error: User or API Wallet {address} does not exist."}


def test_action_hash_matches_the_documented_vector() -> None:
    assert action_hash(DOC_ACTION, 1677777606040, None, None).hex() == DOC_CONNECTION_ID
    assert l1_connection_id(DOC_ACTION, 1677777606040).hex() == DOC_CONNECTION_ID


@given(key=st.binary(min_size=32, max_size=32), connection_id=st.binary(min_size=32, max_size=32))
def test_fast_recovery_agrees_with_eth_account(key: bytes, connection_id: bytes) -> None:
    key = (int.from_bytes(key, "big") % (SECP256K1_N - 1) + 1).to_bytes(32, "big")
    verifier = L1Verifier("b")
    signed = Account.unsafe_sign_hash(verifier.digest(connection_id), key)
    signature = {"r": hex(signed.r), "s": hex(signed.s), "v": signed.v}
    expected = Account._recover_hash(
        verifier.digest(connection_id), vrs=(signed.v, signed.r, signed.s)
    )
    assert verifier.recover(connection_id, signature) == expected.lower()
    assert expected.lower() == Account.from_key(key).address.lower()


async def test_unknown_signer_gets_the_exchange_text(sim: SimHarness, client: DocClient) -> None:
    stranger = Account.create()
    response = await client.order(limit_order(AAA, True, "24", "1"), key=stranger.key.hex())
    assert response == unknown_signer_error(stranger.address.lower())
    assert sim.exchange.open_orders(client.address) == []


async def test_mainnet_source_recovers_another_address(sim: SimHarness, client: DocClient) -> None:
    action = {"type": "order", "orders": [limit_order(AAA, True, "24", "1")], "grouping": "na"}
    nonce = client.next_nonce()
    payload = client.signed_payload(action, nonce=nonce, source="a")
    response = (await client.post("action", payload))["payload"]
    assert response["status"] == "err"
    assert response["response"].startswith("L1 error: User or API Wallet 0x")
    assert client.address not in response["response"]
    # The same action signed for this network is accepted.
    assert "resting" in statuses(await client.action(action))[0]


async def test_tampered_number_string_changes_the_signer(
    sim: SimHarness, client: DocClient
) -> None:
    signed_action = {
        "type": "order",
        "orders": [limit_order(AAA, True, "24", "1")],
        "grouping": "na",
    }
    payload = client.signed_payload(signed_action)
    payload["action"] = {
        "type": "order",
        "orders": [limit_order(AAA, True, "24.0", "1")],
        "grouping": "na",
    }
    response = (await client.post("action", payload))["payload"]
    assert response["status"] == "err" and "does not exist" in response["response"]
    assert client.address not in response["response"]
    assert sim.exchange.open_orders(client.address) == []


async def test_unpadded_signature_scalars_are_accepted(client: DocClient) -> None:
    nonce = client.next_nonce()
    action = {"type": "noop"}
    signature = sign_l1(client.private_key, action, nonce)
    signature = {
        k: ("0x" + v[2:].lstrip("0") if isinstance(v, str) else v) for k, v in signature.items()
    }
    payload = {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None}
    assert (await client.post("action", payload))["payload"]["status"] == "ok"


async def test_garbage_signature_is_a_clear_error(client: DocClient) -> None:
    payload = client.signed_payload({"type": "noop"})
    payload["signature"]["r"] = "0xzz"
    response = (await client.post("action", payload))["payload"]
    assert response["status"] == "err" and "signature.r" in response["response"]


async def test_nonce_window_and_duplicates(client: DocClient) -> None:
    now = wall_clock_ms()
    old = now - 3 * 24 * 3600 * 1000
    response = await client.action({"type": "noop"}, nonce=old)
    assert response["status"] == "err"
    assert response["response"].startswith(f"Invalid nonce: nonce too low {old} < ")
    future = now + 2 * 24 * 3600 * 1000
    response = await client.action({"type": "noop"}, nonce=future)
    assert response["response"].startswith(f"Invalid nonce: nonce too high {future} > ")
    nonce = client.next_nonce()
    assert (await client.action({"type": "noop"}, nonce=nonce))["status"] == "ok"
    assert await client.action({"type": "noop"}, nonce=nonce) == {
        "status": "err",
        "response": f"Invalid nonce: duplicate nonce {nonce}",
    }


async def test_nonce_must_beat_the_smallest_of_the_100_highest(client: DocClient) -> None:
    base = wall_clock_ms() + 10_000
    for offset in range(100):
        assert (await client.action({"type": "noop"}, nonce=base + offset))["status"] == "ok"
    # Older but unused nonces are fine until the set is full; now it is.
    response = await client.action({"type": "noop"}, nonce=base - 5)
    assert response == {
        "status": "err",
        "response": f"Invalid nonce: nonce too low {base - 5} < {base}",
    }
    # Anything above the smallest kept nonce that was never used is still accepted.
    assert (await client.action({"type": "noop"}, nonce=base + 500))["status"] == "ok"
    response = await client.action({"type": "noop"}, nonce=base)
    assert response["response"].startswith("Invalid nonce: nonce too low")


async def test_expired_action_is_refused(client: DocClient) -> None:
    response = await client.action({"type": "noop"}, expires_after=wall_clock_ms() - 1000)
    assert response["status"] == "err" and "expired" in response["response"]
    fresh = await client.action({"type": "noop"}, expires_after=wall_clock_ms() + 60_000)
    assert fresh["status"] == "ok"


async def test_expired_action_has_the_live_text_and_burns_its_nonce(client: DocClient) -> None:
    nonce = client.next_nonce()
    expired = await client.action(
        {"type": "noop"}, nonce=nonce, expires_after=wall_clock_ms() - 1000
    )
    assert expired == {"status": "err", "response": "Action already expired"}
    retry = await client.action({"type": "noop"}, nonce=nonce)
    assert retry == {"status": "err", "response": f"Invalid nonce: duplicate nonce {nonce}"}


async def test_agent_trades_for_its_user_with_its_own_nonces(
    sim: SimHarness, client: DocClient
) -> None:
    agent = Account.create()
    agent_address = agent.address.lower()
    before = await client.order(limit_order(AAA, True, "24", "1"), key=agent.key.hex())
    assert before == unknown_signer_error(agent_address)

    assert await client.approve_agent(agent_address) == {
        "status": "ok",
        "response": {"type": "default"},
    }
    shared_nonce = client.next_nonce()
    assert (await client.action({"type": "noop"}, nonce=shared_nonce))["status"] == "ok"
    via_agent = await client.order(
        limit_order(AAA, True, "25.1", "2", "Ioc"), key=agent.key.hex(), nonce=shared_nonce
    )
    assert "filled" in statuses(via_agent)[0]  # nonce sets are per signer
    assert sim.exchange.positions(client.address) == {"xyz:AAA": 2}
    assert sim.exchange.positions(agent_address) == {}
    state = await client.info({"type": "clearinghouseState", "user": agent_address, "dex": "xyz"})
    assert state["assetPositions"] == []

    # A new unnamed agent replaces the previous one.
    successor = Account.create()
    assert (await client.approve_agent(successor.address.lower()))["status"] == "ok"
    replaced = await client.order(limit_order(AAA, True, "24", "1"), key=agent.key.hex())
    assert replaced == unknown_signer_error(agent_address)
    named = Account.create()
    assert (await client.approve_agent(named.address.lower(), name="bot"))["status"] == "ok"
    for key in (successor.key.hex(), named.key.hex()):
        assert (
            "resting" in statuses(await client.order(limit_order(AAA, True, "24", "1"), key=key))[0]
        )


async def test_approve_agent_needs_a_known_user_and_this_network(sim: SimHarness) -> None:
    stranger = Account.create()
    async with await DocClient.connect(sim.ws_url, stranger.key.hex()) as c:
        response = await c.approve_agent(Account.create().address.lower())
        assert response == unknown_signer_error(stranger.address.lower())
    async with await DocClient.connect(sim.ws_url, sim.account[1]) as c:
        response = await c.approve_agent(Account.create().address.lower(), chain="Mainnet")
        assert response["status"] == "err" and "Mainnet" in response["response"]


async def test_agent_cannot_approve_agents(sim: SimHarness, client: DocClient) -> None:
    agent = Account.create()
    assert (await client.approve_agent(agent.address.lower()))["status"] == "ok"
    async with await DocClient.connect(sim.ws_url, agent.key.hex()) as as_agent:
        response = await as_agent.approve_agent(Account.create().address.lower())
        assert response == unknown_signer_error(agent.address.lower())
