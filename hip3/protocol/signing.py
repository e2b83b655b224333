"""Signing of exchange actions (docs/exchange/signing.md).

L1 actions (orders, cancels, ...) are signed as an EIP-712 `Agent{source, connectionId}` in
the `Exchange` domain, where connectionId is keccak256 of the msgpack-encoded action, the
nonce, the vault flag and the optional expiry. Two signers produce byte-identical
signatures (RFC 6979 deterministic k, low s):

- `ReferenceSigner` goes through eth-account's generic typed-data encoder; slow, obviously
  right, used to cross-check.
- `FastSigner` precomputes the domain separator and the two possible `source` hashes and
  signs the final digest with coincurve; this is the one production uses.

User-signed actions (approveAgent, ...) use the `HyperliquidSignTransaction` domain and go
through eth-account only: they are rare and never on the hot path.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from typing import Any

import coincurve
import msgspec
from Crypto.Hash import keccak as _keccak_mod
from Crypto.Util import _raw_api
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys import keys as _eth_keys
from eth_utils import keccak as _eth_keccak

__all__ = [
    "AGENT_TYPEHASH",
    "APPROVE_AGENT_TYPES",
    "EIP712_DOMAIN_TYPEHASH",
    "L1_DOMAIN_SEPARATOR",
    "FastSigner",
    "NonceSource",
    "ReferenceSigner",
    "Signature",
    "SigningError",
    "action_hash",
    "l1_digest",
    "recover_l1_signer",
    "sign_user_action",
]

Signature = dict  # {"r": "0x" + 64 hex, "s": "0x" + 64 hex, "v": 27 | 28}

_UINT64_MAX = (1 << 64) - 1
_INT64_MIN = -(1 << 63)
_ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class SigningError(ValueError):
    """An action, key or signature that cannot be signed or verified as given."""


def _portable_keccak(data: bytes) -> bytes:
    return _keccak_mod.new(digest_bits=256, data=data).digest()


def _make_direct_keccak() -> Callable[[bytes], bytes] | None:
    """Keccak-256 through pycryptodome's C library without its per-call Python wrapper.

    The public `keccak.new(...).digest()` spends most of its ~14 us building wrapper
    objects; one reusable state behind a lock brings a short hash to ~5 us, which is a
    third of the signing budget saved. We open our own handle to the library so that the
    argtypes set here cannot affect pycryptodome's own calls. Any surprise (another
    backend, another symbol layout, a wrong test vector) falls back to the public API.
    """
    try:
        if _raw_api.backend != "ctypes":
            return None
        lib = ctypes.CDLL(_keccak_mod._raw_keccak_lib._name)
        init = lib.keccak_init
        init.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t, ctypes.c_ubyte]
        init.restype = ctypes.c_int
        state = ctypes.c_void_p()
        # capacity 64 bytes = Keccak-256; 24 rounds; the 0x01 padding below is Keccak's
        # (SHA3-256 would pad with 0x06 and give different hashes).
        if init(ctypes.byref(state), 64, 24) != 0:
            return None
        out = ctypes.create_string_buffer(32)
        lock = threading.Lock()
        # The per-hash calls (reset, absorb, digest) go through a second handle whose functions
        # have no argtypes, and get only ctypes instances and bytes (passed as char*):
        # converting arguments against declared argtypes costs about a microsecond per hash.
        raw = ctypes.CDLL(_keccak_mod._raw_keccak_lib._name)
        r_reset, r_absorb, r_digest = raw.keccak_reset, raw.keccak_absorb, raw.keccak_digest
        for fn in (r_reset, r_absorb, r_digest):
            fn.restype = ctypes.c_int
        size_t = ctypes.c_size_t
        n32, pad = size_t(32), ctypes.c_ubyte(1)

        def keccak256(data: bytes) -> bytes:
            with lock:
                if (
                    r_reset(state)
                    or r_absorb(state, data, size_t(len(data)))
                    or r_digest(state, out, n32, pad)
                ):
                    raise SigningError("keccak failed in the C library")
                return out.raw

        for probe in (b"", b"hip3" * 50, bytes(range(256)) * 3):
            if keccak256(probe) != _portable_keccak(probe):
                return None
        return keccak256
    except (AttributeError, OSError, TypeError, ValueError):
        return None


_keccak: Callable[[bytes], bytes] = _make_direct_keccak() or _portable_keccak


EIP712_DOMAIN_TYPEHASH = _keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
AGENT_TYPEHASH = _keccak(b"Agent(string source,bytes32 connectionId)")
_L1_DOMAIN = {
    "name": "Exchange",
    "version": "1",
    "chainId": 1337,
    "verifyingContract": _ZERO_ADDRESS,
}
L1_DOMAIN_SEPARATOR = _keccak(
    EIP712_DOMAIN_TYPEHASH
    + _keccak(b"Exchange")
    + _keccak(b"1")
    + (1337).to_bytes(32, "big")
    + bytes(32)
)
_SOURCE_HASH = {True: _keccak(b"a"), False: _keccak(b"b")}
# AGENT_TYPEHASH ‖ source hash, per network, and the fixed head of the final digest's preimage.
_AGENT_PREFIX = {net: AGENT_TYPEHASH + h for net, h in _SOURCE_HASH.items()}
_DIGEST_PREFIX = b"\x19\x01" + L1_DOMAIN_SEPARATOR
_msgpack_encode = msgspec.msgpack.Encoder().encode
_EIP712_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]

APPROVE_AGENT_TYPES: list[tuple[str, str]] = [
    ("hyperliquidChain", "string"),
    ("agentAddress", "address"),
    ("agentName", "string"),
    ("nonce", "uint64"),
]
# Fields the exchange treats as "" when a posted user action leaves them out.
_DEFAULT_EMPTY_STRING_FIELDS = frozenset({"agentName"})


# ---------------------------------------------------------------------------------------
# connectionId


def _is_plain(value: Any) -> bool:
    """Hot-path form of _check_msgpack_value: exact types, no messages.

    Plain loops rather than all(...): a generator per container costs measurable time here.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return _INT64_MIN <= value <= _UINT64_MAX
    if kind is dict:
        for key, item in value.items():  # noqa: SIM110
            if type(key) is not str or not _is_plain(item):
                return False
        return True
    if kind is list or kind is tuple:
        for item in value:  # noqa: SIM110
            if not _is_plain(item):
                return False
        return True
    return False


