"""Every answer text the simulator uses, with where it comes from: the one list to check.

Live texts are the exchange's own words, from its docs
(https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/error-responses and the
exchange, info and websocket endpoint pages), the official SDKs and public captures of live
answers. Per-order texts carry the live ` asset=<id>` suffix where live answers show it
(`with_asset`). A client should match them by prefix.

Invented texts are the simulator's own words where no live text is known. Each says what
went wrong in one line; none should be matched by a client as if it were the exchange's.

Live texts (constants below, and in the modules named):
- per order: tick, minimum value, margin, reduce-only, IOC, ALO, cancel of a missing order
  (all with ` asset=<id>`); `Order has invalid size.` (no suffix seen live);
  `Order has zero size.` (whether live adds ` asset=` is unknown: none here);
  `Cannot modify canceled or filled order`; `Invalid TP/SL price.` (with ` asset=`);
- whole action: nonces (`hip3.sim.nonces`), `User or API Wallet 0x.. does not exist.`
  (`hip3.sim.agents`, with the older `L1 error: ` prefix), `Unable to recover signer.`,
  `Action already expired` (the nonce is consumed), the scheduleCancel volume gate,
  `Signed action over weight limit of 200.`, `Orders are empty.`, the reference-price band
  `Order price cannot be more than 80% away from the reference price` (testnet's wording; the
  band, 0.2x < px <= 5x the oracle, is the one measured on testnet spot: the perp band is not
  published, see `hip3.sim.matching`), the address budget's
  `Too many cumulative requests sent (...)` (`hip3.sim.address_budget`; the numbers and the
  volume's format are the simulator's reading of the live template);
- transfers (`hip3.sim.transfers`): `Invalid perp DEX`, `Unknown token <token>`, `Must deposit
  before performing actions. User: 0x..` (unknown signer of a user-signed action),
  `Action disabled when unified account is active.` (usdClassTransfer in a unified or portfolio
  margin account; a low-confidence capture), and the low-confidence captures `Nonce mismatch.`
  and `Mainnet and testnet require different signature.`;
- HTTP: `Failed to parse the request body as JSON` (400),
  ``Expected request with `Content-Type: application/json` `` (415),
  `Failed to deserialize the JSON body into the target type` (422; the simulator appends
  `: <what was wrong>` where the live answer has no detail), `null` bodies of 429 and 500;
- websocket (`hip3.sim.server`): `Error parsing JSON into valid websocket request: ` followed
  by the frame exactly as sent (a frame that is not JSON or not an object, an unknown method,
  a webData2 subscription, a subscription of the wrong shape; as live; over the frame size
  limit the simulator says the size instead), `Already subscribed: `, `Already unsubscribed: `,
  `Invalid subscription ` (a well-formed subscription naming what is not served),
  `too many pending post requests id=<id>`, `Cannot send more than <n> messages per minute.`

Invented texts (constants below unless a module is named):
- per order: `INJECTED_REJECT` (fault injection), `UNKNOWN_ASSET`, `TRIGGER_UNSUPPORTED` (never
  answered: a guard inside the simulator), `MARKET_HALTED`, `DUPLICATE_CLOID`,
  `FAST_CANCEL_TRIGGER` (the rule is documented, its text is not);
- trigger orders (`hip3.sim.triggers`): `TPSL_GROUPING`, `TPSL_NOT_REDUCE_ONLY` (whole action),
  and the `notification` sent when a trigger fires, `TRIGGERED`;
- scheduleCancel: `SCHEDULE_TOO_EARLY`, `SCHEDULE_TOO_MANY` (live rules, texts unknown);
- updateIsolatedMargin: `ISOLATED_NO_POSITION`, `ISOLATED_NOT_ISOLATED`, `ISOLATED_ADD_MARGIN`,
  `ISOLATED_REMOVE_MARGIN`, `ISOLATED_STRICT` (live rules, texts unknown);
- leverage: `LEVERAGE_OUT_OF_RANGE` (a low-confidence live capture says `Invalid leverage
  value`), `CROSS_NOT_ALLOWED`, `LEVERAGE_MARGIN`;
- envelope: `VAULT_UNKNOWN` (a low-confidence capture says `Vault not registered: 0x..`),
  `EXPIRES_AFTER_USER_SIGNED`, `VAULT_ON_APPROVE_AGENT`;
- approveAgent (`hip3.sim.agents`): wrong `hyperliquidChain` (a low-confidence capture says
  `Mainnet and testnet require different signature.`), action nonce mismatch (capture: `Nonce
  mismatch.`), agent address used by a user or by another user, too many named agents,
  `valid_until` out of range;
- priority fees (`hip3.sim.priority`): `INELIGIBLE` (a `{"p": n}` grouping on a batch that is
  not all IOC or all non-reduce-only ALO; the live text is not published), `INSUFFICIENT`
  (staking balance short of the fee), and the grouping's schema checks (after the 422 prefix);
- malformed signature objects (`hip3.sim.signatures`: `signature.r must be ...`);
- a bug inside the simulator: `INTERNAL_ERROR`;
- transfers (`hip3.sim.transfers`): `TRANSFER_AMOUNT`, `TRANSFER_INSUFFICIENT`,
  `NOT_COLLATERAL` (the rule is documented, its text is not), `SAME_PLACE`,
  `SUB_ACCOUNT_UNKNOWN` (sub-accounts are not simulated);
- userSetAbstraction (`hip3.sim.abstraction`): `ABSTRACTION_UNKNOWN`, `ABSTRACTION_OTHER_USER`,
  `ABSTRACTION_OPEN_POSITIONS` (the live rule for a switch with open positions is unknown);
- info requests (`hip3.sim.info`): unknown type, bad `user`, unknown dex or coin, l2Book
  parameters (each after the 422 prefix over HTTP);
- websocket post framing (`hip3.sim.server`): id, request, type and payload checks, frame size;
- HTTP framing (`hip3.sim.http`): 404, 405, 411, 413, 431, 501 bodies.
"""

