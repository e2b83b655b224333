"""The delivery layer (hip3/sim/delivery.py): the exchange core's frames, held per lane and
delivered in the orders a real connection can produce. Driven through the harness the dispatcher
tests use; what the bot would receive is read with the bot's own decoder."""

from __future__ import annotations

import msgspec

from hip3.protocol import frames as F
from hip3.sim.delivery import NOT_EXECUTED
from tests.runtime.fakes import Harness


def _live() -> Harness:
    h = Harness(exits={"time_stop_s": 600.0, "mark_regression_enabled": False})
    h.bring_up()
    return h


def _info(h: Harness, payload: dict) -> int:
    post_id = 90_000 + len(h.delivery.executed)
    h.delivery.receive(
        msgspec.json.encode(
            {"method": "post", "id": post_id, "request": {"type": "info", "payload": payload}}
        )
    )
    return post_id


def test_an_info_answer_is_not_a_barrier_for_the_streams():
    h = _live()
    state = _info(h, {"type": "clearinghouseState", "user": h.user, "dex": "xyz"})
    h.execute()  # the state is read before the entry executes
    h.entry()
    h.execute()
    heads = {h.delivery.frames[i].lane for i in h.delivery.deliverable()}
    # the fill made after the state was read may reach the client before or after its answer
    assert {f"post:{state}", "userFills", "user", "orderUpdates"} <= heads
    answer = next(f for f in h.delivery.frames if f.post_id == state)
    data = F.decode_frame(answer.data)
    assert msgspec.json.decode(data.data.response.payload.data)["assetPositions"] == []


def test_requests_executed_as_the_socket_dies_reach_the_next_connection_in_its_snapshot():
    h = _live()
    h.entry()
    h.drop_socket(executed=1)
    assert h.true_positions(), "the entry executed while the socket died"
    assert not h.delivery.frames and h.delivery.lost  # its answers died with the socket
    h.tick(61_000)
    h.open_socket()
    snapshot = next(
        f for f in h.delivery.frames if f.lane == "userFills" and b'"isSnapshot":true' in f.data
    )
    fills = F.decode_frame(snapshot.data).data.fills
    assert [f.tid for f in fills] == [f["tid"] for f in h.true_fills()]


def test_every_lane_head_is_a_frame_the_bot_decodes():
    h = _live()
    h.entry()
    h.execute()
    h.market_moves("xyz:BBB")
    assert h.delivery.frames
    for f in h.delivery.frames:
        assert not isinstance(F.decode_frame(f.data), F.DecodeError), f.text


def test_answer_faults_shape_the_answer_and_refusals_do_not_execute():
    for fault in ("short", "unknown_status", "error_channel", "post_error"):
        h = _live()
        h.entry()
        post_id = h.execute(fault)
        if fault in NOT_EXECUTED:
            assert h.true_positions() == {}
            lane = "error" if fault == "error_channel" else f"post:{post_id}"
            frame = next(f for f in h.delivery.frames if f.lane == lane)
            assert f"{post_id}".encode() in frame.data
            continue
        assert h.true_positions() != {}
        frame = next(f for f in h.delivery.frames if f.post_id == post_id)
        statuses = F.order_statuses(F.decode_frame(frame.data))
        if fault == "short":
            assert statuses == []
        else:
            assert [s.kind for s in statuses] != ["filled"]


def test_only_market_data_can_be_dropped_without_a_cut():
    h = _live()
    h.entry()
    h.execute()
    fill = next(i for i, f in enumerate(h.delivery.frames) if f.lane == "userFills")
    try:
        h.delivery.drop(fill)
    except ValueError as exc:
        assert "userFills" in str(exc)
    else:
        raise AssertionError("a fill frame was dropped on a live connection")
