"""The signing key: where it may come from, and how it is kept from leaking.

A key enters the process only from an environment variable (named by `account.key_env`) or an
eth-account encrypted keyfile (`account.keystore`), never from a config file. It lives inside a
`SigningKey`, whose only exit is `secret_bytes()`: its repr and str show the address, it refuses
to be pickled or copied, and every error raised while loading it describes the problem (length,
characters, wrong password) without ever quoting the material.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn

import coincurve
from eth_utils import keccak, to_checksum_address

from hip3.config import Config, ConfigError

__all__ = [
    "KEYSTORE_PASSWORD_ENV",
    "SigningKey",
    "SigningKeyError",
    "check_signer",
    "load_signing_key",
    "trading_user",
]

KEYSTORE_PASSWORD_ENV = "HIP3_KEYSTORE_PASSWORD"

# Order of the secp256k1 group: a private key is an integer in [1, n).
_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HEX = re.compile(r"[0-9a-fA-F]*")

log = logging.getLogger(__name__)


class SigningKeyError(ValueError):
    """The signing key could not be loaded; the message never contains key material."""


class SigningKey:
    """32 secret bytes and the address they control.

    Equality and hashing are by identity: comparing a key with anything must not become a way
    to test guesses of its value.
    """

    __slots__ = ("__secret", "_address")

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes | bytearray):
            raise SigningKeyError(f"a signing key is 32 bytes, not {type(secret).__name__}")
        if len(secret) != 32:
            raise SigningKeyError(f"a signing key is 32 bytes, got {len(secret)} bytes")
        if not 0 < int.from_bytes(secret, "big") < _SECP256K1_ORDER:
            raise SigningKeyError(
                "not a valid secp256k1 private key (zero, or not below the curve order)"
            )
        self.__secret = bytes(secret)
        public = coincurve.PublicKey.from_secret(self.__secret).format(compressed=False)
        self._address: str = to_checksum_address(keccak(public[1:])[-20:])

    @classmethod
    def from_hex(cls, text: str, *, source: str = "the signing key") -> SigningKey:
        """Parse `0x` + 64 hex digits (the prefix and surrounding whitespace are optional).

        `source` names where the text came from (an environment variable, a file) so the error
        can say which input is wrong without repeating it.
        """
        body = text.strip()
        if body[:2] in ("0x", "0X"):
            body = body[2:]
        if not _HEX.fullmatch(body):
            raise SigningKeyError(
                f"{source} is not a 32-byte hex key (it contains characters other than 0-9, a-f)"
            )
        if len(body) != 64:
            raise SigningKeyError(
                f"{source} is not a 32-byte hex key (length {len(body)}, expected 64 hex digits)"
            )
        try:
            return cls(bytes.fromhex(body))
        except SigningKeyError as exc:
            raise SigningKeyError(f"{source}: {exc}") from None

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh random key (the simulator's funded account, tests)."""
        while True:
            candidate = secrets.token_bytes(32)
            if 0 < int.from_bytes(candidate, "big") < _SECP256K1_ORDER:
                return cls(candidate)

    @property
    def address(self) -> str:
        """The EIP-55 checksummed address this key signs for."""
        return self._address

    def secret_bytes(self) -> bytes:
        """The raw 32-byte secret; for the signer only."""
        return self.__secret

    def __repr__(self) -> str:
        return f"SigningKey(address={self._address})"

    __str__ = __repr__

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        # Pickling (and copy) would write the secret somewhere we cannot see.
        raise TypeError("SigningKey cannot be pickled or copied")

    def __getstate__(self) -> NoReturn:
        raise TypeError("SigningKey cannot be pickled or copied")


def load_signing_key(
    cfg: Config,
    *,
    env: Mapping[str, str] = os.environ,
    prompt: Callable[[str], str] = getpass.getpass,
) -> SigningKey | None:
    """The configured signing key, or None when no key source is configured.

    Sources: the environment variable named by `account.key_env`, or the keyfile at
    `account.keystore` (password from HIP3_KEYSTORE_PASSWORD, else `prompt`). Both at once is an
    error, as is a key that does not match `account.signer`.
    """
    name = cfg.account.key_env
    from_env = env.get(name)
    if from_env is not None and not from_env.strip():
        log.warning("%s is set but empty; treating it as not set", name)
        from_env = None
    keystore = cfg.account.keystore

    if from_env is not None and keystore is not None:
        raise SigningKeyError(
            f"both {name} and account.keystore are set; choose one source for the signing key"
        )
    if from_env is not None:
        key = SigningKey.from_hex(from_env, source=name)
        origin = f"environment variable {name}"
    elif keystore is not None:
        key = _load_keystore(Path(keystore).expanduser(), env, prompt)
        origin = f"keystore {keystore}"
    else:
        return None

    check_signer(cfg, key)
    log.info("signing key loaded from %s (address %s)", origin, key.address)
    return key


def _load_keystore(path: Path, env: Mapping[str, str], prompt: Callable[[str], str]) -> SigningKey:
    # Imported here so that importing hip3.keys stays cheap for code that never decrypts.
    from eth_account import Account

    try:
        keyfile = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SigningKeyError(f"account.keystore: file not found: {path}") from None
    except OSError as exc:
        raise SigningKeyError(f"account.keystore: cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SigningKeyError(f"account.keystore: {path} is not a JSON keyfile") from None
    if not isinstance(keyfile, dict) or ("crypto" not in keyfile and "Crypto" not in keyfile):
        raise SigningKeyError(f"account.keystore: {path} is not an eth-account keyfile")

    if KEYSTORE_PASSWORD_ENV in env:
        password = env[KEYSTORE_PASSWORD_ENV]
    else:
        try:
            password = prompt(f"Password for keystore {path}: ")
        except EOFError:
            raise SigningKeyError(
                f"account.keystore: no password for {path}: set {KEYSTORE_PASSWORD_ENV} "
                "or run interactively"
            ) from None

    try:
        secret = bytes(Account.decrypt(keyfile, password))
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise SigningKeyError(
                f"account.keystore: cannot decrypt {path}: wrong password"
            ) from None
        raise SigningKeyError(
            f"account.keystore: cannot decrypt {path}: malformed keyfile ({type(exc).__name__})"
        ) from None
    except Exception as exc:
        # Never chain or quote a library error here: it could carry decrypted bytes.
        raise SigningKeyError(
            f"account.keystore: cannot decrypt {path}: malformed keyfile ({type(exc).__name__})"
        ) from None
    try:
        return SigningKey(secret)
    except SigningKeyError as exc:
        raise SigningKeyError(f"account.keystore: {path}: {exc}") from None


def check_signer(cfg: Config, key: SigningKey) -> None:
    """When `account.signer` is configured, it must be the key's own address."""
    expected = cfg.account.signer
    if expected is not None and expected.lower() != key.address.lower():
        raise SigningKeyError(
            f"account.signer is {expected} but the signing key's address is "
            f"{key.address.lower()}; load the API wallet's key or fix account.signer"
        )


def trading_user(cfg: Config, key: SigningKey | None) -> str:
    """The account that trades (lowercase): `account.user`, else the signing key's address.

    Every user-keyed subscription and info request names this address, so trading without one
    is refused here, naming the settings that would provide it.
    """
    if cfg.account.user is not None:
        return cfg.account.user.lower()
    if key is not None:
        return key.address.lower()
    raise ConfigError(
        "no trading account: set account.user, or provide a signing key through the "
        f"environment variable {cfg.account.key_env} or account.keystore"
    )
