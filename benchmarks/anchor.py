"""The anchor: a hand-written compression grid, what a practitioner writes without the orchestrator.

For one task and its trained baseline, every combination of

* channel pruning, ratio 0 / 0.25 / 0.5 / 0.75: Torch-Pruning's dependency graph
  (``tp.pruner.MetaPruner``) with L1 magnitude importance (``tp.importance.MagnitudeImportance(p=1)``),
  the same ratio in every layer, the final classifier never pruned (its inputs shrink with the
  layer before it). Attention blocks are declared to Torch-Pruning by their query/key/value
  projections and head counts, as its Hugging Face BERT example does, so every head is narrowed
  alike; afterwards each block's head size is set to its new width.
* fine-tuning for 5 / 15 epochs: a plain loop, Adam at a constant 1e-3, batches of 128, cross
  entropy. The 5-epoch point is the 15-epoch run's state after its fifth epoch: with a constant
  learning rate and the same seeded data order the two runs are identical up to there, so each
  (ratio, distillation) pair trains once.
* logit distillation off / on: the unpruned baseline as the teacher, temperature 4,
  loss = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross entropy, alpha 0.5.
* ONNX Runtime static int8 off / on: ``quantize_static`` on the exported file (after ONNX Runtime's
  recommended ``quant_pre_process``), QDQ format, int8 weights per output channel, uint8
  activations, min-max ranges from 8 training batches of 64.

That is 32 files. The baseline, the data and its splits are the orchestrator's (``resolve_task``,
``prepare_baseline``), and so is every measurement, so grid points and search trials compare
directly: each model is exported with the trials' exporter (``orchestrator.export.export_onnx``,
debug info stripped), and the file is measured by ``orchestrator.metrics.measure_candidate``:
``accuracy`` on the validation split and ``test_accuracy`` on the test split by running the file on
ONNX Runtime, ``accuracy_drop`` in points against the baseline, ``size_mb`` (bytes / 1e6),
``gzip_mb``, ``params``, ``macs`` and ``latency_ms`` (ONNX Runtime, batch 256, one thread). The
latency is timed by the orchestrator's ``LatencyMeter`` in a process of its own that only times
models, as the meter actor of a search does, not in the process that has just trained.

    from anchor import run_grid
    points = run_grid("mnist1d", seed=0)              # 32 dicts: config, description, metrics
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

from orchestrator.baseline import Baseline, prepare_baseline
from orchestrator.config import LatencyConfig, TaskConfig
from orchestrator.context import TrialContext
from orchestrator.export import export_onnx, quiet_ort
from orchestrator.metrics import measure_candidate
from orchestrator.metrics.meter import LatencyMeter
from orchestrator.pluginmanager import get_host
from orchestrator.task import Task, TaskData
from orchestrator.tasks import resolve_task

RATIOS = (0.0, 0.25, 0.5, 0.75)
EPOCHS = (5, 15)
KD = (False, True)
INT8 = (False, True)
LR, BATCH_SIZE = 1e-3, 128
TEMPERATURE, ALPHA = 4.0, 0.5
CALIBRATION_BATCHES, CALIBRATION_BATCH_SIZE = 8, 64


@dataclass
class Setup:
    """A task with its data and trained baseline, as a search on it would see them."""

    task: Task
    data: TaskData
    baseline: Baseline
    seed: int

    def context(self, workdir: Path) -> TrialContext:
        return TrialContext(task=self.task, data=self.data, teacher=self.baseline.model, seed=self.seed,
                            workdir=workdir)


def prepare(task_name: str, seed: int = 0, log: Callable[[str], None] = print) -> Setup:
    """The task by name (default parameters) and its baseline: trained once, then cached."""
    task = resolve_task(TaskConfig(name=task_name), get_host().catalogue)
    data = task.load_data(seed)
    return Setup(task, data, prepare_baseline(task, data, seed, log=log), seed)


# --- what the practitioner writes ---------------------------------------------------------------


def classifier_of(model: nn.Module) -> nn.Module:
    """The final classifier: the model's last linear layer."""
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


def attention_blocks(model: nn.Module) -> list[nn.Module]:
    """BERT-style self-attention blocks (query/key/value projections and a head count)."""
    return [m for m in model.modules() if hasattr(m, "num_attention_heads") and hasattr(m, "query")]


