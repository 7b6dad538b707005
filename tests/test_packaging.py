"""A plain, non-editable install from a wheel works from an unrelated directory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "orchestrator", "plugins", "search_spaces")


def test_wheel_installs_and_resolves_spaces_and_plugins_by_name(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(src)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("compression_orchestrator-*.whl"))

    # A fresh venv that sees this environment's dependencies but not its editable checkout:
    # a path added through a .pth file does not run that folder's own .pth files.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cli = str(venv / "bin" / "orchestrator")

    # third-party plugins installed in this environment (the example plugin, editable) are visible
    # through deps.pth, but their editable finders are not: they are not what this test is about
    import importlib.metadata as md
    import os

    others = ",".join(ep.name for ep in md.entry_points(group="orchestrator"))
    env = dict(os.environ, ORCHESTRATOR_BLOCK_PLUGINS=others)

    def run(*args: str) -> str:
        return subprocess.run([cli, *args], cwd=elsewhere, check=True, capture_output=True, text=True,
                              env=env).stdout

    where = subprocess.run([str(python), "-c", "import orchestrator, orchestrator_search_spaces as s; "
                            "print(orchestrator.__file__); print(s.__file__)"],
                           cwd=elsewhere, check=True, capture_output=True, text=True).stdout
    assert all(line.startswith(site) for line in where.split())  # the installed copy, not the checkout
    assert {"default", "quick"} <= set(json.loads(run("spaces", "--json")))
    assert "static-int8" in json.loads(run("spaces", "default", "--json"))["stages"]["quantize"]
    names = {p["name"] for p in json.loads(run("plugins", "--json"))}
    assert {"builtin.pruners.channel", "builtin.quantizers.static_int8", "builtin.tasks.mnist1d"} <= names