def _check_msgpack_value(value: Any, path: str) -> None:
    """Only types whose msgpack form is unambiguous may be hashed.

    msgspec would happily encode a float (as float64) or a Decimal (as its str(), which may
    carry an exponent or trailing zeros); either would sign something the exchange never
    sees, so they are refused here with the path of the offending value.
    """
    kind = type(value)
    if value is None or kind is str or kind is bool:
        return
    if kind is int:
        if not _INT64_MIN <= value <= _UINT64_MAX:
            raise SigningError(f"integer out of msgpack range at {path}: {value}")
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise SigningError(f"non-string key {key!r} at {path}")
            _check_msgpack_value(item, f"{path}.{key}")
        return
    if kind is list or kind is tuple:
        for i, item in enumerate(value):
            _check_msgpack_value(item, f"{path}[{i}]")
        return
    raise SigningError(
        f"unsupported {kind.__name__} at {path}: actions carry only plain str, int, bool, "
        "None, lists and dicts (prices and sizes are wire strings)"
    )


def _address_bytes(address: str, what: str) -> bytes:
    if not isinstance(address, str) or len(address) != 42 or address[:2] not in ("0x", "0X"):
        raise SigningError(f"{what} must be a 0x-prefixed 20-byte hex address, got {address!r}")
    try:
        return bytes.fromhex(address[2:])
    except ValueError:
        raise SigningError(f"{what} is not hex: {address!r}") from None


