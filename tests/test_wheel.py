"""The package as a user installs it: build the wheel, install it into a fresh venv outside the
repository, and run the installed `hip3` from a directory that is not a checkout.

To stay fast and offline-friendly the fresh venv gets its dependencies by a path file pointing
at a folder of links to this environment's installed libraries (every one except hip3 itself
and the packaging tools), so only the wheel is installed, by pip, exactly as a user would.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.wheel


def _run(argv: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("wheel")
    # The project's own build backend when this environment has it (the test extra installs
    # it): the same wheel, without pip setting up an isolated build environment first.
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-build-isolation"]
    built = _run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", *isolation, "-q",
         "-w", str(root)],
        cwd=root,
        timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = root.glob("hip3-*.whl")
    venv = root / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            cwd=root,
        ).stdout.strip()
    )
    deps = root / "deps"
    deps.mkdir()
    ours = Path(sysconfig.get_paths()["purelib"])
    for entry in ours.iterdir():
        name = entry.name.lower()
        if name.startswith(("hip3", "_editable_impl_hip3", "__editable__", "pip", "setuptools")):
            continue
        if name.endswith(".pth"):
            continue
        (deps / entry.name).symlink_to(entry)
    (site / "hip3-test-deps.pth").write_text(f"{deps}\n")
    install = _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--disable-pip-version-check", "-q", str(wheel)],
        cwd=root,
        timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    work = root / "elsewhere"
    work.mkdir()
    return {"wheel": wheel, "venv": venv, "site": site, "work": work}


def test_wheel_contents_keep_everything_under_hip3(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"hip3", "hip3-0.1.0.dist-info"}, tops  # no generic top-level `machines`
    for expected in (
        "hip3/machines/__init__.py",
        "hip3/machines/order.py",
        "hip3/example_configs/default.toml",
        "hip3/example_configs/testnet.toml",
        "hip3/example_configs/mainnet.toml",
        "hip3/py.typed",
        "hip3/dashboard/static/index.html",
        "hip3/dashboard/static/dashboard.js",
        "hip3/dashboard/static/dashboard.css",
        "hip3-0.1.0.dist-info/licenses/LICENSE",
    ):
        assert expected in names, expected
    metadata = zipfile.ZipFile(installed["wheel"]).read("hip3-0.1.0.dist-info/METADATA").decode()
    for lib in ("pycryptodome", "eth-keys", "eth-utils", "coincurve", "msgspec", "pygal"):
        assert f"Requires-Dist: {lib}" in metadata, lib


def test_installed_hip3_runs_from_outside_the_repository(installed):
    venv, work = installed["venv"], installed["work"]
    hip3 = str(venv / "bin" / "hip3")
    helped = _run([hip3, "--help"], cwd=work)
    assert helped.returncode == 0, helped.stderr
    for command in ("bot", "sim", "journal", "diagrams", "config"):
        assert command in helped.stdout
    where = _run(
        [str(venv / "bin" / "python"), "-c",
         "import json, hip3, hip3.machines, importlib.util; print(json.dumps(["
         "hip3.__file__, hip3.machines.__file__, importlib.util.find_spec('machines') is None]))"],
        cwd=work,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    package, machines, no_top_level = json.loads(where.stdout)
    site = str(installed["site"])
    assert package.startswith(site) and machines.startswith(site), (package, machines)
    assert no_top_level, "a top-level `machines` package is importable from the install"
    shown = _run([hip3, "config", "show", "mainnet"], cwd=work)
    assert shown.returncode == 0 and 'mode = "observation"' in shown.stdout, shown
    # the dashboard's page is read from the installed package
    page = _run(
        [str(venv / "bin" / "python"), "-c",
         "from hip3.dashboard.server import load_assets; a = load_assets();"
         " print(sorted(a), b'dashboard.js' in a['index.html'])"],
        cwd=work,
    )  # fmt: skip
    assert page.returncode == 0, page.stderr
    assert page.stdout.strip() == "['dashboard.css', 'dashboard.js', 'index.html'] True"


def test_installed_journal_writes_the_html_report(installed):
    venv, work = installed["venv"], installed["work"]
    script = (
        "from hip3.journal import Journal\nwith Journal('j.sqlite') as j: j.fill(ts_ms=1, tid=1,"
        " coin='x', is_buy=True, px='1', sz='1', fee='0', closed_pnl='0', oid=None, cloid=None,"
        " snapshot=False)"
    )
    made = _run([str(venv / "bin" / "python"), "-c", script], cwd=work)
    assert made.returncode == 0, made.stderr
    done = _run([str(venv / "bin" / "hip3"), "journal", "j.sqlite", "--html", "r.html"], cwd=work)
    assert done.returncode == 0 and "<svg" in (work / "r.html").read_text(), done.stderr


def test_installed_diagrams_refuses_to_write_into_site_packages(installed):
    hip3 = str(installed["venv"] / "bin" / "hip3")
    for argv in ([hip3, "diagrams"], [hip3, "diagrams", "--check"]):
        done = _run(argv, cwd=installed["work"])
        assert done.returncode == 2, done
        assert "installed, not a checkout" in done.stderr and "Traceback" not in done.stderr
    assert not (installed["site"] / "diagrams").exists()
    # with an explicit folder it writes there, from the packaged machines
    out = installed["work"] / "diagrams"
    written = _run([hip3, "diagrams", "--out", str(out)], cwd=installed["work"])
    assert written.returncode == 0, written.stderr
    assert (out / "order.md").read_text() == (REPO / "diagrams" / "order.md").read_text()


def test_installed_sim_starts_and_stops(installed):
    proc = subprocess.Popen(
        [str(installed["venv"] / "bin" / "hip3"), "sim", "--port", "0", "--no-feeds"],
        cwd=installed["work"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("ws_url=ws://127.0.0.1:"), (first, proc.stderr)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, proc.stderr.read() if proc.stderr else code
