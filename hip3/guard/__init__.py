"""`hip3 guard`: a watchdog process beside the bot (see `hip3/guard/cli.py`).

heartbeat.py  the heartbeat file the bot writes and the guard reads
watcher.py    when the bot counts as gone (stale, dead, or stopped)
reaper.py     ending a hung bot before acting
link.py       the guard's own connection to the exchange
orders.py     cancel and flatten orders built from the exchange's answers (pure)
actions.py    cancel, flatten, verify
cli.py        the command
"""