def _check_uint64(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _UINT64_MAX:
        raise SigningError(f"{what} must be an int in [0, 2^64), got {value!r}")
    return value


def action_hash(
    action: dict,
    nonce: int,
    vault_address: str | None = None,
    expires_after: int | None = None,
) -> bytes:
    """connectionId = keccak256(msgpack(action) ‖ nonce u64be ‖ vault flag[+address]
    ‖ [0x00 ‖ expiresAfter u64be])."""
    return _keccak(_action_preimage(action, nonce, vault_address, expires_after))


def _action_preimage(
    action: dict, nonce: int, vault_address: str | None, expires_after: int | None
) -> bytes:
    if type(action) is not dict:
        raise SigningError(f"action must be a dict, got {type(action).__name__}")
    if not _is_plain(action):
        _check_msgpack_value(action, "action")  # raises with the offending path
        raise SigningError("action contains a value that cannot be hashed")
    nonce_bytes = _check_uint64(nonce, "nonce").to_bytes(8, "big")
    if vault_address is None and expires_after is None:
        return _msgpack_encode(action) + nonce_bytes + b"\x00"
    parts = [_msgpack_encode(action), nonce_bytes]
    if vault_address is None:
        parts.append(b"\x00")
    else:
        parts.append(b"\x01" + _address_bytes(vault_address, "vault_address"))
    if expires_after is not None:
        # The expiry marker is 0x00, not 0x01 (docs/exchange/signing.md#l1-action-hash, step 4).
        parts.append(b"\x00" + _check_uint64(expires_after, "expires_after").to_bytes(8, "big"))
    return b"".join(parts)


def l1_digest(
    action: dict,
    nonce: int,
    *,
    mainnet: bool,
    vault_address: str | None = None,
    expires_after: int | None = None,
) -> bytes:
    """The 32-byte EIP-712 digest an L1 signature signs."""
    connection_id = _keccak(_action_preimage(action, nonce, vault_address, expires_after))
    struct_hash = _keccak(_AGENT_PREFIX[bool(mainnet)] + connection_id)
    return _keccak(_DIGEST_PREFIX + struct_hash)


# ---------------------------------------------------------------------------------------
# signers


def _check_private_key(private_key: bytes) -> bytes:
    # Messages here describe the problem only; the key itself never enters them.
    if not isinstance(private_key, bytes | bytearray) or len(private_key) != 32:
        raise SigningError("private key must be exactly 32 raw bytes")
    scalar = int.from_bytes(private_key, "big")
    if not 0 < scalar < _SECP256K1_N:
        raise SigningError("private key is not a valid secp256k1 scalar")
    return bytes(private_key)


def _signature(r: int, s: int, v: int) -> Signature:
    return {"r": f"0x{r:064x}", "s": f"0x{s:064x}", "v": v}


class _SignerBase:
    __slots__ = ("_address",)

    @property
    def address(self) -> str:
        """Checksummed address of the signing key (the API wallet, not the trading user)."""
        return self._address

    def __repr__(self) -> str:
        return f"{type(self).__name__}(address={self._address})"

    __str__ = __repr__

    def __reduce__(self):
        # Pickling would write the key somewhere; refuse rather than leak it.
        raise TypeError(f"{type(self).__name__} cannot be pickled")


class FastSigner(_SignerBase):
    """Production L1 signer: precomputed EIP-712 constants, keccak and coincurve."""

    __slots__ = ("_key",)

    def __init__(self, private_key: bytes) -> None:
        self._key = coincurve.PrivateKey(_check_private_key(private_key))
        public = self._key.public_key.format(compressed=False)[1:]
        self._address = _checksum(_keccak(public)[12:])

    def sign_l1(
        self,
        action: dict,
        nonce: int,
        *,
        mainnet: bool,
        vault_address: str | None = None,
        expires_after: int | None = None,
    ) -> Signature:
        digest = l1_digest(
            action, nonce, mainnet=mainnet, vault_address=vault_address, expires_after=expires_after
        )
        raw = self._key.sign_recoverable(digest, hasher=None)
        return {"r": "0x" + raw[:32].hex(), "s": "0x" + raw[32:64].hex(), "v": 27 + raw[64]}


class ReferenceSigner(_SignerBase):
    """L1 signer through eth-account's typed-data encoder (the cross-check)."""

    __slots__ = ("_account",)

    def __init__(self, private_key: bytes) -> None:
        self._account = Account.from_key(_check_private_key(private_key))
        self._address = self._account.address

    def sign_l1(
        self,
        action: dict,
        nonce: int,
        *,
        mainnet: bool,
        vault_address: str | None = None,
        expires_after: int | None = None,
    ) -> Signature:
        # eth-utils' keccak here, so the two signers also cross-check the hash function.
        connection_id = _eth_keccak(_action_preimage(action, nonce, vault_address, expires_after))
        typed = {
            "types": {
                "EIP712Domain": _EIP712_DOMAIN_FIELDS,
                "Agent": [
                    {"name": "source", "type": "string"},
                    {"name": "connectionId", "type": "bytes32"},
                ],
            },
            "primaryType": "Agent",
            "domain": _L1_DOMAIN,
            "message": {"source": "a" if mainnet else "b", "connectionId": connection_id},
        }
        signed = self._account.sign_message(encode_typed_data(full_message=typed))
        return _signature(signed.r, signed.s, signed.v)


def _checksum(address20: bytes) -> str:
    """EIP-55 mixed-case form of a 20-byte address."""
    lower = address20.hex()
    nibbles = _keccak(lower.encode()).hex()
    return "0x" + "".join(
        ch.upper() if ch.isalpha() and int(nibbles[i], 16) >= 8 else ch
        for i, ch in enumerate(lower)
    )


# ---------------------------------------------------------------------------------------
# user-signed actions


def _user_typed_data(action: dict, primary_type: str, types: list[tuple[str, str]]) -> dict:
    if not isinstance(action, dict):
        raise SigningError(f"action must be a dict, got {type(action).__name__}")
    chain_id_hex = action.get("signatureChainId")
    if not isinstance(chain_id_hex, str) or not chain_id_hex.startswith("0x"):
        raise SigningError(
            f"action needs signatureChainId as a 0x hex string, got {chain_id_hex!r}"
        )
    try:
        chain_id = int(chain_id_hex, 16)
    except ValueError:
        raise SigningError(f"signatureChainId is not hex: {chain_id_hex!r}") from None
    if not isinstance(primary_type, str) or not primary_type:
        raise SigningError(f"primary_type must be a non-empty string, got {primary_type!r}")
    message = {}
    for name, _type in types:
        if name in action:
            message[name] = action[name]
        elif name in _DEFAULT_EMPTY_STRING_FIELDS:
            message[name] = ""
        else:
            raise SigningError(f"action lacks field {name!r} required by {primary_type}")
    return {
        "types": {
            "EIP712Domain": _EIP712_DOMAIN_FIELDS,
            primary_type: [{"name": name, "type": kind} for name, kind in types],
        },
        "primaryType": primary_type,
        "domain": {
            "name": "HyperliquidSignTransaction",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": _ZERO_ADDRESS,
        },
        "message": message,
    }


def sign_user_action(
    private_key: bytes, action: dict, *, primary_type: str, types: list[tuple[str, str]]
) -> Signature:
    """Sign a user-signed action (e.g. approveAgent with primary_type
    "HyperliquidTransaction:ApproveAgent" and APPROVE_AGENT_TYPES) with the master key."""
    typed = _user_typed_data(action, primary_type, types)
    account = Account.from_key(_check_private_key(private_key))
    signed = account.sign_message(encode_typed_data(full_message=typed))
    return _signature(signed.r, signed.s, signed.v)


def recover_user_signer(
    action: dict, signature: Signature, *, primary_type: str, types: list[tuple[str, str]]
) -> str:
    """Checksummed address that signed a user-signed action."""
    typed = _user_typed_data(action, primary_type, types)
    r, s, v = _parse_signature(signature)
    return Account.recover_message(encode_typed_data(full_message=typed), vrs=(v, r, s))


# ---------------------------------------------------------------------------------------
# verification


def _parse_signature(signature: Signature) -> tuple[int, int, int]:
    if not isinstance(signature, dict):
        raise SigningError(f"signature must be a dict with r, s, v, got {type(signature).__name__}")
    try:
        r_hex, s_hex, v = signature["r"], signature["s"], signature["v"]
    except KeyError as exc:
        raise SigningError(f"signature lacks {exc.args[0]!r}") from None
    values = []
    for name, text in (("r", r_hex), ("s", s_hex)):
        # Unpadded hex (as the Python SDK emits) is accepted; the value is what matters.
        if not isinstance(text, str) or not text.startswith("0x") or not 2 < len(text) <= 66:
            raise SigningError(f"signature {name} must be 0x-prefixed hex, got {text!r}")
        try:
            values.append(int(text, 16))
        except ValueError:
            raise SigningError(f"signature {name} is not hex: {text!r}") from None
    if isinstance(v, bool) or v not in (27, 28):
        raise SigningError(f"signature v must be 27 or 28, got {v!r}")
    return values[0], values[1], v


def recover_l1_signer(
    action: dict,
    nonce: int,
    signature: Signature,
    *,
    mainnet: bool,
    vault_address: str | None = None,
    expires_after: int | None = None,
) -> str:
    """Checksummed address that produced `signature` over this L1 action."""
    r, s, v = _parse_signature(signature)
    digest = l1_digest(
        action, nonce, mainnet=mainnet, vault_address=vault_address, expires_after=expires_after
    )
    try:
        sig = _eth_keys.Signature(vrs=(v - 27, r, s))
        return sig.recover_public_key_from_msg_hash(digest).to_checksum_address()
    except Exception as exc:  # eth_keys raises several types for an invalid curve point
        raise SigningError(f"cannot recover a signer: {exc}") from None


# ---------------------------------------------------------------------------------------
# nonces


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class NonceSource:
    """Strictly increasing nonces: max(now_ms, last + 1).

    Tracks wall-clock time so the exchange's (T - 2 days, T + 1 day) window holds, and
    never repeats within the process even when many actions share a millisecond. A lock
    makes the read-modify-write atomic for threads; asyncio tasks never interleave inside
    `next()` because it does not await.
    """

    __slots__ = ("_clock_ms", "_last", "_lock")

    def __init__(self, clock_ms: Callable[[], int] = _wall_clock_ms) -> None:
        self._clock_ms = clock_ms
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            nonce = max(self._clock_ms(), self._last + 1)
            self._last = nonce
            return nonce

    @property
    def last(self) -> int:
        """The most recent nonce handed out (0 before the first)."""
        return self._last
