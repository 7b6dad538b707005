"""The executor interface and the data a trial needs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from torch import nn

from orchestrator.config import LatencyConfig
from orchestrator.pluginmanager import Catalogue
from orchestrator.results import TrialResult
from orchestrator.task import Task, TaskData


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


@dataclass
class TrialJob:
    number: int
    recipe: dict[str, Any]
    workdir: str


class Executor(ABC):
    """Runs trial jobs; ``wait`` returns at least one finished result while any is pending."""

    #: How many trials may run at once.
    capacity: int = 1

    @abstractmethod
    def start(self, shared: SharedState) -> None: ...

    @abstractmethod
    def submit(self, job: TrialJob) -> None: ...

    @abstractmethod
    def wait(self) -> list[TrialResult]: ...

    def shutdown(self) -> None:
        """Release workers; called once, also after an interruption."""
