"""docs/guides/backtest.md runs as written: its `$ hip3 ...` lines through the command line
(`cmp` by comparing the files), its Python blocks with exec, its TOML blocks written to the
file their first line names (`# maker.toml`), in order, in a scratch folder."""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

from hip3.cli import main

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guides" / "backtest.md"
BLOCK = re.compile(r"```(console|python|toml)\n(.*?)```", re.S)


def test_the_backtest_guide_runs(tmp_path: Path, monkeypatch) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HIP3_PRIVATE_KEY", raising=False)
    blocks = BLOCK.findall(GUIDE.read_text())
    assert len(blocks) >= 5
    ran = 0
    for kind, body in blocks:
        if kind == "python":
            exec(compile(body, str(GUIDE), "exec"), {})
            ran += 1
            continue
        if kind == "toml":
            first = body.splitlines()[0]
            assert first.startswith("# ") and first.endswith(".toml"), first
            Path(first[2:]).write_text(body)
            continue
        for line in body.splitlines():
            assert line.startswith("$ "), line
            argv = shlex.split(line[2:])
            if argv[0] == "cmp":
                assert Path(argv[1]).read_bytes() == Path(argv[2]).read_bytes(), line
            else:
                assert argv[0] == "hip3", line
                assert main(argv[1:]) == 0, line
            ran += 1
    assert ran >= 9
    assert os.path.getsize("backtest.html") > 1000
