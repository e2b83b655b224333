"""Signing: golden bytes, signer equivalence, recovery, user-signed actions."""

from __future__ import annotations

import pickle
import threading
from decimal import Decimal

import msgspec
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from hip3.protocol.actions import (
    approve_agent_action,
    batch_modify_action,
    cancel_action,
    cancel_by_cloid_action,
    limit_order_wire,
    noop_action,
    order_action,
    schedule_cancel_action,
    trigger_order_wire,
    update_leverage_action,
)
from hip3.protocol.signing import (
    AGENT_TYPEHASH,
    APPROVE_AGENT_TYPES,
    EIP712_DOMAIN_TYPEHASH,
    L1_DOMAIN_SEPARATOR,
    FastSigner,
    NonceSource,
    ReferenceSigner,
    SigningError,
    action_hash,
    recover_l1_signer,
    recover_user_signer,
    sign_user_action,
)

# anvil/hardhat development key #0: public knowledge, never funded anywhere real.
TEST_KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
TEST_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"

GOLDEN_ACTION = {
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
GOLDEN_MSGPACK = (
    "83a474797065a56f72646572a66f72646572739186a16104a162c3a170a6313637302e31a173a6302e30313437"
    "a172c2a17481a56c696d697481a3746966a3496f63a867726f7570696e67a26e61"
)
GOLDEN_CONNECTION_ID = "0fcbeda5ae3c4950a548021552a4fea2226858c4453571bf3f24ba017eac2908"


def test_golden_msgpack_and_connection_id() -> None:
    assert msgspec.msgpack.encode(GOLDEN_ACTION).hex() == GOLDEN_MSGPACK
    assert action_hash(GOLDEN_ACTION, 1677777606040).hex() == GOLDEN_CONNECTION_ID


def test_golden_hip3_order_with_cloid() -> None:
    # A golden vector of the earlier Rust bot: str8 cloid, uint32 asset.
    action = order_action(
        [
            {
                "a": 110027,
                "b": True,
                "p": "105.00",  # the Rust vector is not normalised; hashing must not care
                "s": "0.2",
                "r": False,
                "t": {"limit": {"tif": "Ioc"}},
                "c": "0x0de3e244a8f44fc28a6b7bc852d66d19",
            }
        ]
    )
    assert msgspec.msgpack.encode(action).hex() == (
        "83a474797065a56f72646572a66f72646572739187a161ce0001adcba162c3a170a63130352e3030a173a3"
        "302e32a172c2a17481a56c696d697481a3746966a3496f63a163d92230783064653365323434613866343466"
        "633238613662376263383532643636643139a867726f7570696e67a26e61"
    )
    assert (
        action_hash(action, 1769339470576).hex()
        == "904c57b8f4b75ac9da005b49298dc39af735ed8c3a89b241f5f1e061e0207868"
    )


def test_eip712_constants() -> None:
    assert EIP712_DOMAIN_TYPEHASH.hex() == (
        "8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f"
    )
    assert L1_DOMAIN_SEPARATOR.hex() == (
        "d79297fcdf2ffcd4ae223d01edaa2ba214ff8f401d7c9300d995d17c82aa4040"
    )
    assert (
        AGENT_TYPEHASH.hex() == "26f05c2f7239b6983075e58321292d77b3aa173d19b27257ac96ab362570f508"
    )


def test_large_int_packs_as_uint64() -> None:
    assert (
        msgspec.msgpack.encode({"num": 100000000000}).hex().endswith("a36e756dcf000000174876e800")
    )


def test_vault_and_expiry_layout() -> None:
    vault = "0x" + "Ab" * 20
    packed = msgspec.msgpack.encode(GOLDEN_ACTION)
    nonce = (1677777606040).to_bytes(8, "big")
    expected = keccak(
        packed + nonce + b"\x01" + bytes.fromhex("ab" * 20) + b"\x00" + (9).to_bytes(8, "big")
    )
    assert action_hash(GOLDEN_ACTION, 1677777606040, vault, 9) == expected
    assert action_hash(GOLDEN_ACTION, 1677777606040, None, 9) == keccak(
        packed + nonce + b"\x00" + b"\x00" + (9).to_bytes(8, "big")
    )


@pytest.mark.parametrize(
    ("action", "match"),
    [
        ({"type": "order", "px": 1.5}, r"float at action\.px"),
        ({"type": "order", "orders": [{"p": Decimal("1")}]}, r"Decimal at action\.orders\[0\]\.p"),
        ({"type": "x", 1: "a"}, "non-string key"),
        ({"type": "x", "n": 1 << 64}, "out of msgpack range"),
        ({"type": "x", "b": b"raw"}, "bytes"),
    ],
)
def test_unhashable_values_are_refused_with_their_path(action: dict, match: str) -> None:
    with pytest.raises(SigningError, match=match):
        action_hash(action, 1)


def test_bad_nonce_and_vault() -> None:
    with pytest.raises(SigningError, match="nonce"):
        action_hash(noop_action(), -1)
    with pytest.raises(SigningError, match="vault_address"):
        action_hash(noop_action(), 1, vault_address="0x1234")


# --- signer equivalence -----------------------------------------------------------------

wire_numbers = st.builds(
    lambda digits, places: str(Decimal(digits).scaleb(-places).normalize().__format__("f")),
    st.integers(min_value=1, max_value=10**7),
    st.integers(min_value=0, max_value=6),
)
cloids = st.none() | st.integers(min_value=0, max_value=2**128 - 1).map(lambda n: f"0x{n:032x}")
assets = st.integers(min_value=0, max_value=200_000)


@st.composite
def order_wires(draw):
    common = dict(
        asset=draw(assets),
        is_buy=draw(st.booleans()),
        px=draw(wire_numbers),
        sz=draw(wire_numbers),
        reduce_only=draw(st.booleans()),
        cloid=draw(cloids),
    )
    if draw(st.booleans()):
        return limit_order_wire(tif=draw(st.sampled_from(["Alo", "Ioc", "Gtc"])), **common)
    return trigger_order_wire(
        trigger_px=draw(wire_numbers),
        is_market=draw(st.booleans()),
        tpsl=draw(st.sampled_from(["tp", "sl"])),
        **common,
    )


oids = st.integers(min_value=0, max_value=2**63)
l1_actions = st.one_of(
    st.builds(
        order_action,
        st.lists(order_wires(), min_size=1, max_size=3),
        grouping=st.sampled_from(["na", "normalTpsl", "positionTpsl"]),
    ),
    st.builds(
        cancel_action, st.lists(st.tuples(assets, oids), min_size=1, max_size=3), fast=st.booleans()
    ),
    st.builds(
        cancel_by_cloid_action,
        st.lists(st.tuples(assets, cloids.filter(bool)), min_size=1, max_size=3),
        fast=st.booleans(),
    ),
    st.builds(
        batch_modify_action,
        st.lists(st.tuples(oids | cloids.filter(bool), order_wires()), min_size=1, max_size=2),
        always_place=st.booleans(),
    ),
    st.builds(schedule_cancel_action, st.none() | st.integers(min_value=0, max_value=2**53)),
    st.builds(
        lambda asset, cross, lev: update_leverage_action(asset=asset, is_cross=cross, leverage=lev),
        assets,
        st.booleans(),
        st.integers(min_value=1, max_value=100),
    ),
    st.just(noop_action()),
)
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
private_keys = st.integers(min_value=1, max_value=2**255).map(lambda n: n.to_bytes(32, "big"))


@given(
    key=private_keys,
    action=l1_actions,
    nonce=st.integers(min_value=0, max_value=2**64 - 1),
    mainnet=st.booleans(),
    vault=st.none() | addresses,
    expires=st.none() | st.integers(min_value=0, max_value=2**64 - 1),
)
def test_fast_and_reference_signers_agree_and_recover(key, action, nonce, mainnet, vault, expires):
    fast, reference = FastSigner(key), ReferenceSigner(key)
    assert fast.address == reference.address
    kwargs = dict(mainnet=mainnet, vault_address=vault, expires_after=expires)
    sig = fast.sign_l1(action, nonce, **kwargs)
    assert sig == reference.sign_l1(action, nonce, **kwargs)
    assert len(sig["r"]) == len(sig["s"]) == 66 and sig["r"] == sig["r"].lower()
    assert sig["v"] in (27, 28)
    assert recover_l1_signer(action, nonce, sig, **kwargs) == fast.address
    # Independent recovery through eth-account's typed-data path.
    typed = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Agent": [
                {"name": "source", "type": "string"},
                {"name": "connectionId", "type": "bytes32"},
            ],
        },
        "primaryType": "Agent",
        "domain": {
            "name": "Exchange",
            "version": "1",
            "chainId": 1337,
            "verifyingContract": "0x" + "0" * 40,
        },
        "message": {
            "source": "a" if mainnet else "b",
            "connectionId": action_hash(action, nonce, vault, expires),
        },
    }
    recovered = Account.recover_message(
        encode_typed_data(full_message=typed), vrs=(sig["v"], int(sig["r"], 16), int(sig["s"], 16))
    )
    assert recovered == fast.address


