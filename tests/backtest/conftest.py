"""A recording made by the real bot (`run_bot(record=...)`, what `hip3 bot --record` runs)
against the built-in simulator over a real socket, shared by the module's tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hip3.app.bot import run_bot
from hip3.config import load_config


@pytest.fixture(scope="session")
def bot_recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("recording")
    path = folder / "session.ndjson.gz"
    cfg = load_config(
        overrides={"journal": {"path": str(folder / "live.sqlite")}, "sim": {"seed": 11}}
    )
    summary = asyncio.run(run_bot(cfg, duration_s=3, install_signals=False, record=path))
    return path, summary
