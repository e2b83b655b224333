import subprocess
import sys

from hip3.cli import SUBCOMMANDS, main


def test_help_lists_subcommands(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    for name in ("bot", "sim", "diagrams"):
        assert name in out


def test_console_entry_point_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "hip3", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert "diagrams" in proc.stdout


def test_every_subcommand_is_registered():
    assert {"bot", "sim", "diagrams"} <= set(SUBCOMMANDS)
