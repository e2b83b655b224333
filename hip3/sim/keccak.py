"""Keccak-256 (Ethereum's, not SHA3-256) with little per-call overhead.

Every signed action costs three keccaks. pycryptodome's `Crypto.Hash.keccak` wrapper builds
several ctypes objects per hash, which costs several times the hash itself on short inputs.
Here the same native library is called directly, with declared argument types and one reusable
state per thread. If that library cannot be loaded, the ordinary wrapper is used instead;
either way the result is checked against a known digest at import.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from collections.abc import Callable

import Crypto.Hash
from Crypto.Hash import keccak as _pycryptodome_keccak

_EMPTY_DIGEST = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
_RATE_CAPACITY_BYTES = 64  # capacity = 2 x digest size for Keccak-256
_ROUNDS = 24
_KECCAK_PADDING = 0x01  # original Keccak padding (SHA3 uses 0x06)


def _wrapper_keccak256(data: bytes) -> bytes:
    return _pycryptodome_keccak.new(digest_bits=256, data=data).digest()


class _NativeKeccak256:
    """Direct calls into pycryptodome's `_keccak` library."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        self._init = lib.keccak_init
        self._init.argtypes = (ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t, ctypes.c_uint8)
        self._init.restype = ctypes.c_int
        self._reset = lib.keccak_reset
        self._reset.argtypes = (ctypes.c_void_p,)
        self._reset.restype = ctypes.c_int
        self._absorb = lib.keccak_absorb
        self._absorb.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t)
        self._absorb.restype = ctypes.c_int
        self._digest = lib.keccak_digest
        self._digest.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint8)
        self._digest.restype = ctypes.c_int
        self._local = threading.local()

    def _state(self) -> tuple[ctypes.c_void_p, ctypes.Array[ctypes.c_char]]:
        state = ctypes.c_void_p()
        if self._init(ctypes.byref(state), _RATE_CAPACITY_BYTES, _ROUNDS):
            raise OSError("keccak_init failed")
        pair = (state, ctypes.create_string_buffer(32))
        self._local.pair = pair
        return pair

    def __call__(self, data: bytes) -> bytes:
        if type(data) is not bytes:  # c_char_p takes bytes only (bytearray, memoryview: copy)
            data = bytes(data)
        try:
            state, out = self._local.pair
        except AttributeError:
            state, out = self._state()
        if (
            self._reset(state)
            or self._absorb(state, data, len(data))
            or self._digest(state, out, 32, _KECCAK_PADDING)
        ):
            raise ValueError("native keccak failed")
        return out.raw


def _load() -> Callable[[bytes], bytes]:
    folder = os.path.dirname(Crypto.Hash.__file__)
    for path in sorted(glob.glob(os.path.join(folder, "_keccak*"))):
        if not path.endswith((".so", ".pyd", ".dylib")):
            continue
        try:
            native = _NativeKeccak256(path)
            if native(b"") == _EMPTY_DIGEST and native(b"abc") == _wrapper_keccak256(b"abc"):
                return native
        except (OSError, AttributeError, ValueError):
            continue
    return _wrapper_keccak256


keccak256: Callable[[bytes], bytes] = _load()
if keccak256(b"") != _EMPTY_DIGEST:  # pragma: no cover - a broken install must not sign wrongly
    raise RuntimeError("keccak-256 self-check failed")

__all__ = ["keccak256"]