from __future__ import annotations

# --- live -------------------------------------------------------------------------------

TICK = "Price must be divisible by tick size."
INVALID_SIZE = "Order has invalid size."
ZERO_SIZE = "Order has zero size."
MIN_NOTIONAL = "Order must have minimum value of $10."
MARGIN = "Insufficient margin to place order."
REDUCE_ONLY = "Reduce only order would increase position."
IOC_NO_MATCH = "Order could not immediately match against any resting orders."
ALO_WOULD_CROSS = "Post only order would have immediately matched, bbo was {bbo}."
CANCEL_MISSING = "Order was never placed, already canceled, or filled."
MODIFY_GONE = "Cannot modify canceled or filled order"
INVALID_TPSL = "Invalid TP/SL price."
ACTION_EXPIRED = "Action already expired"
SCHEDULE_VOLUME = (
    "Cannot set scheduled cancel time until enough volume traded. "
    "Required: ${required}. Traded: ${traded}."
)
OVER_WEIGHT_LIMIT = "Signed action over weight limit of {limit}."
ORDERS_EMPTY = "Orders are empty."
# Testnet's wording (mainnet perps show "95%"); one answer for the whole batch, no asset suffix.
REFERENCE_PRICE = "Order price cannot be more than 80% away from the reference price"
ADDRESS_BUDGET = (
    "Too many cumulative requests sent ({used} > {cap}) for cumulative volume traded "
    "${volume}. Place taker orders to free up 1 request per USDC traded."
)

INVALID_PERP_DEX = "Invalid perp DEX"
UNKNOWN_TOKEN = "Unknown token {token}"
MUST_DEPOSIT = "Must deposit before performing actions. User: {user}"
UNIFIED_ACCOUNT_ACTIVE = "Action disabled when unified account is active."
NONCE_MISMATCH = "Nonce mismatch."
WRONG_CHAIN = "Mainnet and testnet require different signature."

# --- invented ---------------------------------------------------------------------------

INJECTED_REJECT = "Order rejected: injected fault."
UNKNOWN_ASSET = "Asset {asset} does not exist on this exchange."
TRIGGER_UNSUPPORTED = "Trigger orders are placed through the trigger book, not the matcher."
TPSL_GROUPING = (
    "Invalid TP/SL grouping: at most two reduce-only trigger orders on one coin and side "
    "(opposite the parent order's side in normalTpsl)."
)
TPSL_NOT_REDUCE_ONLY = "TP/SL orders of a normalTpsl or positionTpsl grouping must be reduce-only."
FAST_CANCEL_TRIGGER = "Fast cancel is not allowed for trigger orders."
TRIGGERED = "Triggered {order_type} order for {coin} at mark price {mark}."
MARKET_HALTED = "Trading is halted for {coin}."
DUPLICATE_CLOID = "Duplicate cloid: an open order already uses {cloid}."
SCHEDULE_TOO_EARLY = "Scheduled cancel time too early, must be at least 5 seconds from now."
SCHEDULE_TOO_MANY = "Too many scheduled cancel triggers today: at most 10 per day."
LEVERAGE_OUT_OF_RANGE = "Invalid leverage {leverage} for {coin}: must be 1..{max}."
CROSS_NOT_ALLOWED = "Cross margin is not allowed for {coin} (isolated only)."
LEVERAGE_MARGIN = "Insufficient margin to change leverage."
VAULT_UNKNOWN = "Vault or sub-account {vault} does not exist."
EXPIRES_AFTER_USER_SIGNED = "expiresAfter is not supported for user-signed actions."
VAULT_ON_APPROVE_AGENT = "vaultAddress is not supported for approveAgent."
ISOLATED_NO_POSITION = "No open position on {coin} to update isolated margin for."
ISOLATED_NOT_ISOLATED = "The position on {coin} uses cross margin, not isolated margin."
ISOLATED_ADD_MARGIN = "Insufficient margin to add to the isolated position."
ISOLATED_REMOVE_MARGIN = (
    "Cannot remove more isolated margin than was added beyond the leverage requirement "
    "(removable: ${removable})."
)
ISOLATED_STRICT = "Margin cannot be removed from {coin}: the asset is strictIsolated."
INTERNAL_ERROR = "Internal simulator error; action not applied."
TRANSFER_AMOUNT = "Invalid amount {amount!r}: must be a positive decimal of at most 8 decimals."
TRANSFER_INSUFFICIENT = (
    "Insufficient balance for transfer: {available} {token} available on {place}."
)
NOT_COLLATERAL = (
    "Token {token} cannot move in or out of perp dex {dex}: its collateral is {collateral}."
)
SAME_PLACE = "Source and destination are the same."
SUB_ACCOUNT_UNKNOWN = "Sub-account {sub} does not exist."
ABSTRACTION_OTHER_USER = (
    "userSetAbstraction for {user}: only the signer's own account can be switched."
)
ABSTRACTION_OPEN_POSITIONS = "Cannot change account abstraction with open positions or orders."
ABSTRACTION_UNKNOWN = (
    "Unknown abstraction {abstraction!r}: one of disabled, unifiedAccount, portfolioMargin."
)


def with_asset(text: str, asset: int) -> str:
    """A per-order text with the live ` asset=<id>` suffix."""
    return f"{text} asset={asset}"
