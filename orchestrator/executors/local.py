"""The in-process executor: one trial at a time in the driver, for debugging and fast tests."""

from __future__ import annotations

from orchestrator.executors.base import Executor, SharedState, TrialJob
from orchestrator.executors.trial import execute_trial
from orchestrator.results import TrialResult


class LocalExecutor(Executor):
    capacity = 1

    def __init__(self) -> None:
        self._shared: SharedState | None = None
        self._queue: list[TrialJob] = []

    def start(self, shared: SharedState) -> None:
        self._shared = shared

    def submit(self, job: TrialJob) -> None:
        self._queue.append(job)

    def wait(self) -> list[TrialResult]:
        assert self._shared is not None, "start() first"
        job = self._queue.pop(0)
        return [execute_trial(job, self._shared)]
