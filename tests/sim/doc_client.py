"""A small Hyperliquid client written only from the public documentation.

It is deliberately independent of hip3 (no hip3.protocol, no hip3.sim): JSON over a plain
websocket, the L1 action hash from msgpack bytes, EIP-712 through eth-account's typed-data
encoder. If the simulator accepts this client, a client written from the docs works too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import msgspec
import websockets
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
WAIT_S = 5.0


def l1_connection_id(
    action: dict[str, Any], nonce: int, vault: str | None = None, expires_after: int | None = None
) -> bytes:
    data = msgspec.msgpack.encode(action) + nonce.to_bytes(8, "big")
    data += b"\x00" if vault is None else b"\x01" + bytes.fromhex(vault[2:])
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    return keccak(data)


def sign_l1(
    private_key: str,
    action: dict[str, Any],
    nonce: int,
    *,
    source: str = "b",
    vault: str | None = None,
    expires_after: int | None = None,
) -> dict[str, Any]:
    typed = {
        "domain": {
            "name": "Exchange",
            "version": "1",
            "chainId": 1337,
            "verifyingContract": ZERO_ADDRESS,
        },
        "types": {
            "Agent": [
                {"name": "source", "type": "string"},
                {"name": "connectionId", "type": "bytes32"},
            ]
        },
        "primaryType": "Agent",
        "message": {
            "source": source,
            "connectionId": l1_connection_id(action, nonce, vault, expires_after),
        },
    }
    signed = Account.sign_message(encode_typed_data(full_message=typed), private_key)
    return {"r": f"0x{signed.r:064x}", "s": f"0x{signed.s:064x}", "v": signed.v}


def sign_approve_agent(private_key: str, action: dict[str, Any]) -> dict[str, Any]:
    typed = {
        "domain": {
            "name": "HyperliquidSignTransaction",
            "version": "1",
            "chainId": int(action["signatureChainId"], 16),
            "verifyingContract": ZERO_ADDRESS,
        },
        "types": {
            "HyperliquidTransaction:ApproveAgent": [
                {"name": "hyperliquidChain", "type": "string"},
                {"name": "agentAddress", "type": "address"},
                {"name": "agentName", "type": "string"},
                {"name": "nonce", "type": "uint64"},
            ]
        },
        "primaryType": "HyperliquidTransaction:ApproveAgent",
        "message": {
            "hyperliquidChain": action["hyperliquidChain"],
            "agentAddress": action["agentAddress"],
            "agentName": action.get("agentName", ""),
            "nonce": action["nonce"],
        },
    }
    signed = Account.sign_message(encode_typed_data(full_message=typed), private_key)
    return {"r": f"0x{signed.r:064x}", "s": f"0x{signed.s:064x}", "v": signed.v}


def limit_order(
    asset: int,
    is_buy: bool,
    px: str,
    sz: str,
    tif: str = "Gtc",
    *,
    reduce_only: bool = False,
    cloid: str | None = None,
) -> dict[str, Any]:
    """An order wire in the documented key order a, b, p, s, r, t, c."""
    wire: dict[str, Any] = {
        "a": asset,
        "b": is_buy,
        "p": px,
        "s": sz,
        "r": reduce_only,
        "t": {"limit": {"tif": tif}},
    }
    if cloid is not None:
        wire["c"] = cloid
    return wire


class DocClient:
    """One websocket connection; subscriptions, info posts and signed action posts."""

    def __init__(self, ws: websockets.ClientConnection, private_key: str | None = None) -> None:
        self.ws = ws
        self.private_key = private_key
        self.address = Account.from_key(private_key).address.lower() if private_key else None
        self.source = "b"
        self._ids = itertools.count(1)
        self._last_nonce = 0
        self.frames: list[dict[str, Any]] = []  # unconsumed non-post frames, in arrival order

    @classmethod
    async def connect(cls, url: str, private_key: str | None = None) -> DocClient:
        ws = await websockets.connect(url, max_size=None)
        return cls(ws, private_key)

    async def close(self) -> None:
        await self.ws.close()

    async def __aenter__(self) -> DocClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def next_nonce(self) -> int:
        # Monotonic per key, fast-forwarded to wall time (the documented pattern).
        self._last_nonce = max(time.time_ns() // 1_000_000, self._last_nonce + 1)
        return self._last_nonce

    async def _recv(self, timeout: float) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        try:
            return json.loads(raw)
        except ValueError:
            return {"channel": "_text", "data": raw}

    async def post(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        post_id = next(self._ids)
        await self.ws.send(
            json.dumps(
                {"method": "post", "id": post_id, "request": {"type": kind, "payload": payload}}
            )
        )
        async with asyncio.timeout(WAIT_S):
            while True:
                frame = await self._recv(WAIT_S)
                if frame.get("channel") == "post" and frame["data"].get("id") == post_id:
                    return frame["data"]["response"]
                self.frames.append(frame)

    async def info(self, payload: dict[str, Any]) -> Any:
        response = await self.post("info", payload)
        if response["type"] != "info":
            raise InfoFailed(response["payload"])
        return response["payload"]["data"]

    def signed_payload(
        self,
        action: dict[str, Any],
        *,
        nonce: int | None = None,
        key: str | None = None,
        source: str | None = None,
        expires_after: int | None = None,
    ) -> dict[str, Any]:
        nonce = self.next_nonce() if nonce is None else nonce
        signature = sign_l1(
            key or self._key(),
            action,
            nonce,
            source=source or self.source,
            expires_after=expires_after,
        )
        payload: dict[str, Any] = {
            "action": action,
            "nonce": nonce,
            "signature": signature,
            "vaultAddress": None,
        }
        if expires_after is not None:
            payload["expiresAfter"] = expires_after
        return payload

    async def action(self, action: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Sign and post an L1 action; returns the /exchange response body."""
        response = await self.post("action", self.signed_payload(action, **kwargs))
        assert response["type"] == "action", response
        return response["payload"]

    async def unparsable(self, payload: dict[str, Any]) -> str:
        """Post an /exchange body the exchange cannot deserialize (HTTP 422); over the
        websocket that is a post `error` response whose payload is the text."""
        response = await self.post("action", payload)
        assert response["type"] == "error", response
        assert isinstance(response["payload"], str), response
        return response["payload"]

    async def order(self, *orders: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return await self.action(
            {"type": "order", "orders": list(orders), "grouping": "na"}, **kwargs
        )

    async def approve_agent(
        self, agent_address: str, name: str = "", chain: str = "Testnet"
    ) -> dict[str, Any]:
        nonce = self.next_nonce()
        action: dict[str, Any] = {
            "type": "approveAgent",
            "signatureChainId": "0x66eee",
            "hyperliquidChain": chain,
            "agentAddress": agent_address,
            "agentName": name,
            "nonce": nonce,
        }
        signature = sign_approve_agent(self._key(), action)
        if not name:
            del action["agentName"]  # the Python SDK posts unnamed agents without the key
        payload = {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None}
        response = await self.post("action", payload)
        return response["payload"]

    async def subscribe(self, subscription: dict[str, Any]) -> dict[str, Any]:
        await self.ws.send(json.dumps({"method": "subscribe", "subscription": subscription}))
        return await self.wait_for(lambda f: f.get("channel") in ("subscriptionResponse", "error"))

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = WAIT_S
    ) -> dict[str, Any]:
        """Take the oldest frame satisfying `predicate` out of the buffer, reading as needed.

        Frames that do not match stay buffered for later waits, so nothing is lost when an
        ack and a snapshot arrive in either order.
        """
        async with asyncio.timeout(timeout):
            index = 0
            while True:
                while index < len(self.frames):
                    frame = self.frames[index]
                    if predicate(frame):
                        del self.frames[index]
                        return frame
                    index += 1
                self.frames.append(await self._recv(timeout))

    def seen(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [f for f in self.frames if predicate(f)]

    async def drain(self, seconds: float = 0.2) -> None:
        """Read whatever arrives for a short while into `frames` (no assertion on timing)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            try:
                self.frames.append(await self._recv(left))
            except TimeoutError:
                return

    def _key(self) -> str:
        if self.private_key is None:
            raise RuntimeError("this client has no private key")
        return self.private_key


class InfoFailed(Exception):
    pass


# ---------------------------------------------------------------------------- test helpers
# Shared by the socket-level test modules (the harness is the true exchange state).

MAKER = "0x" + "ab" * 20
AAA = 110000  # xyz:AAA, szDecimals 2
CCC = 110002  # xyz:CCC, szDecimals 0, growth mode
BTC = 0  # szDecimals 5
ETH = 1  # szDecimals 4


def seed_book(
    exchange: Any, coin: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
) -> None:
    """Resting liquidity from a simulated maker (internal, no signature)."""
    from decimal import Decimal

    exchange.replace_maker_quotes(
        coin,
        MAKER,
        [(Decimal(p), Decimal(s)) for p, s in bids],
        [(Decimal(p), Decimal(s)) for p, s in asks],
    )


def statuses(response: dict[str, Any]) -> list[Any]:
    assert response["status"] == "ok", response
    return response["response"]["data"]["statuses"]
