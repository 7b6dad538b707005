"""Every metric of one candidate, measured on the artifact that would ship."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from orchestrator.export import Runner, load_runner
from orchestrator.metrics.meter import LatencyMeter
from orchestrator.metrics.slot import compute_step
from orchestrator.metrics.size import artifact_sizes, count_macs, count_nonzero_params

if TYPE_CHECKING:
    from orchestrator.metrics.meter import NodeMeters
    from orchestrator.config import LatencyConfig
    from orchestrator.context import TrialContext
    from orchestrator.task import Task


_timing: dict[int, float] = {}


def timing_s() -> float:
    """Seconds this process has spent, so far, having its artifacts' latency timed (waiting for
    the meter and for other measurements on the machine included)."""
    return _timing.get(os.getpid(), 0.0)


def score_runner(runner: Runner, task: "Task", x: torch.Tensor, y: torch.Tensor) -> float:
    """The task's metric of a loaded artifact on one split, in batches of 512 (as every accuracy
    the orchestrator records is taken, so a re-measurement gives the same number)."""
    logits = torch.cat([runner(x[i : i + 512]) for i in range(0, len(x), 512)])
    if not bool(torch.isfinite(logits).all()):
        raise ValueError("the artifact produced non-finite outputs (NaN or inf)")
    value = task.metric(logits, y)
    if not math.isfinite(value):
        raise ValueError("the artifact produced a non-finite accuracy")
    return value


def measure_candidate(model: nn.Module, artifact: Path, ctx: "TrialContext", latency: "LatencyConfig",
                      baseline_accuracy: float | None, meter: "LatencyMeter | NodeMeters | None" = None
                      ) -> dict[str, float]:
    """Every metric, by running the artifact.

    ``accuracy`` (what the search optimises and constrains) is taken on the validation split;
    ``test_accuracy`` on the test split, which no decision of the search ever sees. Latency is
    timed by ``meter`` (this process when None).
    """
    with compute_step():  # pauses while a latency is measured on this machine (never around the meter)
        runner = load_runner(artifact, threads=latency.threads)
        accuracy = score_runner(runner, ctx.task, *ctx.data.val)
        metrics: dict[str, float] = {"accuracy": accuracy,
                                     "test_accuracy": score_runner(runner, ctx.task, *ctx.data.test)}
        if baseline_accuracy is not None:
            metrics["accuracy_drop"] = (baseline_accuracy - accuracy) * 100.0
        metrics["params"] = float(count_nonzero_params(model))
        metrics["macs"] = float(count_macs(model, ctx.example_inputs(1)))
        metrics.update(artifact_sizes(artifact))
        batch = ctx.example_inputs(latency.batch_size)
        del runner  # the meter opens its own sessions
    start = time.perf_counter()
    try:
        stats = (meter or LatencyMeter()).measure(artifact, batch, latency)
    finally:
        _timing[os.getpid()] = timing_s() + time.perf_counter() - start
    metrics["latency_ms"] = stats.median_ms
    metrics["latency_iqr_ms"] = stats.iqr_ms
    metrics["latency_slowdown"] = stats.slowdown
    return metrics
