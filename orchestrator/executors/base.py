"""The executor interface and the data a trial needs."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from orchestrator.config import LatencyConfig
from orchestrator.pluginmanager import Catalogue
from orchestrator.recipe import Recipe
from orchestrator.results import TrialResult
from orchestrator.study.early_stopping import CurveBoard
from orchestrator.task import Task, TaskData


CANCELLED = "cancelled: the run was interrupted while this trial ran; it is re-queued for the next session"


@dataclass
class SharedState:
    """Inputs every trial shares; an executor ships them to its workers once per run."""

    task: Task
    data: TaskData
    teacher: nn.Module
    latency: LatencyConfig
    baseline_accuracy: float | None
    #: the driver's strategies, so workers run exactly what the driver validated
    catalogue: Catalogue
    rewind_state: dict | None = None
    #: the run's constraints, for the checks a pruned model meets before training
    constraints: dict = field(default_factory=dict)
    #: who times latency (orchestrator.metrics.meter); None: the trial's own process
    meter: Any = None


@dataclass
class TrialJob:
    number: int
    recipe: dict[str, Any]
    workdir: str
    #: whether early stopping may stop it (not the enqueued default recipes: they train to the end)
    judged: bool = True


class Executor(ABC):
    """Runs trial jobs; ``wait`` returns at least one finished result while any is pending.

    ``board`` is where running trials report their curves (early stopping); after ``start`` the
    driver reaches it through the executor, in process or behind a Ray actor.
    """

    #: How many trials may run at once.
    capacity: int = 1
    board: Any = None
    #: the latency meter trials use (None: each trial times its artifact in its own process)
    meter: Any = None

    def connect(self) -> None:
        """Reach the workers (join or start a cluster) before the run writes anything."""

    @abstractmethod
    def start(self, shared: SharedState, board: CurveBoard) -> None: ...

    @abstractmethod
    def submit(self, job: TrialJob) -> None: ...

    @abstractmethod
    def wait(self) -> list[TrialResult]: ...

    def cancel_all(self) -> list[TrialResult]:
        """Stop every trial still running (Ctrl-C); each comes back as an interrupted FAIL."""
        return []

    @abstractmethod
    def describe(self) -> str:
        """Where and how many trials run, in words, for the terminal."""

    def shutdown(self) -> None:
        """Release workers; called once, also after an interruption."""


def failed(job: TrialJob, shared: SharedState, error: str, started_at: float, *,
           interrupted: bool = False) -> TrialResult:
    """The result of a trial that could not report one itself (its worker died, it was cancelled)."""
    recipe = Recipe.model_validate(job.recipe)
    return TrialResult(number=job.number, state="FAIL", recipe=job.recipe, error=error,
                       description=recipe.describe(shared.catalogue), started_at=started_at,
                       finished_at=time.time(), interrupted=interrupted)
