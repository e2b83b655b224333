"""hip3: a trading framework and bot for Hyperliquid HIP-3 markets."""

__version__ = "0.1.0"