def prune_channels(model: nn.Module, ratio: float, example: torch.Tensor) -> nn.Module:
    """Remove ``ratio`` of the channels of every layer by L1 magnitude, in place."""
    if ratio <= 0:
        return model
    blocks = attention_blocks(model)
    num_heads = {getattr(b, name): b.num_attention_heads for b in blocks for name in ("query", "key", "value")}
    pruner = tp.pruner.MetaPruner(model, example, importance=tp.importance.MagnitudeImportance(p=1),
                                  pruning_ratio=ratio, ignored_layers=[classifier_of(model)], num_heads=num_heads)
    pruner.step()
    for block in blocks:  # the attention code splits by these attributes: match them to the new widths
        block.num_attention_heads = pruner.num_heads[block.query]
        block.all_head_size = block.query.out_features
        block.attention_head_size = block.all_head_size // block.num_attention_heads
    return model


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, targets: torch.Tensor,
                      temperature: float, alpha: float) -> torch.Tensor:
    soft = F.kl_div(F.log_softmax(student / temperature, dim=1), F.softmax(teacher / temperature, dim=1),
                    reduction="batchmean") * temperature ** 2
    return alpha * soft + (1 - alpha) * F.cross_entropy(student, targets)


def fine_tune(model: nn.Module, train: tuple[torch.Tensor, torch.Tensor], epochs: Iterable[int], *, seed: int,
              teacher: nn.Module | None = None, lr: float = LR, batch_size: int = BATCH_SIZE,
              temperature: float = TEMPERATURE, alpha: float = ALPHA) -> dict[int, nn.Module]:
    """Train with Adam for max(epochs) epochs; a copy of the model after each epoch in ``epochs``."""
    keep = sorted(set(epochs))
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    x_train, y_train = train
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    if teacher is not None:
        teacher.eval()
    snapshots = {0: copy.deepcopy(model).eval()} if 0 in keep else {}
    for epoch in range(1, max(keep, default=0) + 1):
        model.train()
        for idx in torch.randperm(len(x_train), generator=order).split(batch_size):
            x, y = x_train[idx], y_train[idx]
            logits = model(x)
            if teacher is None:
                loss = F.cross_entropy(logits, y)
            else:
                with torch.no_grad():
                    teacher_logits = teacher(x)
                loss = distillation_loss(logits, teacher_logits, y, temperature, alpha)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if epoch in keep:
            snapshots[epoch] = copy.deepcopy(model).eval()
    return snapshots


def quantize_int8(fp32: Path, out: Path, calibration: Sequence[torch.Tensor], input_name: str) -> Path:
    """ONNX Runtime static int8 in QDQ format, calibrated on ``calibration`` batches."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{input_name: b.numpy()} for b in calibration])

        def get_next(self):
            return next(self.batches, None)

    prepared = out.with_name(out.stem + "-prepared.onnx")
    with quiet_ort():
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(out), Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    prepared.unlink()
    return out


# --- measured the orchestrator's way -------------------------------------------------------------


class FreshProcessMeter:
    """Times artifacts with the orchestrator's LatencyMeter in a spawned process that does nothing
    else (as a search's meter actor does); ``measure_candidate`` takes it as its meter."""

    def __init__(self) -> None:
        self.pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        self.pool.submit(LatencyMeter().ready).result()

    def measure(self, artifact, batch, latency):
        return self.pool.submit(LatencyMeter().measure, str(Path(artifact).resolve()), batch, latency).result()

    def close(self) -> None:
        self.pool.shutdown()

    def __enter__(self) -> "FreshProcessMeter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def measure_file(setup: Setup, model: nn.Module, artifact: Path, latency: LatencyConfig,
                 baseline_accuracy: float | None, meter: FreshProcessMeter) -> dict[str, float]:
    """Every metric a trial records, measured by the orchestrator's own code on ``artifact``."""
    return measure_candidate(model, artifact, setup.context(artifact.parent), latency, baseline_accuracy, meter)


def export_file(setup: Setup, model: nn.Module, path: Path) -> Path:
    """The trials' ONNX export: torch.onnx (dynamo), dynamic batch, debug info stripped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return export_onnx(model, setup.task.example_inputs(setup.data, 8), path, setup.task.input_name)


def measure_baseline(setup: Setup, latency: LatencyConfig, workdir: Path, meter: FreshProcessMeter) -> dict:
    """The baseline's own file, measured as the grid points are (accuracy_drop 0 by definition)."""
    model = copy.deepcopy(setup.baseline.model).eval()
    metrics = measure_file(setup, model, export_file(setup, model, workdir / "baseline" / "model.onnx"), latency,
                           None, meter)
    return dict(metrics, accuracy_drop=0.0)