def test_network_source_changes_the_signer() -> None:
    signer = FastSigner(TEST_KEY)
    assert signer.address == TEST_ADDRESS
    sig = signer.sign_l1(GOLDEN_ACTION, 1677777606040, mainnet=False)
    assert recover_l1_signer(GOLDEN_ACTION, 1677777606040, sig, mainnet=False) == TEST_ADDRESS
    assert recover_l1_signer(GOLDEN_ACTION, 1677777606040, sig, mainnet=True) != TEST_ADDRESS
    assert recover_l1_signer(GOLDEN_ACTION, 1677777606041, sig, mainnet=False) != TEST_ADDRESS


def test_recover_accepts_unpadded_hex_and_rejects_garbage() -> None:
    sig = FastSigner(TEST_KEY).sign_l1(GOLDEN_ACTION, 5, mainnet=True)
    unpadded = {"r": hex(int(sig["r"], 16)), "s": hex(int(sig["s"], 16)), "v": sig["v"]}
    assert recover_l1_signer(GOLDEN_ACTION, 5, unpadded, mainnet=True) == TEST_ADDRESS
    for bad in (
        {"r": sig["r"], "s": sig["s"]},
        {**sig, "v": 29},
        {**sig, "r": "zz"},
        {**sig, "v": "27"},
    ):
        with pytest.raises(SigningError):
            recover_l1_signer(GOLDEN_ACTION, 5, bad, mainnet=True)


