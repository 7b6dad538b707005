"""The examples in docs/ work: every YAML example validates as what it is (a run config, a search
space or a recipe), every `orchestrator` command line parses with the real CLI, and the Python
examples run. Pages whose commands run as written live beside: the plugin tutorial in
test_doc_plugins.py, cluster.md in test_doc_cluster.py."""

from __future__ import annotations

import importlib
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

DOCS = Path(__file__).resolve().parents[1] / "docs"


def blocks(lang: str) -> list[tuple[str, str]]:
    """(page, code) of every fenced block of ``lang`` in docs/*.md."""
    out = []
    for page in sorted(DOCS.glob("*.md")):
        out += [(page.name, body) for body in re.findall(rf"```{lang}\n(.*?)```", page.read_text(), flags=re.S)]
    return out


def tutorial_host(tmp_path, monkeypatch):
    """The plugin host with the plugin tutorial's scorer (written out from docs/plugins.md)."""
    from orchestrator.pluginmanager import PluginHost

    text = (DOCS / "plugins.md").read_text()
    for path, body in re.findall(r"```python\n# (src/\S+)\n(.*?)```", text, flags=re.S):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(body)
    (tmp_path / "src" / "orchestrator_wanda" / "__init__.py").touch()
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    return PluginHost(extra_plugins=[("wanda", importlib.import_module("orchestrator_wanda.plugin"))])


YAML_EXAMPLES = blocks("yaml")


@pytest.mark.parametrize("page, code", YAML_EXAMPLES, ids=[f"{p}-{i}" for i, (p, _) in enumerate(YAML_EXAMPLES)])
def test_every_yaml_example_validates(page, code, tmp_path, monkeypatch):
    from orchestrator.config import load_config
    from orchestrator.recipe import Recipe
    from orchestrator.spaces import resolve_space

    data = yaml.safe_load(code)
    assert isinstance(data, dict), f"{page}: a YAML example that is not a mapping"
    if "stages" in data:  # a search space
        path = tmp_path / "space.yaml"
        path.write_text(code)
        host = tutorial_host(tmp_path, monkeypatch)
        space = resolve_space(str(path), host.catalogue)
        assert space.stages
    elif any(isinstance(v, dict) and "strategy" in v for v in data.values()):  # a recipe
        Recipe.model_validate(data)
    else:  # a run config, or the part of one a page is about
        load_config({"task": "mnist1d", **data})


def command_lines() -> list[tuple[str, list[str]]]:
    out = []
    for page, code in blocks("bash"):
        for line in code.splitlines():
            line = line.split(" #", 1)[0].strip()
            for prefix in ("orchestrator ", ".venv/bin/orchestrator "):
                if line.startswith(prefix):
                    out.append((page, shlex.split(line[len(prefix):])))
    return out


COMMANDS = command_lines()


@pytest.mark.parametrize("page, args", COMMANDS, ids=[f"{p}-{' '.join(a)[:40]}" for p, a in COMMANDS])
def test_every_documented_command_line_parses(page, args):
    """The command exists and takes these arguments and options (nothing is run)."""
    import typer

    from orchestrator.cli.app import app

    group = typer.main.get_command(app)
    assert args[0] in group.commands, f"{page}: unknown command 'orchestrator {args[0]}'"
    command = group.commands[args[0]]
    try:
        command.make_context(f"orchestrator {args[0]}", list(args[1:]))
    except Exception as exc:  # typer's own click raises its usage errors (missing or unknown options)
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        pytest.fail(f"{page}: 'orchestrator {' '.join(args)}' does not parse: {message}")


def test_there_are_documented_command_lines_to_check():
    assert len(COMMANDS) >= 15
    assert {args[0] for _, args in COMMANDS} >= {"run", "show", "export", "apply", "validate"}


def test_the_quickstart_python_example_runs_the_exported_model(tmp_path, monkeypatch):
    import torch
    from torch import nn

    from orchestrator.export import export_onnx

    code = next(body for page, body in blocks("python") if page == "quickstart.md")
    # a model with MNIST-1D's input (40 samples) and ten classes, where the example expects it
    model = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))
    (tmp_path / "deploy").mkdir()
    export_onnx(model, torch.randn(8, 40), tmp_path / "deploy" / "model.onnx")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "quickstart.md", "exec"), {})


def test_the_task_example_is_a_task_the_config_example_resolves(tmp_path, monkeypatch):
    import torch

    from orchestrator import Task
    from orchestrator.config import load_config
    from orchestrator.pluginmanager import get_host
    from orchestrator.tasks import resolve_task

    code = next(body for page, body in blocks("python") if page == "tasks.md")
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").touch()
    (tmp_path / "mypkg" / "tasks.py").write_text(code)
    torch.save(torch.randn(10000, 16), tmp_path / "sensor_x.pt")  # the local files the example loads
    torch.save(torch.randint(0, 4, (10000,)), tmp_path / "sensor_y.pt")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    config_yaml = next(body for page, body in blocks("yaml") if page == "tasks.md")
    task = resolve_task(load_config(yaml.safe_load(config_yaml)).task, get_host().catalogue)
    assert isinstance(task, Task)
    data = task.load_data(0)
    assert task.build_model()(data.val[0][:5]).shape == (5, 4)
    sys.modules.pop("mypkg.tasks", None)
    sys.modules.pop("mypkg", None)


#: pages whose orchestrator commands act on the quickstart's run directory; they are run, not only parsed
ON_THE_QUICKSTART_RUN = ("quickstart.md", "index.md", "report.md", "run-directory.md")


def test_the_documented_commands_run_on_the_quickstart_run(tmp_path):
    """The quickstart's search as written, on a one-trial budget; then every orchestrator command the
    pages about its run directory show (show, export in every format, apply, report), with their
    trial numbers replaced by the trial this run kept."""
    import json
    import os
    import subprocess

    repo = DOCS.parent
    cli = str(Path(sys.executable).with_name("orchestrator"))
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "mnist1d.yaml").write_text((repo / "examples" / "mnist1d.yaml").read_text())
    env = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="160")

    def run(args):
        proc = subprocess.run([cli, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"orchestrator {' '.join(args)}: {proc.stdout[-1000:]} {proc.stderr[-3000:]}"
        return proc.stdout

    quickstart = [args for page, args in COMMANDS if page == "quickstart.md"]
    assert [a[0] for a in quickstart] == ["run", "show", "export"]
    # one trial: the baseline's own recipe, feasible and unquantized, so every export format applies
    run(quickstart[0] + ["--trials", "1", "--no-progress"])
    run_dir = tmp_path / "runs" / "mnist1d"
    kept = json.loads((run_dir / "pareto.json").read_text())["pareto"][0]["number"]

    def ours(arg: str) -> str:
        return re.sub(r"^\d+$", str(kept), re.sub(r"trial-\d+", f"trial-{kept}", arg))

    ran = []
    for page in ON_THE_QUICKSTART_RUN:
        for args in (a for p, a in COMMANDS if p == page and a[0] != "run"):
            if "my-recipe.yaml" in args:
                (tmp_path / "my-recipe.yaml").write_text((run_dir / "artifacts" / f"trial-{kept}" /
                                                          "recipe.yaml").read_text())
            run([ours(a) for a in args])
            ran.append(args[0])
    assert {"show", "export", "apply"} <= set(ran) and ran.count("export") >= 5
    assert {p.name for p in (tmp_path / "deploy").iterdir()} >= {"model.onnx", "model.pt", "model.pt2",
                                                                 "recipe.yaml", "metrics.json"}
