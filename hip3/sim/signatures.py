"""Signer recovery for L1 (phantom agent) and user-signed actions, as the exchange does it.

The exchange never says "bad signature": it recovers *some* address from whatever was signed,
and that address is then unknown. A client that hashes different bytes (wrong key order, a
float, "2000.0" vs "2000", mainnet source "a") therefore fails as "User or API Wallet ...
does not exist". The same happens here, because the hash is computed from the action exactly
as the client sent it (dict order = JSON order).
"""

from __future__ import annotations

from typing import Any

import coincurve
import msgspec
from eth_account import Account
from eth_account.messages import encode_typed_data

from hip3.sim.keccak import keccak256

_ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
_AGENT_TYPES = {
    "Agent": [{"name": "source", "type": "string"}, {"name": "connectionId", "type": "bytes32"}]
}
_L1_DOMAIN = {
    "name": "Exchange",
    "version": "1",
    "chainId": 1337,
    "verifyingContract": _ZERO_ADDRESS,
}
APPROVE_AGENT_TYPES = {
    "HyperliquidTransaction:ApproveAgent": [
        {"name": "hyperliquidChain", "type": "string"},
        {"name": "agentAddress", "type": "address"},
        {"name": "agentName", "type": "string"},
        {"name": "nonce", "type": "uint64"},
    ]
}
USD_CLASS_TRANSFER_TYPES = {
    "HyperliquidTransaction:UsdClassTransfer": [
        {"name": "hyperliquidChain", "type": "string"},
        {"name": "amount", "type": "string"},
        {"name": "toPerp", "type": "bool"},
        {"name": "nonce", "type": "uint64"},
    ]
}
SEND_ASSET_TYPES = {
    "HyperliquidTransaction:SendAsset": [
        {"name": "hyperliquidChain", "type": "string"},
        {"name": "destination", "type": "string"},
        {"name": "sourceDex", "type": "string"},
        {"name": "destinationDex", "type": "string"},
        {"name": "token", "type": "string"},
        {"name": "amount", "type": "string"},
        {"name": "fromSubAccount", "type": "string"},
        {"name": "nonce", "type": "uint64"},
    ]
}
USER_SET_ABSTRACTION_TYPES = {
    "HyperliquidTransaction:UserSetAbstraction": [
        {"name": "hyperliquidChain", "type": "string"},
        {"name": "user", "type": "address"},
        {"name": "abstraction", "type": "string"},
        {"name": "nonce", "type": "uint64"},
    ]
}
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def keccak(data: bytes = b"", *, text: str | None = None) -> bytes:
    if text is not None:
        data = text.encode()
    return keccak256(data)


class SignatureError(ValueError):
    """The signature object itself is malformed (not a recovery failure)."""


def _agent_message(source: str, connection_id: bytes) -> dict[str, Any]:
    return {
        "domain": _L1_DOMAIN,
        "types": _AGENT_TYPES,
        "primaryType": "Agent",
        "message": {"source": source, "connectionId": connection_id},
    }