def test_key_never_shown() -> None:
    key_hex = TEST_KEY.hex()
    for signer in (FastSigner(TEST_KEY), ReferenceSigner(TEST_KEY)):
        for text in (repr(signer), str(signer), f"{signer}"):
            assert key_hex not in text and TEST_ADDRESS in text
        with pytest.raises(TypeError):
            pickle.dumps(signer)
    for bad_key in (TEST_KEY[:31], b"\x00" * 32, b"\xff" * 32, key_hex):
        for cls in (FastSigner, ReferenceSigner):
            with pytest.raises(SigningError) as info:
                cls(bad_key)
            assert key_hex not in str(info.value) and key_hex[:16] not in str(info.value)


# --- user-signed actions ----------------------------------------------------------------


def test_approve_agent_signature_recovers_to_the_master() -> None:
    master = Account.from_key(TEST_KEY)
    for name in ("bot", None):
        action = approve_agent_action(
            agent_address="0x" + "5e" * 20, agent_name=name, nonce=1_760_000_000_000, mainnet=False
        )
        sig = sign_user_action(
            TEST_KEY,
            action,
            primary_type="HyperliquidTransaction:ApproveAgent",
            types=APPROVE_AGENT_TYPES,
        )
        # Rebuild the typed data by hand, independently of the module under test.
        typed = {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "HyperliquidTransaction:ApproveAgent": [
                    {"name": "hyperliquidChain", "type": "string"},
                    {"name": "agentAddress", "type": "address"},
                    {"name": "agentName", "type": "string"},
                    {"name": "nonce", "type": "uint64"},
                ],
            },
            "primaryType": "HyperliquidTransaction:ApproveAgent",
            "domain": {
                "name": "HyperliquidSignTransaction",
                "version": "1",
                "chainId": 421614,
                "verifyingContract": "0x" + "0" * 40,
            },
            "message": {
                "hyperliquidChain": "Testnet",
                "agentAddress": "0x" + "5e" * 20,
                "agentName": name or "",
                "nonce": 1_760_000_000_000,
            },
        }
        signable = encode_typed_data(full_message=typed)
        assert signable.header.hex() == (
            "feb1393ca4412a4ca577bd51d04f0a77033514c602f4d0a11490fb95f7428df6"
        )
        vrs = (sig["v"], int(sig["r"], 16), int(sig["s"], 16))
        assert Account.recover_message(signable, vrs=vrs) == master.address
        assert (
            recover_user_signer(
                action,
                sig,
                primary_type="HyperliquidTransaction:ApproveAgent",
                types=APPROVE_AGENT_TYPES,
            )
            == master.address
        )


