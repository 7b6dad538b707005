"""One trial, as a worker runs it: never raises; every failure becomes a FAIL with its reason."""

from __future__ import annotations

import time
import traceback
from pathlib import Path

import torch

from orchestrator.context import TrialContext
from orchestrator.errors import InapplicableError
from orchestrator.executors.base import SharedState, TrialJob
from orchestrator.pipeline import run_recipe
from orchestrator.recipe import Recipe
from orchestrator.results import TrialResult


def execute_trial(job: TrialJob, shared: SharedState) -> TrialResult:
    started = time.time()
    curve: list[float] = []
    recipe = Recipe.model_validate(job.recipe)
    catalogue = shared.catalogue

    def report_epoch(epoch: int, value: float) -> bool:
        curve.append(value)
        return False

    torch.manual_seed(recipe.seed)
    ctx = TrialContext(task=shared.task, data=shared.data, teacher=shared.teacher, seed=recipe.seed,
                       workdir=Path(job.workdir), runtime=shared.latency.runtime, report_epoch=report_epoch,
                       rewind_state=shared.rewind_state)
    result = TrialResult(number=job.number, state="FAIL", recipe=job.recipe, description=recipe.describe(catalogue),
                         started_at=started)
    try:
        candidate = run_recipe(recipe, ctx, catalogue, shared.latency, shared.baseline_accuracy)
        result.state, result.metrics, result.artifact = "COMPLETE", candidate.metrics, str(candidate.artifact)
    except InapplicableError as exc:
        result.error = f"inapplicable: {exc}"
    except Exception as exc:  # a failing trial never kills a run
        where = _plugin_frame(exc)
        result.error = f"{type(exc).__name__}: {exc}{where}"
    result.curve = curve
    result.finished_at = time.time()
    return result


def _plugin_frame(exc: BaseException) -> str:
    """Name the innermost plugin module in the traceback, so a user knows whose code failed."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        if "orchestrator_plugins" in frame.filename or "/plugins/" in frame.filename:
            return f" (in {Path(frame.filename).stem}, line {frame.lineno})"
    return ""