def describe(ratio: float, epochs: int, kd: bool, int8: bool) -> str:
    training = f"kd T={TEMPERATURE:g}" if kd else "fine-tune"
    parts = [f"L1 channel {ratio:.0%}" if ratio > 0 else "unpruned",
             f"{training} {epochs} epochs" if epochs else "no training"]
    if int8:
        parts.append("static-int8")
    return " -> ".join(parts)


def run_grid(task_name: str, seed: int = 0, *, epochs: Sequence[int] = EPOCHS, ratios: Sequence[float] = RATIOS,
             kd: Sequence[bool] = KD, int8: Sequence[bool] = INT8, latency: LatencyConfig | None = None,
             workdir: Path | None = None, setup: Setup | None = None, baseline_accuracy: float | None = None,
             meter: FreshProcessMeter | None = None, log: Callable[[str], None] = print) -> list[dict]:
    """Every (ratio, epochs, kd, int8) combination, compressed by hand and measured the orchestrator's way.

    Each point: ``number``, ``config`` (ratio, epochs, kd, int8), ``description``, ``metrics`` (the
    names a trial records), ``artifact`` and ``seconds``: ``train`` is the whole training run the
    point's model comes from (shared with its other snapshots), then its export, quantization and
    measurement. Without ``baseline_accuracy`` the baseline's file is measured first to judge
    ``accuracy_drop``; without ``meter`` a meter process is started for the grid and ended after it.
    """
    setup = setup or prepare(task_name, seed, log=log)
    latency = latency or LatencyConfig(runtime="onnxruntime", batch_size=256, threads=1)
    workdir = Path(workdir or tempfile.mkdtemp(prefix="anchor-"))
    example = setup.task.example_inputs(setup.data, 2)
    x_train = setup.data.train[0]
    calibration = [x_train[i * CALIBRATION_BATCH_SIZE:(i + 1) * CALIBRATION_BATCH_SIZE]
                   for i in range(CALIBRATION_BATCHES)]
    total = len(ratios) * len(epochs) * len(kd) * len(int8)
    points: list[dict] = []
    with contextlib.ExitStack() as stack:
        meter = meter or stack.enter_context(FreshProcessMeter())
        if baseline_accuracy is None:
            baseline_accuracy = measure_baseline(setup, latency, workdir, meter)["accuracy"]
        for ratio, distil in itertools.product(ratios, kd):
            start = time.perf_counter()
            student = prune_channels(copy.deepcopy(setup.baseline.model).eval(), ratio, example)
            snapshots = fine_tune(student, setup.data.train, epochs, seed=seed,
                                  teacher=setup.baseline.model if distil else None)
            train_s = time.perf_counter() - start
            for n_epochs, model in sorted(snapshots.items()):
                folder = workdir / f"ratio{ratio:g}-epochs{n_epochs}-{'kd' if distil else 'ft'}"
                start = time.perf_counter()
                fp32 = export_file(setup, model, folder / "model-fp32.onnx")
                export_s = time.perf_counter() - start
                for quantized in int8:
                    start = time.perf_counter()
                    artifact = (quantize_int8(fp32, folder / "model-int8.onnx", calibration, setup.task.input_name)
                                if quantized else fp32)
                    quantize_s = time.perf_counter() - start
                    start = time.perf_counter()
                    metrics = measure_file(setup, model, artifact, latency, baseline_accuracy, meter)
                    config = {"ratio": ratio, "epochs": n_epochs, "kd": distil, "int8": quantized}
                    point = {"config": config, "description": describe(**config), "metrics": metrics,
                             "artifact": str(artifact),
                             "seconds": {"train": train_s, "export": export_s, "quantize": quantize_s,
                                         "measure": time.perf_counter() - start}}
                    points.append(point)
                    log(f"grid {len(points)}/{total}: {point['description']}: acc {metrics['accuracy']:.4f} "
                        f"(drop {metrics['accuracy_drop']:+.2f}), {metrics['size_mb']:.4f} MB, "
                        f"{metrics['latency_ms']:.3f} ms")
    points.sort(key=lambda p: (p["config"]["ratio"], p["config"]["epochs"], p["config"]["kd"], p["config"]["int8"]))
    for number, point in enumerate(points):
        point["number"] = number
    return points
