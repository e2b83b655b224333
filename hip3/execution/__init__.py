"""Execution: the executor, order registry, positions, flatten and HardStop drivers."""
