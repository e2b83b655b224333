"""Strategies turn market state into entry signals; they never send anything themselves."""
