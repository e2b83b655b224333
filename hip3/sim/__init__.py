"""A local Hyperliquid-compatible exchange: `hip3 sim`.

Layout: `universe`/`exchange` (the core: markets, accounts, matching; knows nothing of
sockets) → `events` (what the core reports) → `server` (websocket transport, subscriptions,
post requests, connection limits) with `feeds` (oracle processes and lagging makers),
`faults` (injected misbehaviour) and `scenario` (TOML run settings). `harness` starts the
whole thing in-process for tests and the bot; `cli` is `hip3 sim`.
"""
