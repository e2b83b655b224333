"""Collateral tokens: the spot tokens a perp dex can be margined in.

Every perp dex names its collateral in `meta(dex).collateralToken` as a spot token index,
resolved through `spotMeta.tokens` (https://hyperliquid.gitbook.io/hyperliquid-docs/
for-developers/api/info-endpoint/perpetuals). USDC is index 0 and collateralizes the
validator dex; HIP-3 dexes may use any quote token (USDH, USDe and USDT are in use).

USDC's index and token id are the mainnet ones. The other tokens' indexes and ids are the
simulator's own (derived from the name), so a client that hard-codes mainnet numbers instead
of reading spotMeta finds out here.
"""

from __future__ import annotations

from dataclasses import dataclass

from hip3.sim.keccak import keccak256


@dataclass(frozen=True, slots=True)
class Token:
    name: str
    index: int
    token_id: str  # 0x + 32 hex digits
    sz_decimals: int = 8
    wei_decimals: int = 8

    @property
    def wire_name(self) -> str:
        """The `NAME:0x<tokenId>` form that sendAsset and spotSend carry."""
        return f"{self.name}:{self.token_id}"

    def spot_meta_entry(self) -> dict[str, object]:
        return {
            "name": self.name,
            "szDecimals": self.sz_decimals,
            "weiDecimals": self.wei_decimals,
            "index": self.index,
            "tokenId": self.token_id,
            "isCanonical": self.index == 0,
            "evmContract": None,
            "fullName": None,
        }


def _simulated(name: str, index: int) -> Token:
    return Token(name, index, "0x" + keccak256(f"hip3-sim-token:{name}".encode())[:16].hex())


USDC = Token("USDC", 0, "0x6d1e7cde53ba9467b783cb7c530ce054")
TOKENS: dict[str, Token] = {
    token.name: token
    for token in (USDC, _simulated("USDH", 1), _simulated("USDe", 2), _simulated("USDT", 3))
}
BY_INDEX: dict[int, Token] = {token.index: token for token in TOKENS.values()}


def parse_token(text: str) -> Token | None:
    """The token a `NAME:0x<tokenId>` string names, or None (unknown name or id mismatch)."""
    name, _, token_id = text.partition(":")
    token = TOKENS.get(name)
    if token is None or token_id.lower() != token.token_id:
        return None
    return token
