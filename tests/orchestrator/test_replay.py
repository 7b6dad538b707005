"""``orchestrator apply``: a recipe replayed on the task's baseline makes the trial's model again."""

from __future__ import annotations

import json
import shutil

import pytest

from orchestrator.cli.app import main


@pytest.mark.parametrize("role, where", [("pruned", "run"), ("int8", "exported")])
def test_apply_reproduces_a_trial_of_a_run_to_the_byte(export_run, role, where, tmp_path, capsys):
    """A channel-pruned, fine-tuned trial from its folder in the run (the run's config found by itself),
    and a fine-tuned int8 trial from an exported folder (the config named)."""
    trial = export_run.trial[role]
    kept = export_run.dir / trial.artifact
    if where == "run":
        recipe, extra = kept.with_name("recipe.yaml"), []
    else:
        assert main(["export", str(export_run.dir), "--trial", str(trial.number), "--to", str(tmp_path / "ship")]) == 0
        recipe, extra = tmp_path / "ship" / "recipe.yaml", ["--task", str(export_run.dir / "config.yaml")]
    capsys.readouterr()
    out = tmp_path / "again"
    assert main(["apply", str(recipe), "--out", str(out), *extra]) == 0
    said = capsys.readouterr().out
    assert f"against {recipe.parent / 'metrics.json'}: reproduced" in said
    assert "model.onnx is byte-identical" in said
    assert (out / "model.onnx").read_bytes() == kept.read_bytes()
    metrics = json.loads((out / "metrics.json").read_text())
    for name in ("accuracy", "test_accuracy", "accuracy_drop", "size_mb", "gzip_mb", "params", "macs"):
        assert metrics[name] == trial.metrics[name], name
    assert (out / "recipe.yaml").read_text() == recipe.read_text()
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.onnx", "recipe.yaml"]


def test_apply_says_when_the_recorded_metrics_are_not_reproduced(export_run, tmp_path, capsys):
    trial = export_run.trial["finetuned"]
    folder = tmp_path / "recipe"
    shutil.copytree((export_run.dir / trial.artifact).parent, folder)
    recorded = dict(trial.metrics, size_mb=trial.metrics["size_mb"] * 2)
    (folder / "metrics.json").write_text(json.dumps(recorded))
    assert main(["apply", str(folder / "recipe.yaml"), "--task", str(export_run.dir), "--out",
                 str(tmp_path / "again")]) == 1
    said = capsys.readouterr().out
    assert "NOT reproduced" in said and f"size_mb {trial.metrics['size_mb']:.6g} != " in said
    assert (tmp_path / "again" / "model.onnx").is_file()  # the replay itself stands


@pytest.mark.parametrize("text, expected", [
    ("prune: {strategy: chanel}\n", "field 'prune.strategy': no plugin provides pruner 'chanel' (did you mean 'channel'?)"),
    ("train: {strategy: none, params: {epoch: 2}}\n", "field 'train.params.epoch': distiller 'none' has no parameter "
                                                       "'epoch' (did you mean 'epochs'?)"),
    ("quantise: {strategy: fp16}\n", "field 'quantise': unknown key"),
    ("seed: many\n", "field 'seed': Input should be a valid integer"),
    ("prune: [channel\n", "malformed YAML"),
])
def test_a_bad_recipe_is_one_line_naming_the_field(text, expected, tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    assert main(["apply", str(recipe), "--task", "digits", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ERROR: {recipe}: ") and "\n" not in err, err
    assert expected in err
    assert not (tmp_path / "out").exists()


def test_apply_needs_a_task_for_a_recipe_outside_a_run(tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("seed: 1\n")
    assert main(["apply", str(recipe), "--out", str(tmp_path / "out")]) == 2
    assert "lies in no run directory: name the task with --task" in capsys.readouterr().err
