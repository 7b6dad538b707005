"""What a strategy sees of the trial it runs in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from orchestrator.task import Task, TaskData


def _never_stop(epoch: int, val_metric: float) -> bool:
    return False


@dataclass
class TrialContext:
    """Shared, read-only inputs of one trial.

    ``report_epoch(epoch, val_metric)`` records a point of the training curve and returns True
    when the trial should stop (it is hopeless); the train stage must then return promptly, and the
    pipeline ends the trial as PRUNED with ``stop_reason()``.
    """

    task: Task
    data: TaskData
    teacher: nn.Module
    seed: int
    workdir: Path
    runtime: str = "onnxruntime"
    #: the baseline's weights early in its training (lottery-ticket rewinding); None if unknown
    rewind_state: dict[str, torch.Tensor] | None = None
    report_epoch: Callable[[int, float], bool] = _never_stop
    #: the recipe's scorer applied to a model, for pruners that re-score between steps; None if none
    rescore: Callable[[nn.Module], dict[str, torch.Tensor]] | None = None
    log: Callable[[str], None] = field(default=lambda msg: None)
    #: why early stopping ended the trial, once it has; None while it may go on
    stop_reason: Callable[[], str | None] = field(default=lambda: None)
    #: checks the pruned model against constraints that need no training (raises TrialStopped)
    precheck: Callable[[nn.Module, object], None] | None = None

    def example_inputs(self, batch_size: int = 8) -> torch.Tensor:
        return self.task.example_inputs(self.data, batch_size)

    def calibration_batches(self, n_batches: int = 8, batch_size: int = 64) -> list[torch.Tensor]:
        return self.task.calibration_batches(self.data, n_batches, batch_size)