class L1Verifier:
    """Recovers L1 signers for one network source ("a" mainnet, "b" testnet).

    The domain separator and the constant half of the struct hash come from eth-account's
    EIP-712 encoder once; per action only two keccaks and one recovery remain.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._addresses: dict[bytes, str] = {}
        reference = encode_typed_data(full_message=_agent_message(source, b"\x00" * 32))
        self._prefix = b"\x19\x01" + reference.header
        agent_typehash = keccak(text="Agent(string source,bytes32 connectionId)")
        self._struct_prefix = agent_typehash + keccak(text=source)
        if keccak(self._struct_prefix + b"\x00" * 32) != reference.body:
            raise RuntimeError("phantom agent struct hash disagrees with eth-account")

    def digest(self, connection_id: bytes) -> bytes:
        return keccak(self._prefix + keccak(self._struct_prefix + connection_id))

    def recover(self, connection_id: bytes, signature: Any) -> str:
        # Recovery dominates the cost of an order: call libsecp256k1 (coincurve, the backend
        # eth-keys uses too) directly instead of going through eth-keys' object layers, which
        # doubles the cost. tests/sim/test_signing*.py pins agreement with eth-account.
        v, r, s = parse_signature(signature)
        compact = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v,))
        digest = self.digest(connection_id)
        try:
            public_key = coincurve.PublicKey.from_signature_and_message(
                compact, digest, hasher=None
            )
        except Exception:
            raise SignatureError("Unable to recover signer.") from None
        raw = public_key.format(compressed=False)
        address = self._addresses.get(raw)
        if address is None:  # few distinct signers: remember their addresses, save a keccak
            address = "0x" + keccak(raw[1:])[-20:].hex()
            if len(self._addresses) < 10_000:
                self._addresses[raw] = address
        return address


def action_hash(
    action: dict[str, Any], nonce: int, vault_address: str | None, expires_after: int | None
) -> bytes:
    """connectionId = keccak(msgpack(action) ‖ nonce be64 ‖ vault flag ‖ [0x00 ‖ expiresAfter])."""
    data = bytearray(msgspec.msgpack.encode(action))
    data += nonce.to_bytes(8, "big")
    if vault_address is None:
        data += b"\x00"
    else:
        data += b"\x01" + bytes.fromhex(vault_address.removeprefix("0x"))
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    return keccak(bytes(data))


def recover_approve_agent(action: dict[str, Any], signature: Any) -> str:
    """Signer of a user-signed approveAgent (HyperliquidSignTransaction domain)."""
    message = dict(action)
    message.setdefault("agentName", "")  # an unnamed agent is signed with "" and posted without
    return recover_user_signed(message, APPROVE_AGENT_TYPES, signature)


def recover_user_signed(action: dict[str, Any], types: dict[str, Any], signature: Any) -> str:
    """Signer of a user-signed action: EIP-712 over the fields `types` lists (the official
    SDKs sign the action dict itself; fields the type does not list, like `type`, are not
    part of the hash), in the HyperliquidSignTransaction domain of `signatureChainId`."""
    ((primary, fields),) = types.items()
    message = {field["name"]: action[field["name"]] for field in fields}
    signable = encode_typed_data(
        full_message={
            "domain": {
                "name": "HyperliquidSignTransaction",
                "version": "1",
                "chainId": int(action["signatureChainId"], 16),
                "verifyingContract": _ZERO_ADDRESS,
            },
            "types": types,
            "primaryType": primary,
            "message": message,
        }
    )
    v, r, s = parse_signature(signature)
    try:
        return Account.recover_message(signable, vrs=(v + 27, r, s)).lower()
    except Exception:
        raise SignatureError("Unable to recover signer.") from None


def parse_signature(signature: Any) -> tuple[int, int, int]:
    """(recovery id 0/1, r, s) from {"r": hex, "s": hex, "v": 27|28}; r/s may be unpadded."""
    if not isinstance(signature, dict):
        raise SignatureError("signature must be an object {r, s, v}")
    r = _hex_scalar(signature.get("r"), "r")
    s = _hex_scalar(signature.get("s"), "s")
    v = signature.get("v")
    if isinstance(v, bool) or not isinstance(v, int) or v not in (0, 1, 27, 28):
        raise SignatureError("signature.v must be 27 or 28")
    return (v - 27 if v >= 27 else v), r, s


def _hex_scalar(value: Any, name: str) -> int:
    if not isinstance(value, str) or not value.startswith("0x") or not 3 <= len(value) <= 66:
        raise SignatureError(f"signature.{name} must be a 0x-prefixed hex string of 1-64 digits")
    try:
        scalar = int(value, 16)
    except ValueError:
        raise SignatureError(f"signature.{name} is not hexadecimal") from None
    if not 0 < scalar < _SECP256K1_N:
        raise SignatureError(f"signature.{name} is out of range")
    return scalar
