"""`hip3 bot --record`: what is written, what is never written, and a killed writer."""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

import msgspec
import pytest

from hip3.backtest.data import open_data
from hip3.transport.recording import FrameRecorder, RecordingError

ADDRESS = "0x" + "ab" * 20
BBO = b'{"channel":"bbo","data":{"coin":"xyz:AAA","time":1,"bbo":[{"px":"1","sz":"2","n":1},null]}}'
CTX = b'{"channel":"activeAssetCtx","data":{"coin":"xyz:AAA","ctx":{"oraclePx":"1","markPx":"1"}}}'
ACCOUNT_FRAMES = [
    b'{"channel":"orderUpdates","data":[{"order":{"coin":"xyz:AAA"},"user":"%s"}]}'
    % ADDRESS.encode(),
    b'{"channel":"userFills","data":{"user":"%s","fills":[]}}' % ADDRESS.encode(),
    b'{"channel":"post","data":{"id":1,"response":{"type":"info","payload":{"data":"%s"}}}}'
    % ADDRESS.encode(),
    b'{"channel":"subscriptionResponse","data":{"method":"subscribe"}}',
    b'{"channel":"pong"}',
    b'{"channel":"error","data":"Already subscribed"}',
]


def read_lines(path: Path) -> list[dict]:
    return [msgspec.json.decode(line) for line in gzip.decompress(path.read_bytes()).splitlines()]


def test_only_market_data_is_written_with_its_receive_time(tmp_path: Path) -> None:
    path = tmp_path / "r.ndjson.gz"
    recorder = FrameRecorder(path, flush_every_s=60)
    recorder.offer(BBO, 1_000)
    for i, frame in enumerate(ACCOUNT_FRAMES):
        recorder.offer(frame, 2_000 + i)
    recorder.offer(b"Websocket connection established.", 3_000)  # not JSON
    recorder.offer(b'{"channel":"bbo", "data": 1', 3_500)  # cut JSON
    pretty = b'{"channel": "activeAssetCtx",\n "data": {"coin": "xyz:AAA", "ctx": {}}}'
    recorder.offer(bytearray(pretty), 3_700)  # what a socket may hand over
    recorder.offer(CTX, 4_000)
    recorder.close()
    lines = read_lines(path)
    assert [line["t"] for line in lines] == [1_000, 3_700, 4_000]
    assert lines[0]["f"] == msgspec.json.decode(BBO)
    assert lines[2]["f"] == msgspec.json.decode(CTX)
    assert ADDRESS not in gzip.decompress(path.read_bytes()).decode()
    assert recorder.frames_written == 3 and recorder.frames_skipped == 2
    data = open_data(path)
    assert [t for t, _f, _n in data.frames()] == [1_000, 3_700, 4_000]
    assert not data.truncated


def test_a_killed_recording_is_read_up_to_its_last_flush(tmp_path: Path) -> None:
    path = tmp_path / "r.ndjson.gz"
    recorder = FrameRecorder(path, flush_every_s=0.05)
    for i in range(100):
        recorder.offer(BBO, 1_000 + i)
    deadline = time.monotonic() + 5
    while recorder.frames_written < 100 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # at least one flush after the last write
    killed = tmp_path / "killed.ndjson.gz"
    shutil.copyfile(path, killed)  # the file as a kill -9 leaves it: no gzip trailer
    recorder.close()
    data = open_data(killed)
    assert [t for t, _f, _n in data.frames()] == list(range(1_000, 1_100))
    assert data.truncated
    assert not (full := open_data(path)).truncated and len(list(full.frames())) == 100


def test_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="does not exist"):
        FrameRecorder(tmp_path / "nowhere" / "r.ndjson.gz")


def test_the_bot_records_what_it_received(bot_recording: tuple[Path, dict]) -> None:
    path, summary = bot_recording
    lines = read_lines(path)
    channels = {line["f"]["channel"] for line in lines}
    assert channels == {"bbo", "activeAssetCtx"}
    times = [line["t"] for line in lines]
    assert times == sorted(times) and times[0] > 1_700_000_000 * 10**9
    text = gzip.decompress(path.read_bytes()).decode().lower()
    assert summary["fills"] > 0  # the account's streams carried its address: none was kept
    assert summary["recording"] == {"path": str(path), "frames": len(lines), "error": None}
    assert _bot_user() not in text


def _bot_user() -> str:
    # the built-in simulator's account: derived from its seed, as the harness derives it
    from hip3.sim.harness import SimHarness

    return SimHarness(seed=11, feeds=False).account[0].lower()


def test_observation_mode_records_too(tmp_path: Path) -> None:
    import asyncio

    from hip3.app.bot import run_bot
    from hip3.config import load_config

    cfg = load_config(overrides={"mode": "observation", "journal": {"enabled": False}})
    path = tmp_path / "obs.ndjson.gz"
    summary = asyncio.run(run_bot(cfg, duration_s=1.5, install_signals=False, record=path))
    assert summary["actions_sent"] == 0
    channels = {line["f"]["channel"] for line in read_lines(path)}
    assert channels == {"bbo", "activeAssetCtx"}


def test_a_failed_disk_stops_the_recording_not_the_bot(tmp_path: Path, monkeypatch) -> None:
    def full(_self: object, _data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gzip.GzipFile, "write", full)
    recorder = FrameRecorder(tmp_path / "r.ndjson.gz", flush_every_s=0.02)
    recorder.offer(BBO, 1)
    deadline = time.monotonic() + 5
    while recorder.error is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert recorder.error == "No space left on device"
    recorder.offer(BBO, 2)  # the read callback goes on
    recorder.close()
    assert recorder.frames_written == 0


def test_a_start_up_failure_closes_the_recording(tmp_path: Path) -> None:
    """The metrics port is taken: the run ends before it starts, and the recording it had
    opened is a complete (empty) gzip file with its writer thread gone."""
    import asyncio
    import socket
    import threading

    from hip3.app.bot import BotError, run_bot
    from hip3.config import load_config

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = load_config(
            overrides={
                "journal": {"enabled": False},
                "metrics": {"enabled": True, "host": "127.0.0.1", "port": port},
            }
        )
        path = tmp_path / "r.ndjson.gz"
        with pytest.raises(BotError):
            asyncio.run(run_bot(cfg, duration_s=1, install_signals=False, record=path))
    assert gzip.decompress(path.read_bytes()) == b""
    assert not any(t.name == "frame-recorder" for t in threading.enumerate())
