"""Per-market state: plain objects updated on the hot path, never a state machine."""
