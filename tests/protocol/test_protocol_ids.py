"""Asset ids, coin names and cloids."""

from __future__ import annotations

import threading

import pytest

from hip3.protocol.ids import (
    CloidSource,
    coin_name,
    is_cloid,
    is_perp_asset,
    perp_asset_id,
    split_coin,
    spot_asset_id,
)


def test_asset_ids() -> None:
    assert perp_asset_id(0, 0) == 0  # BTC on the validator dex
    assert perp_asset_id(0, 159) == 159
    assert perp_asset_id(1, 0) == 110000  # test:ABC on testnet (DOCS asset-ids)
    assert perp_asset_id(1, 27) == 110027
    assert perp_asset_id(3, 5) == 130005
    assert spot_asset_id(0) == 10000
    assert spot_asset_id(107) == 10107


@pytest.mark.parametrize(
    ("asset", "perp"),
    [(0, True), (9999, True), (10000, False), (10107, False), (110000, True), (100_000_000, False)],
)
def test_is_perp_asset(asset: int, perp: bool) -> None:
    assert is_perp_asset(asset) is perp


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (perp_asset_id, (-1, 0)),
        (perp_asset_id, (1, 10000)),
        (perp_asset_id, (True, 0)),
        (perp_asset_id, (1, 1.0)),
        (spot_asset_id, (-3,)),
        (is_perp_asset, (-1,)),
    ],
)
def test_bad_ids_are_refused(call, args) -> None:
    with pytest.raises(ValueError):
        call(*args)


def test_coin_names_round_trip() -> None:
    assert coin_name("xyz", "NVDA") == "xyz:NVDA"
    assert coin_name("", "NVDA") == "NVDA"
    assert split_coin("xyz:NVDA") == ("xyz", "NVDA")
    assert split_coin("BTC") == ("", "BTC")
    assert split_coin("@107") == ("", "@107")
    for dex, coin in [("xyz", "XYZ100"), ("", "ETH"), ("abcd", "SILVER")]:
        assert split_coin(coin_name(dex, coin)) == (dex, coin)


@pytest.mark.parametrize("bad", ["", ":NVDA", "xyz:", "a:b:c"])
def test_split_coin_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        split_coin(bad)


def test_coin_name_rejects_malformed() -> None:
    with pytest.raises(ValueError, match="coin"):
        coin_name("xyz", "")
    with pytest.raises(ValueError, match="dex"):
        coin_name("x:y", "NVDA")


def test_is_cloid() -> None:
    assert is_cloid("0x00000000000000000000000000000001")
    assert not is_cloid("0x0000000000000000000000000000000A")  # uppercase is not sent
    assert not is_cloid("0x1")
    assert not is_cloid("00000000000000000000000000000000ab")
    assert not is_cloid(1)


def test_cloids_are_well_formed_and_unique_across_threads() -> None:
    source = CloidSource()
    seen: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        local = [source.next() for _ in range(2000)]
        with lock:
            seen.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == len(set(seen)) == 8000
    assert all(is_cloid(c) for c in seen)


def test_cloids_differ_across_restarts_in_the_same_millisecond() -> None:
    frozen = lambda: 1_760_000_000_000  # noqa: E731
    first, second = CloidSource(clock_ms=frozen), CloidSource(clock_ms=frozen)
    a = [first.next() for _ in range(100)]
    b = [second.next() for _ in range(100)]
    assert not set(a) & set(b)
    # Layout: the high 48 bits carry the clock.
    assert int(a[0], 16) >> 80 == 1_760_000_000_000


def test_cloid_counter_and_salt_layout() -> None:
    source = CloidSource(clock_ms=lambda: 5, salt=0xABC)
    assert source.next() == f"0x{(5 << 80) | (0xABC << 32):032x}"
    assert source.next() == f"0x{(5 << 80) | (0xABC << 32) | 1:032x}"
