"""``orchestrator export --format``: a trial of a real run as ONNX, TorchScript or a torch.export program,
checked against the accuracy the run recorded; quantized trials refused where a format cannot reproduce them."""

from __future__ import annotations

import json
import shutil

import pytest

from orchestrator.cli.app import main
from orchestrator.export import load_runner
from orchestrator.metrics.size import artifact_sizes

SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "pt": ".pt2"}


def _accuracy(path, task, data, split="val"):
    x, y = getattr(data, split)
    return task.metric(load_runner(path)(x), y)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("ERROR:") and "\n" not in err, err
    return err


@pytest.mark.parametrize("role, fmt", [("pruned", "onnx"), ("pruned", "torchscript"), ("pruned", "pt"),
                                       ("fp16", "torchscript")])
def test_an_exported_trial_gives_its_recorded_accuracy(export_run, role, fmt, tmp_path, capsys, digits_task,
                                                       digits_data):
    trial = export_run.trial[role]
    to = tmp_path / "ship"
    assert main(["export", str(export_run.dir), "--trial", str(trial.number), "--format", fmt, "--to", str(to)]) == 0
    said = capsys.readouterr().out
    model = to / f"model{SUFFIX[fmt]}"
    assert f"checked {model}: validation accuracy" in said and "equal to the trial's recorded accuracy" in said
    assert sorted(p.name for p in to.iterdir()) == sorted([model.name, "recipe.yaml", "metrics.json"])
    assert _accuracy(model, digits_task, digits_data) == trial.metrics["accuracy"]
    written = json.loads((to / "metrics.json").read_text())
    if fmt == "onnx":  # the shipped file, as the run kept it
        assert written == trial.metrics
        assert model.read_bytes() == (export_run.dir / trial.artifact).read_bytes()
    else:  # another file: its own size, said to be a conversion, beside the trial's metrics
        assert written["float_model"] is False and "converted from its shipped model.onnx" in written["note"]
        assert written["trial_metrics"] == trial.metrics
        assert written["metrics"]["accuracy"] == trial.metrics["accuracy"]
        assert written["metrics"]["size_mb"] == artifact_sizes(model)["size_mb"] != trial.metrics["size_mb"]


def test_an_int8_trial_is_refused_in_a_torch_format_in_one_line(export_run, tmp_path, capsys):
    trial = export_run.trial["int8"]
    to = tmp_path / "ship"
    assert main(["export", str(export_run.dir), "--trial", str(trial.number), "--format", "torchscript",
                 "--to", str(to)]) == 2
    err = _one_error_line(capsys)
    assert f"trial {trial.number} ships a static-int8 model" in err
    assert "--format onnx" in err and "--float" in err
    assert not to.exists() and list(tmp_path.iterdir()) == []


def test_float_exports_the_model_before_quantization_with_its_own_metrics(export_run, tmp_path, capsys,
                                                                          digits_task, digits_data):
    trial = export_run.trial["int8"]
    to = tmp_path / "ship"
    assert main(["export", str(export_run.dir), "--trial", str(trial.number), "--format", "pt", "--float",
                 "--to", str(to)]) == 0
    assert "equal to the float model's accuracy in torch (the trial's static-int8 model recorded" in capsys.readouterr().out
    written = json.loads((to / "metrics.json").read_text())
    assert written["float_model"] is True and "before static-int8 quantization, not its shipped model" in written["note"]
    assert written["trial_metrics"] == trial.metrics
    model = to / "model.pt2"
    measured = written["metrics"]
    assert measured["accuracy"] == _accuracy(model, digits_task, digits_data)
    assert measured["test_accuracy"] == _accuracy(model, digits_task, digits_data, "test")
    assert measured["size_mb"] == artifact_sizes(model)["size_mb"]
    assert measured["size_mb"] > 2 * trial.metrics["size_mb"]  # float32 weights, where int8 stored one byte each
    assert "latency_ms" not in measured


@pytest.fixture
def run_copy(export_run, tmp_path):
    """A copy of the run to tamper with."""
    return shutil.copytree(export_run.dir, tmp_path / "run")


def test_a_file_that_does_not_give_the_recorded_accuracy_is_an_error_and_leaves_nothing(run_copy, export_run,
                                                                                       tmp_path, capsys):
    number = export_run.trial["pruned"].number
    jsonl = run_copy / "trials.jsonl"
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    for line in lines:
        if line["number"] == number:
            line["metrics"]["accuracy"] -= 0.01
    jsonl.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out"
    out.mkdir()
    assert main(["export", str(run_copy), "--trial", str(number), "--format", "pt", "--to", str(out / "ship")]) == 1
    err = _one_error_line(capsys)
    assert f"trial {number}: the written pt file gives validation accuracy" in err and "nothing was exported" in err
    assert list(out.iterdir()) == []  # neither the folder nor its staging folder


def test_a_trial_without_its_float_model_exports_only_its_shipped_format(run_copy, export_run, tmp_path, capsys):
    trial = export_run.trial["pruned"]
    (run_copy / trial.artifact).with_name("model-float.pth").unlink()
    args = ["export", str(run_copy), "--trial", str(trial.number), "--to", str(tmp_path / "ship")]
    assert main([*args, "--format", "torchscript"]) == 2
    assert "kept no float model (model-float.pth" in _one_error_line(capsys)
    assert main(args) == 0


def test_an_unknown_format_is_one_line(export_run, tmp_path, capsys):
    args = ["export", str(export_run.dir), "--trial", str(export_run.trial["pruned"].number), "--format", "tflite",
            "--to", str(tmp_path / "ship")]
    assert main(args) == 2
    assert "--format tflite: unknown format; choose one of onnx, torchscript, pt" in _one_error_line(capsys)


def test_the_python_api_exports_as_the_cli_does(export_run, tmp_path):
    trial = export_run.trial["finetuned"]
    lines = []
    path = export_run.result.export(trial.number, tmp_path / "ship", format="torchscript", log=lines.append)
    assert path == tmp_path / "ship" / "model.pt" and path.is_file()
    assert len(lines) == 1 and lines[0].startswith(f"checked {path}: validation accuracy")
