"""The trading journal: an append-only SQLite record of signals, orders, fills, positions and
HardStop events, with a summary and CSV export (`hip3 journal`)."""

from hip3.journal.store import Journal, JournalError

__all__ = ["Journal", "JournalError"]
