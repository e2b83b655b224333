"""The fast keccak-256 agrees with pycryptodome's wrapper and with published digests."""

from __future__ import annotations

import threading

from Crypto.Hash import keccak as reference_keccak
from hypothesis import given
from hypothesis import strategies as st

from hip3.sim.keccak import keccak256
from hip3.sim.signatures import keccak


def reference(data: bytes) -> bytes:
    return reference_keccak.new(digest_bits=256, data=data).digest()


def test_known_digests() -> None:
    # Ethereum's keccak-256, which differs from SHA3-256 only in padding.
    assert keccak256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )
    assert keccak(text="Agent(string source,bytes32 connectionId)") == reference(
        b"Agent(string source,bytes32 connectionId)"
    )


@given(st.binary(max_size=600))
def test_agrees_with_pycryptodome(data: bytes) -> None:
    assert keccak256(data) == reference(data)


def test_accepts_bytearray_and_memoryview() -> None:
    data = b"hyperliquid" * 20
    assert keccak256(bytearray(data)) == keccak256(memoryview(data)) == reference(data)


def test_consecutive_hashes_do_not_leak_state() -> None:
    # Lengths around the 136-byte rate, where a stale partial block would show.
    inputs = [bytes([i]) * n for i, n in enumerate((0, 1, 135, 136, 137, 272, 5))]
    assert [keccak256(d) for d in inputs] == [reference(d) for d in inputs]


def test_threads_each_get_correct_digests() -> None:
    failures: list[int] = []

    def work(seed: int) -> None:
        for n in range(200):
            data = bytes([seed]) * n
            if keccak256(data) != reference(data):
                failures.append(seed)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
