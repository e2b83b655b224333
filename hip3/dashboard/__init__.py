"""The web dashboard served by the bot: markets, positions, PnL, HardStop and its buttons.

`source.py` reads the running dispatcher (the one place that knows its layout), `history.py`
samples PnL and fees over time, `server.py` serves the page in `static/` and its JSON.
"""

from hip3.dashboard.server import DashboardError, DashboardServer, start_dashboard

__all__ = ["DashboardError", "DashboardServer", "start_dashboard"]
