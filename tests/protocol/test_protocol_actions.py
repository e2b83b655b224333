"""Action builders: exact key order, omitted flags, validation."""

from __future__ import annotations

import pytest

from hip3.protocol.actions import (
    ActionError,
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

CLOID = "0x0de3e244a8f44fc28a6b7bc852d66d19"


def limit(**overrides):
    args = dict(asset=110027, is_buy=True, px="105", sz="0.2", reduce_only=False, tif="Ioc")
    args.update(overrides)
    return limit_order_wire(**args)


def test_limit_order_key_order_and_cloid() -> None:
    wire = limit(cloid=CLOID)
    assert list(wire) == ["a", "b", "p", "s", "r", "t", "c"]
    assert wire["t"] == {"limit": {"tif": "Ioc"}}
    assert "c" not in limit()


def test_trigger_order_key_order() -> None:
    wire = trigger_order_wire(
        asset=3,
        is_buy=False,
        px="2000",
        sz="1",
        reduce_only=True,
        trigger_px="2010.5",
        is_market=True,
        tpsl="sl",
    )
    assert list(wire) == ["a", "b", "p", "s", "r", "t"]
    assert list(wire["t"]["trigger"]) == ["isMarket", "triggerPx", "tpsl"]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"tif": "FOK"}, "tif"),
        ({"px": "2000.0"}, "not canonical"),
        ({"px": 2000}, "px"),
        ({"px": "0"}, "> 0"),
        ({"sz": "1e3"}, "sz"),
        ({"asset": -1}, "asset"),
        ({"asset": True}, "asset"),
        ({"is_buy": 1}, "is_buy"),
        ({"cloid": "0xABC"}, "cloid"),
    ],
)
def test_limit_order_validation(overrides: dict, match: str) -> None:
    with pytest.raises(ActionError, match=match):
        limit(**overrides)


def test_order_action_shape() -> None:
    action = order_action([limit()])
    assert list(action) == ["type", "orders", "grouping"]
    assert action["grouping"] == "na"
    with_builder = order_action(
        [limit()],
        grouping={"p": 5},
        builder={"b": "0xABCDEF0000000000000000000000000000000001", "f": 10},
    )
    assert list(with_builder) == ["type", "orders", "grouping", "builder"]
    assert with_builder["builder"] == {"b": "0xabcdef0000000000000000000000000000000001", "f": 10}
    assert with_builder["grouping"] == {"p": 5}


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (([],), {}),
        (([{"a": 1}],), {}),
        (([limit()],), {"grouping": "weird"}),
        (([limit()],), {"builder": {"b": "0x12", "f": 1}}),
        (([limit()],), {"builder": {"b": "0x" + "0" * 40, "f": 5000}}),
    ],
)
def test_order_action_validation(args, kwargs) -> None:
    with pytest.raises(ActionError):
        order_action(*args, **kwargs)


def test_cancels_omit_fast_flag_unless_set() -> None:
    assert cancel_action([(4, 123)]) == {"type": "cancel", "cancels": [{"a": 4, "o": 123}]}
    fast = cancel_action([(4, 123)], fast=True)
    assert list(fast) == ["type", "cancels", "f"] and fast["f"] is True
    by_cloid = cancel_by_cloid_action([(110000, CLOID)])
    assert by_cloid == {"type": "cancelByCloid", "cancels": [{"asset": 110000, "cloid": CLOID}]}
    assert cancel_by_cloid_action([(1, CLOID)], fast=True)["f"] is True
    with pytest.raises(ActionError):
        cancel_action([])
    with pytest.raises(ActionError, match="cloid"):
        cancel_by_cloid_action([(1, "0x1")])


def test_batch_modify() -> None:
    action = batch_modify_action([(77, limit()), (CLOID, limit(tif="Alo"))])
    assert list(action) == ["type", "modifies"]
    assert [list(m) for m in action["modifies"]] == [["oid", "order"], ["oid", "order"]]
    assert action["modifies"][1]["oid"] == CLOID
    assert list(batch_modify_action([(1, limit())], always_place=True)) == ["type", "modifies", "a"]
    with pytest.raises(ActionError):
        batch_modify_action([("0xnope", limit())])


def test_small_actions() -> None:
    assert schedule_cancel_action() == {"type": "scheduleCancel"}
    assert schedule_cancel_action(1_760_000_005_000) == {
        "type": "scheduleCancel",
        "time": 1_760_000_005_000,
    }
    assert list(update_leverage_action(asset=110000, is_cross=False, leverage=5)) == [
        "type",
        "asset",
        "isCross",
        "leverage",
    ]
    with pytest.raises(ActionError, match="leverage"):
        update_leverage_action(asset=1, is_cross=True, leverage=0)
    assert noop_action() == {"type": "noop"}


def test_approve_agent_action() -> None:
    named = approve_agent_action(
        agent_address="0xABCDEF0000000000000000000000000000000001",
        agent_name="bot",
        nonce=1_760_000_000_000,
        mainnet=False,
    )
    assert list(named) == [
        "type",
        "agentAddress",
        "agentName",
        "nonce",
        "signatureChainId",
        "hyperliquidChain",
    ]
    assert named["agentAddress"] == "0xabcdef0000000000000000000000000000000001"
    assert named["signatureChainId"] == "0x66eee"
    assert named["hyperliquidChain"] == "Testnet"
    unnamed = approve_agent_action(
        agent_address="0x" + "1" * 40, agent_name=None, nonce=1, mainnet=True
    )
    assert "agentName" not in unnamed and unnamed["hyperliquidChain"] == "Mainnet"
    with pytest.raises(ActionError, match="agent_address"):
        approve_agent_action(agent_address="0x12", agent_name=None, nonce=1, mainnet=True)
