"""docs/plugins.md as an author follows it: the page's files written out as they stand, its shell
commands run in order (install with pip, the package's own tests, `orchestrator plugins`, then
`validate` and `run` with the page's search space), in an environment of their own.

That environment is a virtual environment layered on the suite's (a ``.pth`` adds the suite's
site-packages), so the install cannot leak into other tests. pip runs with ``--no-deps
--no-build-isolation``: everything the package needs is already there, and nothing is fetched."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import yaml

from helpers import quick_config

PAGE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def page_files() -> dict[str, str]:
    """The files the page shows, by the path in their first comment line."""
    return dict(re.findall(r"```(?:python|toml|yaml)\n# (\S+)\n(.*?)```", PAGE.read_text(), flags=re.S))


def page_commands() -> list[str]:
    """Every line of the page's bash blocks, in order, comments dropped."""
    code = "\n".join(re.findall(r"```bash\n(.*?)```", PAGE.read_text(), flags=re.S))
    return [line.split(" #", 1)[0].strip() for line in code.splitlines() if line.strip()]


def layered_venv(path: Path) -> Path:
    """A virtual environment that sees the suite's packages; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    python = path / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # a plain path line would skip the suite's own .pth files (its editable installs): addsitedir runs them
    Path(site, "suite.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    return python


def test_the_plugin_tutorial_as_written_installs_tests_and_runs_in_a_search(tmp_path):
    files = page_files()
    assert {"pyproject.toml", "src/orchestrator_wanda/scorer.py", "src/orchestrator_wanda/plugin.py",
            "tests/test_wanda.py", "wanda-space.yaml"} <= set(files)
    package = tmp_path / "orchestrator-wanda"
    for path, body in files.items():
        target = (tmp_path if path.endswith(".yaml") else package) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    (package / "src" / "orchestrator_wanda" / "__init__.py").touch()
    entry_points = tomllib.loads(files["pyproject.toml"])["project"]["entry-points"]["orchestrator"]
    assert entry_points == {"wanda": "orchestrator_wanda.plugin"}

    python = layered_venv(tmp_path / "venv")
    # the config the page's last commands take: a small search on digits with the page's space
    (tmp_path / "my-config.yaml").write_text(yaml.safe_dump(quick_config(search_space="wanda-space.yaml",
                                                                         budget={"n_trials": 4})))
    env = {"PATH": f"{python.parent}:/usr/bin:/bin", "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0",
           "HOME": str(tmp_path), "COLUMNS": "200",
           "ORCHESTRATOR_CACHE_DIR": os.environ.get("ORCHESTRATOR_CACHE_DIR", str(tmp_path / "cache"))}

    outputs = {}
    for line in page_commands():
        words = shlex.split(line)
        if words[0] == "pip":
            argv = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                    "--no-build-isolation", "--quiet", *words[2:]]
            cwd = package
        elif words[0] == "pytest":
            argv, cwd = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *words[1:]], package
        elif words[0] == "orchestrator":
            argv, cwd = [str(python), "-m", "orchestrator", *words[1:]], tmp_path
            if words[1] == "run":
                argv.append("--no-progress")
        else:
            raise AssertionError(f"docs/plugins.md: no way to run '{line}' here")
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"'{line}': {proc.stdout[-3000:]} {proc.stderr[-3000:]}"
        outputs[line] = proc.stdout

    assert [c.split()[0] for c in outputs] == ["pip", "pytest", "pip", "orchestrator", "orchestrator",
                                               "orchestrator", "orchestrator"]
    assert " passed" in outputs["pytest"] and "failed" not in outputs["pytest"]
    plugins = {p["name"]: p for p in json.loads(outputs["orchestrator plugins --json"])}
    wanda = plugins["wanda"]  # found through the installed entry point
    assert (wanda["distribution"], wanda["version"], wanda["strategies"]) == (
        "orchestrator-wanda", "0.1.0", {"scorer": ["wanda"]})
    assert "wanda" in outputs["orchestrator plugins"] and "orchestrator-wanda" in outputs["orchestrator plugins"]

    trials = [json.loads(t) for t in (tmp_path / "runs" / "wanda" / "trials.jsonl").read_text().splitlines()]
    used = [t for t in trials if t["recipe"].get("score", {}).get("strategy") == "wanda"]
    assert used and all(t["state"] == "COMPLETE" for t in used), trials