def test_user_action_needs_chain_id_and_fields() -> None:
    with pytest.raises(SigningError, match="signatureChainId"):
        sign_user_action(
            TEST_KEY, {"type": "approveAgent"}, primary_type="X", types=APPROVE_AGENT_TYPES
        )
    action = {"type": "approveAgent", "signatureChainId": "0x66eee", "hyperliquidChain": "Testnet"}
    with pytest.raises(SigningError, match="agentAddress"):
        sign_user_action(TEST_KEY, action, primary_type="X", types=APPROVE_AGENT_TYPES)


# --- nonces -----------------------------------------------------------------------------


def test_nonce_source_is_strictly_increasing_and_tracks_the_clock() -> None:
    now = [1000]
    source = NonceSource(clock_ms=lambda: now[0])
    assert [source.next() for _ in range(3)] == [1000, 1001, 1002]
    now[0] = 5000
    assert source.next() == 5000
    now[0] = 10  # clock stepped backwards: never reuse or go down
    assert source.next() == 5001
    assert source.last == 5001


def test_nonce_source_is_unique_across_threads() -> None:
    source = NonceSource(clock_ms=lambda: 7)
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        local = [source.next() for _ in range(2000)]
        with lock:
            results.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(7, 7 + 8000))


async def test_nonce_source_from_many_tasks() -> None:
    import asyncio

    source = NonceSource()

    async def grab() -> list[int]:
        out = []
        for _ in range(100):
            out.append(source.next())
            await asyncio.sleep(0)
        return out

    batches = await asyncio.gather(*(grab() for _ in range(10)))
    flat = [n for batch in batches for n in batch]
    assert len(set(flat)) == 1000


@pytest.mark.parametrize("rate", [1, 10_000, 80_000, 100_000_000])
@pytest.mark.parametrize("mainnet", [False, True])
def test_priority_grouping_signs_byte_for_byte_as_the_official_sdk(rate, mainnet) -> None:
    """The SDK's own builders (`order_request_to_order_wire`, `order_wires_to_order_action`
    with its `PriorityGrouping`) and signer against ours: same msgpack, same hash, same
    signature, with `{"p": rate}` in the place of "na"."""
    from eth_account import Account as SdkWallet
    from hyperliquid.utils import signing as sdk
    from hyperliquid.utils.types import Cloid

    cloid = "0x0de3e244a8f44fc28a6b7bc852d66d19"
    request = {
        "coin": "xyz:AAA",
        "is_buy": True,
        "sz": 0.25,
        "limit_px": 101.37,
        "order_type": {"limit": {"tif": "Ioc"}},
        "reduce_only": False,
        "cloid": Cloid.from_str(cloid),
    }
    sdk_action = sdk.order_wires_to_order_action(
        [sdk.order_request_to_order_wire(request, 110000)], None, {"p": rate}
    )
    ours = order_action(
        [
            limit_order_wire(
                asset=110000,
                is_buy=True,
                px="101.37",
                sz="0.25",
                reduce_only=False,
                tif="Ioc",
                cloid=cloid,
            )
        ],
        grouping={"p": rate},
    )
    assert list(ours) == ["type", "orders", "grouping"] and ours["grouping"] == {"p": rate}
    assert msgspec.msgpack.encode(ours) == msgspec.msgpack.encode(sdk_action)
    nonce = 1_767_000_000_123
    assert action_hash(ours, nonce) == sdk.action_hash(sdk_action, None, nonce, None)
    theirs = sdk.sign_l1_action(
        SdkWallet.from_key(TEST_KEY), sdk_action, None, nonce, None, mainnet
    )
    for signer in (FastSigner(TEST_KEY), ReferenceSigner(TEST_KEY)):
        sig = signer.sign_l1(ours, nonce, mainnet=mainnet)
        assert (int(sig["r"], 16), int(sig["s"], 16), sig["v"]) == (
            int(theirs["r"], 16),
            int(theirs["s"], 16),
            theirs["v"],
        )


def test_priority_grouping_is_a_map_in_the_msgpack_where_na_is_a_string() -> None:
    # "grouping" then a 1-entry map {"p": 80000 as uint32}, where "na" would be the string a26e61
    wire = limit_order_wire(
        asset=4, is_buy=True, px="1670.1", sz="0.0147", reduce_only=False, tif="Ioc"
    )
    packed = msgspec.msgpack.encode(order_action([wire], grouping={"p": 80_000})).hex()
    assert packed == GOLDEN_MSGPACK.removesuffix("a26e61") + "81a170ce00013880"
