"""`hip3 guard`: a watchdog process beside the bot (see `hip3/guard/cli.py`).

heartbeat.py  the heartbeat file the bot writes and the guard reads
watcher.py    when the bot counts as gone (stale, dead, or stopped)
reaper.py     ending a hung bot before acting
link.py       the guard's own connection to the exchange
orders.py     cancel and flatten orders built from the exchange's answers (pure)
actions.py    cancel, flatten, verify
session.py    one run: watch, then act and report
cli.py        the command: configuration, key, then a session
"""
