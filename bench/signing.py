"""FastSigner vs ReferenceSigner on the same 1000 order actions.

    python -m bench.signing [n_actions]

Signs every action with both signers, checks the signatures are identical (a fast signer
that signs something else would be worthless), and prints as the last line
`RESULT fast_us=<per sign> reference_us=<per sign> ratio=<reference/fast>` (target >= 8).
The key is a fixed, public test key; nothing secret is involved.
"""

from __future__ import annotations

import random
import sys
import time

from hip3.protocol.actions import limit_order_wire, order_action
from hip3.protocol.signing import FastSigner, ReferenceSigner

_DEFAULT_ACTIONS = 1000
_ROUNDS = 3
# The well-known first development key of anvil/hardhat; never funded on any real chain.
_TEST_KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")


def make_actions(n: int, seed: int = 7) -> list[tuple[dict, int]]:
    rng = random.Random(seed)
    actions = []
    for i in range(n):
        order = limit_order_wire(
            asset=110_000 + rng.randrange(40),
            is_buy=rng.random() < 0.5,
            px=f"{rng.randrange(1, 99_999)}",
            sz=f"{rng.randrange(1, 5000)}.{rng.randrange(1, 10)}",
            reduce_only=rng.random() < 0.2,
            tif=rng.choice(("Ioc", "Gtc", "Alo")),
            cloid=f"0x{rng.getrandbits(128):032x}",
        )
        actions.append((order_action([order]), 1_760_000_000_000 + i))
    return actions


def _sign_all(signer, actions: list[tuple[dict, int]]) -> list[dict]:
    sign = signer.sign_l1
    return [sign(action, nonce, mainnet=False) for action, nonce in actions]


def _best(signer, actions) -> tuple[float, list[dict]]:
    best, signatures = float("inf"), []
    for _ in range(_ROUNDS):
        start = time.perf_counter()
        signatures = _sign_all(signer, actions)
        best = min(best, time.perf_counter() - start)
    return best, signatures


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else _DEFAULT_ACTIONS
    actions = make_actions(n)
    fast_signer, reference_signer = FastSigner(_TEST_KEY), ReferenceSigner(_TEST_KEY)
    fast, fast_sigs = _best(fast_signer, actions)
    reference, reference_sigs = _best(reference_signer, actions)
    if fast_sigs != reference_sigs:
        print("signers disagree; the benchmark is void", file=sys.stderr)
        return 1
    fast_us, reference_us = fast / n * 1e6, reference / n * 1e6
    print(f"actions={n} rounds={_ROUNDS} (best round reported), signatures identical")
    print(
        f"RESULT fast_us={fast_us:.1f} reference_us={reference_us:.1f} "
        f"ratio={reference_us / fast_us:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
