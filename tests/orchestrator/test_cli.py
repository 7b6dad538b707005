"""The command line as a user meets it: exit codes, one-line errors, the files a run leaves."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.cli.app import main

from helpers import quick_config

ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_help_does_not_import_the_heavy_libraries():
    code = ("import sys; from orchestrator.cli.app import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "heavy = [m for m in ('torch', 'optuna', 'ray', 'onnxruntime') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


BAD_INPUTS = {
    "malformed": ("task: digits\nbudget: {n_trials: 3\n", "malformed YAML"),
    "unknown-key": ({"task": "digits", "budjet": {}}, "field 'budjet': unknown key"),
    "unknown-task": ({"task": "digitz"}, "unknown task 'digitz' (did you mean 'digits'?)"),
    "unknown-metric": ({"task": "digits", "constraints": {"sise_mb": {"max": 1}}}, "metric 'sise_mb'"),
    "unknown-objective": ({"task": "digits", "objectives": ["speed"]}, "unknown metric 'speed'"),
    "unknown-space": ({"task": "digits", "search_space": "defualt"}, "unknown space 'defualt'"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
@pytest.mark.parametrize("command", ["run", "validate"])
def test_bad_input_is_one_line_exit_2_and_no_run_directory(tmp_path, capsys, case, command):
    content, expected = BAD_INPUTS[case]
    config = write(tmp_path / "config.yaml", content)
    out = tmp_path / "out"
    args = [command, str(config)] + (["--out", str(out)] if command == "run" else [])
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ERROR:") and expected in err
    assert "\n" not in err and "Traceback" not in err
    assert not out.exists()


def test_unknown_strategy_in_a_space_names_it_and_the_alternatives(tmp_path, capsys):
    space = write(tmp_path / "space.yaml", {"stages": {"prune": {"chanel": {}}}})
    config = write(tmp_path / "config.yaml", {"task": "digits", "search_space": str(space)})
    assert main(["validate", str(config)]) == 2
    err = capsys.readouterr().err
    assert "pruner 'chanel'" in err and "did you mean 'channel'" in err


def test_validate_accepts_the_example(capsys):
    assert main(["validate", str(ROOT / "examples" / "mnist1d.yaml")]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "mnist1d" in out


def test_validate_notes_quantizers_left_out_for_the_torch_runtime(tmp_path, capsys):
    config = write(tmp_path / "c.yaml", {"task": "digits", "latency": {"runtime": "torch"}})
    assert main(["validate", str(config)]) == 0
    assert "static-int8" in capsys.readouterr().out


def test_schema_is_json_schema_of_the_run_config(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["type"] == "object"
    assert {"task", "objectives", "constraints", "budget", "latency"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_plugins_json_lists_builtins_with_versions_hooks_and_strategies(capsys):
    assert main(["plugins", "--json"]) == 0
    plugins = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    channel = plugins["builtin.pruners.channel"]
    assert channel["distribution"] == "compression-orchestrator" and channel["version"]
    assert channel["hooks"] == ["orchestrator_register_pruners"]
    assert channel["strategies"] == {"pruner": ["channel"]}


def test_spaces_lists_and_resolves_builtin_spaces(capsys):
    assert main(["spaces", "--json"]) == 0
    assert {"default", "quick"} <= set(json.loads(capsys.readouterr().out))
    assert main(["spaces", "default", "--json"]) == 0
    space = json.loads(capsys.readouterr().out)
    assert "channel" in space["stages"]["prune"] and "static-int8" in space["stages"]["quantize"]


def test_run_through_the_console_script(tmp_path):
    config = write(tmp_path / "config.yaml", quick_config(budget={"n_trials": 3}))
    out = tmp_path / "run"
    env = dict(os.environ, COLUMNS="160")
    proc = subprocess.run([str(Path(sys.executable).with_name("orchestrator")), "run", str(config), "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Pareto front" in proc.stdout and "baseline" in proc.stdout
    assert len((out / "trials.jsonl").read_text().splitlines()) == 3
    assert (out / "pareto.json").is_file() and (out / "report.md").is_file()


BAD_FLAGS = {
    "executor": (["--executor", "slurm"], "field 'execution.executor'"),
    "address-local": (["--executor", "local", "--address", "auto"], "'address' needs executor: ray"),
    "storage": (["--storage", "postgresql://user:secret@127.0.0.1:1/none"], "execution.storage: cannot open"),
}


@pytest.mark.parametrize("case", sorted(BAD_FLAGS))
def test_bad_execution_flags_are_one_line_exit_2_and_nothing_written(tmp_path, capsys, case):
    flags, expected = BAD_FLAGS[case]
    config = write(tmp_path / "config.yaml", quick_config())
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ERROR:") and expected in err and "\n" not in err
    assert "secret" not in err
    assert not out.exists()


def test_command_line_flags_override_the_execution_config(tmp_path):
    from orchestrator.cli.run_cmd import with_overrides
    from orchestrator.config import load_config

    cfg = with_overrides(load_config(quick_config()), trials=7,
                         execution={"executor": "local", "workers": None, "trial_timeout": 30.0})
    assert cfg.budget.n_trials == 7 and cfg.execution.executor == "local"
    assert cfg.execution.trial_timeout == 30.0 and cfg.execution.workers is None


def test_local_executor_runs_through_the_console_script(tmp_path):
    config = write(tmp_path / "config.yaml", quick_config(budget={"n_trials": 2}))
    proc = subprocess.run([str(Path(sys.executable).with_name("orchestrator")), "run", str(config), "--out",
                           str(tmp_path / "run"), "--no-progress", "--executor", "local"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "1 trial at a time in this process" in proc.stderr
    trials = [json.loads(line) for line in (tmp_path / "run" / "trials.jsonl").read_text().splitlines()]
    assert [t["state"] for t in trials] == ["COMPLETE", "COMPLETE"]
    assert len({t["pid"] for t in trials}) == 1 and {t["node"] for t in trials} == {socket.gethostname()}
