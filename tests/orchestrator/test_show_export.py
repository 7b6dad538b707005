"""Looking at a finished run and taking a trial away: show, export, the CSV tables."""

from __future__ import annotations

import csv
import json

import pytest

import orchestrator
from helpers import quick_config
from orchestrator.cli.app import main


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("show") / "run"
    return orchestrator.search(quick_config(budget={"n_trials": 4}, execution={"executor": "local"}), out=out,
                               progress=False)


def test_show_prints_the_front_and_json_matches_pareto_json(finished, capsys):
    assert main(["show", str(finished.run_dir)]) == 0
    table = capsys.readouterr().out
    assert "Pareto front:" in table and "baseline" in table
    assert all(str(t.number) in table for t in finished.pareto)
    assert main(["show", str(finished.run_dir), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == json.loads((finished.run_dir / "pareto.json").read_text())["pareto"]


def test_the_csv_tables_hold_every_trial_and_the_front(finished):
    with open(finished.run_dir / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["number"]) for r in rows] == [t.number for t in finished.trials]
    for row, trial in zip(rows, finished.trials):
        assert row["state"] == trial.state
        assert float(row["accuracy"]) == trial.metrics["accuracy"]
        assert float(row["smaller"]) == pytest.approx(finished.baseline["size_mb"] / trial.metrics["size_mb"])
    with open(finished.run_dir / "pareto.csv", newline="") as f:
        assert [int(r["number"]) for r in csv.DictReader(f)] == [t.number for t in finished.pareto]


def test_export_writes_a_model_that_reproduces_the_recorded_accuracy(finished, tmp_path, capsys, digits_task):
    from orchestrator.export import load_runner

    best = finished.pareto[0]
    assert main(["export", str(finished.run_dir), "--trial", str(best.number), "--to", str(tmp_path / "ship")]) == 0
    assert (tmp_path / "ship" / "recipe.yaml").is_file()
    assert json.loads((tmp_path / "ship" / "metrics.json").read_text()) == best.metrics
    run = load_runner(tmp_path / "ship" / "model.onnx")
    x, y = digits_task.load_data(seed=0).val
    assert digits_task.metric(run(x), y) == pytest.approx(best.metrics["accuracy"])


@pytest.mark.parametrize("args, expected", [
    (["--trial", "999"], "trial 999 is not in"),
    (["--trial", "BEST", "--format", "tflite"], "--format tflite: unknown format"),
])
def test_export_refuses_what_it_cannot_do_in_one_line(finished, tmp_path, capsys, args, expected):
    best = str(finished.pareto[0].number)
    args, expected = [best if a == "BEST" else a for a in args], expected.replace("BEST", best)
    assert main(["export", str(finished.run_dir), *args, "--to", str(tmp_path / "ship")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ERROR:") and expected in err and "\n" not in err
    assert not (tmp_path / "ship").exists()
