"""The in-process executor: one trial at a time in the driver, for debugging and fast tests.

It cannot enforce ``execution.trial_timeout`` nor survive a native crash: the Ray executor can.
A trial runs with as many torch threads as a Ray worker gives it (``cpus_per_trial``), so either
executor computes the same model and ``orchestrator apply`` reproduces it.
"""

from __future__ import annotations

import time

from orchestrator.executors.base import CANCELLED, Executor, SharedState, TrialJob, failed
from orchestrator.executors.trial import execute_trial
from orchestrator.metrics.meter import torch_threads
from orchestrator.results import TrialResult
from orchestrator.study.early_stopping import CurveBoard


class LocalExecutor(Executor):
    capacity = 1

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self._shared: SharedState | None = None
        self._queue: list[TrialJob] = []
        self._current: TrialJob | None = None
        self._started = 0.0

    def start(self, shared: SharedState, board: CurveBoard) -> None:
        self._shared, self.board = shared, board

    def submit(self, job: TrialJob) -> None:
        self._queue.append(job)

    def wait(self) -> list[TrialResult]:
        assert self._shared is not None, "start() first"
        job = self._current = self._queue.pop(0)
        self._started = time.time()
        with torch_threads(self.threads):
            result = execute_trial(job, self._shared, self.board)
        self._current = None
        return [result]

    def cancel_all(self) -> list[TrialResult]:
        """The KeyboardInterrupt already ended the running trial inside ``wait``: record it."""
        assert self._shared is not None
        jobs = ([self._current] if self._current else []) + self._queue
        self._current, self._queue = None, []
        return [failed(job, self._shared, CANCELLED, self._started, interrupted=True) for job in jobs]

    def describe(self) -> str:
        return f"1 trial at a time in this process, {self.threads} thread{'s' * (self.threads != 1)} (local executor)"
