"""Funding a dex, as on the exchange: a new account holds USDC on the first perp dex only and
moves collateral with usdClassTransfer and sendAsset, signed by the official SDK and sent over
HTTP. Each dex only takes its own collateral token; refusals change nothing."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from decimal import Decimal
from typing import Any

import eth_account
from hyperliquid.exchange import Exchange as SdkExchange
from hyperliquid.utils.signing import sign_send_asset_action, sign_usd_class_transfer_action

from hip3.sim.collateral import TOKENS
from hip3.sim.harness import SimHarness

USDC = "USDC:0x6d1e7cde53ba9467b783cb7c530ce054"
MAKER = "0x" + "5a" * 20
AAA = "xyz:AAA"


def pause() -> None:
    time.sleep(0.003)  # the SDK's nonce is the wall clock in ms


def post(base: str, path: str, payload: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        base + path, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def balances(base: str, user: str, dexes: list[str]) -> dict[str, Decimal]:
    """withdrawable per perp dex, and spot totals under "spot:<coin>"."""
    found = {
        dex: Decimal(
            post(base, "/info", {"type": "clearinghouseState", "user": user, "dex": dex})[
                "withdrawable"
            ]
        )
        for dex in dexes
    }
    for row in post(base, "/info", {"type": "spotClearinghouseState", "user": user})["balances"]:
        found[f"spot:{row['coin']}"] = Decimal(row["total"])
    return found


async def test_a_new_account_funds_a_usdc_dex_through_spot_and_trades_there(make_sim) -> None:
    sim: SimHarness = await make_sim(seed=5)
    sim.exchange.replace_maker_quotes(
        AAA, MAKER, [(Decimal("24.9"), Decimal("100"))], [(Decimal("25.1"), Decimal("100"))]
    )
    user, key = sim.new_account(Decimal(1000))
    base = sim.http_url

    def session() -> list[Any]:
        wallet = eth_account.Account.from_key(key)
        sdk = SdkExchange(wallet, base, perp_dexs=["", "xyz"])
        seen = [balances(base, user, ["", "xyz"])]
        refused = sdk.order(AAA, True, 1, 24, {"limit": {"tif": "Gtc"}})
        seen.append(refused["response"]["data"]["statuses"])
        seen.append(sdk.usd_class_transfer(300, to_perp=False))
        pause()
        seen.append(sdk.send_asset(user, "spot", "xyz", USDC, 200))
        pause()
        seen.append(sdk.send_asset(user, "", "xyz", USDC, 50))
        seen.append(balances(base, user, ["", "xyz"]))
        pause()
        seen.append(sdk.order(AAA, True, 1, 24, {"limit": {"tif": "Gtc"}}))
        return seen

    before, refused, to_spot, to_dex, direct, after, placed = await asyncio.to_thread(session)
    assert before == {"": 1000, "xyz": 0}
    assert refused == [{"error": "Insufficient margin to place order. asset=110000"}]
    ok = {"status": "ok", "response": {"type": "default"}}
    assert to_spot == to_dex == direct == ok
    assert after == {"": 650, "xyz": 250, "spot:USDC": 100}
    assert "resting" in placed["response"]["data"]["statuses"][0]


async def test_a_dex_takes_only_its_collateral_token(make_sim) -> None:
    sim: SimHarness = await make_sim(scenario="many_dexes")
    user, key = sim.new_account(Decimal(1000))
    usdh = TOKENS["USDH"].wire_name
    sim.exchange.transfers.deposit(user, TOKENS["USDH"], Decimal(400), "spot")  # bought on spot
    base = sim.http_url

    def session() -> list[Any]:
        sdk = SdkExchange(eth_account.Account.from_key(key), base, perp_dexs=["", "xyz"])
        answers = [sdk.send_asset(user, "", "flx", USDC, 100)]  # flx is margined in USDH
        pause()
        answers.append(sdk.send_asset(user, "spot", "hyna", usdh, 100))  # hyna takes USDe
        pause()
        answers.append(sdk.send_asset(user, "", "nope", USDC, 100))
        pause()
        answers.append(sdk.send_asset(user, "spot", "flx", "USDH:0x" + "00" * 16, 100))
        pause()
        answers.append(sdk.send_asset(user, "spot", "flx", usdh, 1000))  # only 400 there
        answers.append(balances(base, user, ["", "flx", "hyna"]))
        pause()
        answers.append(sdk.send_asset(user, "spot", "flx", usdh, 150))
        answers.append(balances(base, user, ["", "flx", "hyna"]))
        return answers

    *refusals, unchanged, ok, after = await asyncio.to_thread(session)
    assert [r["status"] for r in refusals] == ["err"] * 5
    texts = [r["response"] for r in refusals]
    assert texts[0] == "Token USDC cannot move in or out of perp dex flx: its collateral is USDH."
    assert texts[1] == "Token USDH cannot move in or out of perp dex hyna: its collateral is USDe."
    assert texts[2] == "Invalid perp DEX"
    assert texts[3] == "Unknown token USDH:0x" + "00" * 16
    assert texts[4] == "Insufficient balance for transfer: 400 USDH available on spot."
    assert unchanged == {"": 1000, "flx": 0, "hyna": 0, "spot:USDH": 400}
    assert ok["status"] == "ok"
    assert after == {"": 1000, "flx": 150, "hyna": 0, "spot:USDH": 250}
    meta = await asyncio.to_thread(post, base, "/info", {"type": "meta", "dex": "flx"})
    assert meta["collateralToken"] == TOKENS["USDH"].index


async def test_what_margin_holds_cannot_leave_a_dex(make_sim) -> None:
    sim: SimHarness = await make_sim(seed=5)
    sim.exchange.replace_maker_quotes(
        AAA, MAKER, [(Decimal("24.9"), Decimal("5000"))], [(Decimal("25.1"), Decimal("5000"))]
    )
    user, key = sim.account
    base = sim.http_url

    def session() -> list[Any]:
        sdk = SdkExchange(eth_account.Account.from_key(key), base, perp_dexs=["", "xyz"])
        sdk.update_leverage(10, AAA, is_cross=False)
        pause()
        sdk.order(AAA, True, 3000, 25.1, {"limit": {"tif": "Ioc"}})  # 7530 notional, 753 margin
        pause()
        free = balances(base, user, ["xyz"])["xyz"]
        too_much = sdk.send_asset(user, "xyz", "", USDC, float(free + 1))
        pause()
        return [free, too_much, sdk.send_asset(user, "xyz", "", USDC, float(free))]

    free, too_much, all_free = await asyncio.to_thread(session)
    assert free < Decimal(100000) - Decimal(750)
    assert too_much["response"].startswith("Insufficient balance for transfer: ")
    assert all_free["status"] == "ok"
    assert (await asyncio.to_thread(balances, base, user, ["xyz"]))["xyz"] == 0
    assert sim.exchange.positions(user) == {AAA: Decimal(3000)}


async def test_a_transfer_signed_over_other_bytes_recovers_a_stranger(make_sim) -> None:
    sim: SimHarness = await make_sim(seed=5)
    user, key = sim.account
    wallet = eth_account.Account.from_key(key)
    nonce = int(time.time() * 1000)
    action = {
        "type": "sendAsset",
        "destination": user,
        "sourceDex": "",
        "destinationDex": "xyz",
        "token": USDC,
        "amount": "10",
        "fromSubAccount": "",
        "nonce": nonce,
    }
    signature = sign_send_asset_action(wallet, action, False)
    tampered = dict(action, amount="10000")
    body = {"action": tampered, "nonce": nonce, "signature": signature, "vaultAddress": None}
    answer = await asyncio.to_thread(post, sim.http_url, "/exchange", body)
    assert answer["status"] == "err"
    assert answer["response"].startswith("Must deposit before performing actions. User: 0x")
    assert user not in answer["response"]
    mismatch = {"type": "usdClassTransfer", "amount": "5", "toPerp": False, "nonce": nonce + 1}
    signature = sign_usd_class_transfer_action(wallet, mismatch, False)
    body = {"action": mismatch, "nonce": nonce + 2, "signature": signature, "vaultAddress": None}
    answer = await asyncio.to_thread(post, sim.http_url, "/exchange", body)
    assert answer == {"status": "err", "response": "Nonce mismatch."}
    after = await asyncio.to_thread(balances, sim.http_url, user, ["", "xyz"])
    assert after == {"": 100000, "xyz": 100000}  # nothing moved, nothing on spot
