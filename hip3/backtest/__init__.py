"""`hip3 backtest`: recorded market data replayed through the bot on a virtual clock, against
the simulator's exchange core (see `engine.py`)."""
