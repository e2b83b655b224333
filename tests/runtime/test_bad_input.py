"""Bad input reaching the dispatcher: counted, logged sparsely, never a crash or a state change."""

from __future__ import annotations

import logging

from .fakes import Harness


def test_a_flood_of_bad_frames_is_counted_and_changes_nothing(caplog):
    h = Harness()
    h.start()
    h.bring_up()
    d = h.d
    assert d.ready.trading()
    positions_before = d.positions.signed_sizes()
    junk = [
        '{"channel": "bbo", "data": {"coin": 5}}',  # wrong type
        '{"channel": "nope", "data": {}}',  # unknown channel
        '{"data": {}}',  # no channel
        "[1, 2, 3]",  # not an object
        '{"channel": "post", "data": {"id": "x"}}',  # malformed post
    ]
    with caplog.at_level(logging.WARNING, logger="hip3.runtime.dispatcher"):
        for i in range(1000):
            h.frame(junk[i % len(junk)])
    assert sum(d.decode_errors.values()) == 1000
    assert set(d.decode_errors) >= {"invalid", "unknown_channel", "missing_channel", "not_object"}
    warnings = [r for r in caplog.records if "undecodable frame" in r.getMessage()]
    assert 0 < len(warnings) <= 4 * 9  # 1st, 2nd, 4th, ... of each kind, not a thousand lines
    assert d.counters["internal_errors"] == 0
    assert d.hardstop.is_armed and d.ready.trading()
    assert d.positions.signed_sizes() == positions_before


def test_exchange_error_frames_are_counted_and_logged_sparsely(caplog):
    h = Harness()
    h.start()
    h.bring_up()
    with caplog.at_level(logging.WARNING, logger="hip3.runtime.dispatcher"):
        for _ in range(100):
            h.frame(
                '{"channel": "error", "data": "Cannot send more than 2000 messages per minute."}'
            )
    assert h.d.counters["error_frames"] == 100
    logged = [r for r in caplog.records if "exchange error frame" in r.getMessage()]
    assert len(logged) == 7  # 1, 2, 4, 8, 16, 32, 64
    assert h.d.ready.trading()
