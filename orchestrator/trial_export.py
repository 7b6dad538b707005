"""Taking one trial of a finished run away as ONNX, TorchScript or a ``torch.export`` program.

The contract: the exported file gives the accuracy the run recorded. The shipped format is a
copy of the shipped file; another format is written from the trial's float model
(``model-float.pth``) through its quantizer's :meth:`~orchestrator.strategies.Quantizer.torch_equivalent`
(fp16: the model in half precision) or, for ONNX, its quantizer run again. An int8 ONNX Runtime
model has no torch equivalent: that export is refused unless the user asks for the float model
before quantization, whose metrics are then measured again and labelled as such.

Every export is checked before it is handed over: the written file is loaded as a user would
load it and run on the task's validation split; its accuracy must equal the expected one. Files
are written in a staging folder and moved into ``to`` only then.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.atomic import atomic_write_json, atomic_write_text, move_into, staging_folder
from orchestrator.errors import ExportError, UsageError
from orchestrator.export import (FLOAT_MODEL, ONNX_SUFFIX, TORCH_SUFFIX, TORCHSCRIPT_SUFFIX, export_onnx,
                                 export_torch, export_torchscript, load_float_model, load_runner)
from orchestrator.recipe import NONE
from orchestrator.strategies import Quantizer

if TYPE_CHECKING:
    from torch import nn

    from orchestrator.api import SearchResult
    from orchestrator.pluginmanager import PluginHost
    from orchestrator.task import Task, TaskData

#: --format name -> file suffix
FORMATS = {"onnx": ONNX_SUFFIX, "torchscript": TORCHSCRIPT_SUFFIX, "pt": TORCH_SUFFIX}
TORCH_FORMATS = ("torchscript", "pt")


@dataclass
class ExportedTrial:
    path: Path
    format: str
    #: the written file's accuracy on the validation split
    accuracy: float
    #: the float model before quantization, not the trial's shipped model
    float_model: bool
    #: one line saying what was checked
    check: str


def format_of(path: Path) -> str:
    """The format name of a model file, by its suffix."""
    names = [name for name, suffix in FORMATS.items() if suffix == Path(path).suffix]
    if not names:
        raise UsageError(f"{path}: not a model file this orchestrator writes ({', '.join(FORMATS.values())})")
    return names[0]


def export_trial(result: "SearchResult", number: int, to: str | Path, fmt: str | None = None, *,
                 float_model: bool = False, host: "PluginHost | None" = None) -> ExportedTrial:
    """Write trial ``number``'s model in format ``fmt`` (default: the shipped one) with its
    recipe.yaml and metrics.json into folder ``to``, after checking it."""
    from orchestrator.pluginmanager import get_host

    shipped = result.artifact(number)
    shipped_format = format_of(shipped)
    fmt = fmt or shipped_format
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: unknown format; choose one of {', '.join(FORMATS)}")
    recipe = result.recipe(number)
    quantized = recipe.quantize.strategy != NONE
    float_model = float_model and quantized  # an unquantized trial ships its float model
    host = host or get_host()
    quantizer = host.catalogue.family("quantizer").get(recipe.quantize.strategy)
    if not float_model and fmt != shipped_format:
        _check_convertible(number, recipe.quantize.strategy, quantizer, shipped, fmt)
    converted = float_model or fmt != shipped_format  # else: the shipped file, copied
    float_path = shipped.parent / FLOAT_MODEL
    if converted and not float_path.is_file():
        raise UsageError(f"trial {number} kept no float model ({FLOAT_MODEL}; runs of older versions keep none, "
                         f"nor do models that cannot be pickled): only --format {shipped_format} can be exported")

    from orchestrator.metrics.meter import torch_threads

    task, data = _task_and_data(result, host)
    trial = result.trial(number)
    # the threads the trial ran with, so a torch model computes exactly what the trial measured
    module = None
    with torch_threads(max(1, int(result.config.execution.cpus_per_trial))), staging_folder(Path(to)) as tmp:
        path = tmp / f"model{FORMATS[fmt]}"
        if converted:
            module = load_float_model(float_path)
            try:
                _write(module, None if float_model else quantizer, recipe.quantize.params, fmt, path, task, data,
                       recipe.seed)
            except Exception as exc:  # the exporters fail in many ways; one line, nothing left behind
                detail = (str(exc).strip().splitlines() or [""])[0]
                raise ExportError(f"trial {number}: writing {fmt} failed: {type(exc).__name__}: {detail}") from exc
        else:
            shutil.copy2(shipped, path)
        accuracy, metrics, checked = _check(result, number, path, fmt, task, data, module if float_model else None)
        if converted:
            atomic_write_json(tmp / "metrics.json", _labelled(number, recipe.quantize.strategy, path, fmt,
                                                              shipped, float_model, metrics, trial.metrics))
        else:
            atomic_write_json(tmp / "metrics.json", trial.metrics)
        atomic_write_text(tmp / "recipe.yaml", recipe.to_yaml())
        move_into(tmp, Path(to))
    final = Path(to) / path.name
    return ExportedTrial(path=final, format=fmt, accuracy=accuracy, float_model=float_model,
                         check=f"checked {final}: {checked}")


def _check_convertible(number: int, name: str, quantizer: Quantizer | None, shipped: Path, fmt: str) -> None:
    """Refuse, before any work, a format that cannot compute what the shipped model computes."""
    if quantizer is None:
        raise UsageError(f"trial {number} was quantized by '{name}', which no installed plugin provides: only "
                         f"--format {format_of(shipped)} can be exported")
    if fmt in TORCH_FORMATS:
        possible = type(quantizer).torch_equivalent is not Quantizer.torch_equivalent
    else:
        possible = "onnxruntime" in quantizer.runtimes
    if not possible:
        raise UsageError(f"trial {number} ships a {name} model ({shipped.name}) that {fmt} cannot reproduce, so its "
                         f"recorded accuracy would not hold: export --format {format_of(shipped)} for the shipped "
                         "model, or add --float for the float model before quantization (its metrics measured "
                         "again)")


def _task_and_data(result: "SearchResult", host: "PluginHost") -> tuple["Task", "TaskData"]:
    from orchestrator.tasks import resolve_task

    task = resolve_task(result.config.task, host.catalogue)
    try:
        return task, task.load_data(result.config.seed)
    except ImportError as exc:
        raise UsageError(f"task '{task.name}': {exc}") from None


def _write(module: "nn.Module", quantizer: Quantizer | None, params: dict[str, Any], fmt: str, path: Path,
           task: "Task", data: "TaskData", seed: int) -> None:
    """Write ``module`` (the float model) as ``fmt``, quantized as the trial was unless ``quantizer`` is None."""
    example = task.example_inputs(data, 8)
    if fmt in TORCH_FORMATS:
        model = module if quantizer is None else quantizer.torch_equivalent(module, params)
        (export_torch if fmt == "pt" else export_torchscript)(model, example, path)
        return
    fp32 = export_onnx(module, example, path.with_name("model-fp32.onnx"), task.input_name)
    if quantizer is None or quantizer.name == NONE:
        fp32.replace(path)
        return
    from orchestrator.context import TrialContext

    ctx = TrialContext(task=task, data=data, teacher=module, seed=seed, workdir=path.parent)
    written = quantizer.quantize(module, fp32, path, ctx, params)
    if written != path:
        Path(written).replace(path)
    fp32.unlink(missing_ok=True)


def _check(result: "SearchResult", number: int, path: Path, fmt: str, task: "Task", data: "TaskData",
           float_module: "nn.Module | None") -> tuple[float, dict[str, float], str]:
    """Run the written file on the validation split; its accuracy must equal the expected one: the
    trial's recorded accuracy, or for the float model (``float_module``) that module's in torch."""
    from orchestrator.metrics.measure import score_runner
    from orchestrator.metrics.size import artifact_sizes

    trial = result.trial(number)
    runner = load_runner(path, threads=result.config.latency.threads)
    accuracy = score_runner(runner, task, *data.val)
    n = len(data.val[1])
    if float_module is not None:
        from orchestrator.training import predict_module

        expected = score_runner(lambda x: predict_module(float_module, x).float(), task, *data.val)
        against = "the float model's accuracy in torch"
    else:
        expected = trial.metrics["accuracy"]
        against = "the trial's recorded accuracy"
    if accuracy != expected:
        raise ExportError(f"trial {number}: the written {fmt} file gives validation accuracy {accuracy:.6g}, not "
                          f"{against} {expected:.6g}; nothing was exported")
    metrics = {"accuracy": accuracy, "test_accuracy": score_runner(runner, task, *data.test)}
    if "accuracy" in result.baseline:
        metrics["accuracy_drop"] = (result.baseline["accuracy"] - accuracy) * 100.0
    metrics.update({k: trial.metrics[k] for k in ("params", "macs") if k in trial.metrics})
    metrics.update(artifact_sizes(path))
    checked = f"validation accuracy {accuracy:.4f} on {n} inputs, equal to {against}"
    if float_module is not None:
        checked += (f" (the trial's {result.recipe(number).quantize.strategy} model recorded "
                    f"{trial.metrics['accuracy']:.4f})")
    return accuracy, metrics, checked


def _labelled(number: int, quantizer: str, path: Path, fmt: str, shipped: Path, float_model: bool,
              metrics: dict[str, float], recorded: dict[str, float]) -> dict[str, Any]:
    """metrics.json for a file other than the shipped one: its own metrics, said to be so, beside the trial's."""
    if float_model:
        what = (f"the float model of trial {number} before {quantizer} quantization, not its shipped model; "
                "metrics measured again on this file by orchestrator export (latency not measured)")
    else:
        what = (f"trial {number}'s model as {fmt}, converted from its shipped {shipped.name}; metrics measured "
                "again on this file by orchestrator export (latency not measured)")
    return {"model": path.name, "format": fmt, "float_model": float_model, "note": what, "trial": number,
            "metrics": metrics, "trial_metrics": recorded}
