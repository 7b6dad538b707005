"""One trial, as a worker runs it: never raises; every failure becomes a FAIL with its reason."""

from __future__ import annotations

import os
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Protocol

import torch

from orchestrator.context import TrialContext
from orchestrator.errors import InapplicableError, TrialStopped
from orchestrator.executors.base import SharedState, TrialJob
from orchestrator.layers import layer_table
from orchestrator.metrics.measure import timing_s
from orchestrator.metrics.slot import waited_s
from orchestrator.pipeline import BLAME, run_recipe
from orchestrator.precheck import check_before_training
from orchestrator.recipe import Recipe
from orchestrator.results import MAX_NOTES, TrialResult


class EpochSink(Protocol):
    """Where a trial reports its curve: the run's CurveBoard, in process or behind a Ray actor."""

    def report(self, number: int, epoch: int, value: float) -> str | None: ...


def execute_trial(job: TrialJob, shared: SharedState, board: EpochSink | None = None) -> TrialResult:
    started = time.time()
    timed, waited = timing_s(), waited_s()
    curve: list[float] = []
    stopped: list[str] = []
    recipe = Recipe.model_validate(job.recipe)
    catalogue = shared.catalogue

    def report_epoch(epoch: int, value: float) -> bool:
        curve.append(value)
        if not stopped and board is not None:
            reason = board.report(job.number, epoch, value)  # the curve is recorded either way
            if reason and job.judged:
                stopped.append(reason)
        return bool(stopped)

    notes: list[str] = []

    def log(message: str) -> None:
        if len(notes) < MAX_NOTES:
            notes.append(str(message))

    def precheck(model: torch.nn.Module, quantizer: object) -> None:
        check_before_training(model, ctx.example_inputs(1), quantizer, shared.constraints)  # type: ignore[arg-type]

    torch.manual_seed(recipe.seed)
    ctx = TrialContext(task=shared.task, data=shared.data, teacher=shared.teacher, seed=recipe.seed,
                       workdir=Path(job.workdir), runtime=shared.latency.runtime, report_epoch=report_epoch,
                       rewind_state=shared.rewind_state, stop_reason=lambda: stopped[0] if stopped else None,
                       precheck=precheck if shared.constraints else None, log=log)
    result = TrialResult(number=job.number, state="FAIL", recipe=job.recipe, description=recipe.describe(catalogue),
                         started_at=started, node=socket.gethostname(), pid=os.getpid())
    try:
        candidate = run_recipe(recipe, ctx, catalogue, shared.latency, shared.baseline_accuracy, shared.meter)
        result.state, result.metrics, result.artifact = "COMPLETE", candidate.metrics, str(candidate.artifact)
        result.layers = layer_table(shared.teacher, candidate.model, candidate.artifact)
    except TrialStopped as exc:
        result.state, result.error = "PRUNED", str(exc)
    except InapplicableError as exc:
        result.error = f"inapplicable: {exc}"
    except Exception as exc:  # a failing trial never kills a run
        where = _plugin_frame(exc, catalogue)
        result.error = f"{type(exc).__name__}: {exc}{where}"
    result.curve = curve
    result.notes = notes
    result.timings = {"latency_s": timing_s() - timed, "waited_s": waited_s() - waited}
    result.finished_at = time.time()
    return result


def _plugin_frame(exc: BaseException, catalogue: object) -> str:
    """Name the strategy and plugin whose code raised, and the innermost line of it, so a user
    knows whose code failed: `` (in distiller 'kd' of plugin 'builtin.distillers.kd', kd.py line 40)``."""
    strategy = getattr(exc, BLAME, None)
    frames = traceback.extract_tb(exc.__traceback__)
    if strategy is None:
        for frame in reversed(frames):
            if "orchestrator_plugins" in frame.filename or "/plugins/" in frame.filename:
                return f" (in {Path(frame.filename).stem}, line {frame.lineno})"
        return ""
    owners = getattr(catalogue, "owners", {})
    owner = owners.get((strategy.family, strategy.name), "unknown")
    source = getattr(sys.modules.get(type(strategy).__module__), "__file__", None)
    line = next((f", {Path(f.filename).name} line {f.lineno}" for f in reversed(frames)
                 if source and Path(f.filename) == Path(source)), "")
    return f" (in {strategy.family} '{strategy.name}' of plugin '{owner}'{line})"
