"""The Ray executor: every trial is a Ray task, as many at once as the cluster has room for.

* The shared state (task, data, baseline model, catalogue) is put into Ray's object store once;
  every task receives a reference to it.
* Tasks run with ``max_retries=0``: a trial whose worker dies (``os._exit``, a segfault, the
  out-of-memory killer) comes back as a FAIL naming the cause, and the run goes on.
* ``trial_timeout`` counts from dispatch; an overdue task is force-cancelled (its worker is
  killed) and recorded as a FAIL.
* Early stopping: the run's :class:`CurveBoard` lives in a zero-CPU actor that every trial
  reports its epochs to.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.executors import ray_runtime
from orchestrator.executors.base import CANCELLED, Executor, SharedState, TrialJob, failed
from orchestrator.executors.ray_runtime import current_node
from orchestrator.results import TrialResult
from orchestrator.study.early_stopping import CurveBoard

if TYPE_CHECKING:
    from orchestrator.config import ExecutionConfig

WORKER_DIED = ("the worker process died while running the trial (os._exit, a segmentation fault or the "
               "out-of-memory killer)")


def _run_trial(job: TrialJob, shared: SharedState, board: Any, threads: int) -> TrialResult:
    """The body of a trial's Ray task (``shared`` arrives resolved from the object store)."""
    import ray
    import torch

    from orchestrator.executors.trial import execute_trial

    torch.set_num_threads(threads)
    result = execute_trial(job, shared, board)
    result.node = ray.get_runtime_context().get_node_id()
    return result


def _warm_up() -> int:
    """Import what trials need, so the first trials do not pay for it."""
    import os

    import onnxruntime  # noqa: F401

    import orchestrator.pipeline  # noqa: F401

    return os.getpid()


class ActorBoard:
    """The driver's and the workers' handle on the CurveBoard actor (same methods, remote calls)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def report(self, number: int, epoch: int, value: float) -> str | None:
        import ray

        try:
            return ray.get(self.handle.report.remote(number, epoch, value))
        except ray.exceptions.RayActorError:  # the board is gone: train on, unjudged
            return None

    def finish(self, number: int, completed: bool) -> list[float]:
        import ray

        try:
            return ray.get(self.handle.finish.remote(number, completed))
        except ray.exceptions.RayActorError:
            return []


@dataclass
class _Pending:
    job: TrialJob
    dispatched: float
    timed_out: bool = False


class RayExecutor(Executor):
    def __init__(self, execution: "ExecutionConfig") -> None:
        self.execution = execution
        self._owns_ray = False
        self._pending: dict[Any, _Pending] = {}
        self._shared: SharedState | None = None

    def connect(self) -> None:
        from orchestrator.metrics.meter import NodeMeters

        self._owns_ray = ray_runtime.connect(self.execution)
        self.meter = NodeMeters.start()

    def start(self, shared: SharedState, board: CurveBoard) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self._shared = shared
        ex = self.execution
        cpus = ray.cluster_resources().get("CPU", 1.0)
        self.capacity = ex.workers or max(1, int(cpus // ex.cpus_per_trial))
        self._shared_ref = ray.put(shared)
        self._task = ray.remote(_run_trial).options(num_cpus=ex.cpus_per_trial, num_gpus=ex.gpus_per_trial,
                                                    max_retries=0)
        # the board lives beside the driver, so a lost worker node does not take it along (a Ray
        # Client driver is on no node: Ray places the board)
        node = current_node()
        here = NodeAffinitySchedulingStrategy(node_id=node, soft=True) if node else "DEFAULT"
        actor = ray.remote(CurveBoard).options(num_cpus=0, scheduling_strategy=here).remote(
            board.rule, board.floor, board.completed)
        self.board = ActorBoard(actor)
        self._threads = max(1, int(ex.cpus_per_trial))
        warm = ray.remote(_warm_up).options(num_cpus=ex.cpus_per_trial, max_retries=0)
        ray.get([warm.remote() for _ in range(self.capacity)])

    def submit(self, job: TrialJob) -> None:
        ref = self._task.remote(job, self._shared_ref, self.board, self._threads)
        self._pending[ref] = _Pending(job=job, dispatched=time.time())

    def wait(self) -> list[TrialResult]:
        import ray

        timeout = self.execution.trial_timeout
        while True:
            if timeout:
                now = time.time()
                for ref, p in self._pending.items():
                    if not p.timed_out and now - p.dispatched > timeout:
                        p.timed_out = True
                        ray.cancel(ref, force=True)
            first, _ = ray.wait(list(self._pending), num_returns=1, timeout=1.0 if timeout else None)
            if first:
                return [self._collect(ref) for ref in self._ready_now()]

    def _ready_now(self) -> list[Any]:
        """Every pending trial that has finished, without waiting."""
        import ray

        if not self._pending:
            return []
        ready, _ = ray.wait(list(self._pending), num_returns=len(self._pending), timeout=0)
        return ready

    def _collect(self, ref: Any) -> TrialResult:
        import ray
        from ray import exceptions as rex

        pending = self._pending.pop(ref)
        assert self._shared is not None
        try:
            return ray.get(ref)
        except rex.RayError as exc:
            return failed(pending.job, self._shared, self._reason(exc, pending), pending.dispatched)

    def _reason(self, exc: Exception, pending: _Pending) -> str:
        from ray import exceptions as rex

        if pending.timed_out:  # a forced cancel may surface as a cancelled task or as a dead worker
            return (f"timed out: still running {self.execution.trial_timeout:g} s after dispatch "
                    "(execution.trial_timeout); cancelled")
        if isinstance(exc, rex.TaskCancelledError):
            return CANCELLED
        if isinstance(exc, rex.OutOfMemoryError):
            return "killed by Ray's memory monitor: the machine ran out of memory during the trial"
        if isinstance(exc, rex.WorkerCrashedError):
            return WORKER_DIED
        cause = exc.cause if isinstance(exc, rex.RayTaskError) and exc.cause is not None else exc
        lines = str(cause).strip().splitlines()
        return f"{type(cause).__name__}: {lines[0] if lines else ''}"

    def cancel_all(self) -> list[TrialResult]:
        import ray

        assert self._shared is not None
        results = [self._collect(ref) for ref in self._ready_now()]  # finished ones keep their results
        for ref, pending in self._pending.items():
            ray.cancel(ref, force=True)
            results.append(failed(pending.job, self._shared, CANCELLED, pending.dispatched, interrupted=True))
        self._pending.clear()
        return results

    def describe(self) -> str:
        if self._owns_ray:
            address = self.execution.address
            if address == "auto":  # say which cluster "auto" found
                import ray

                where = f"Ray at {ray.get_runtime_context().gcs_address}, found by address auto"
            else:
                where = "a private local Ray" if address is None else f"Ray at {address}"
        else:
            where = "the Ray this process is connected to"
        return (f"{self.capacity} parallel trial{'s' * (self.capacity != 1)} × {self.execution.cpus_per_trial:g} "
                f"CPU on {where} ({ray_runtime.cluster_summary()})")

    def shutdown(self) -> None:
        """End the run's actors (its board and meters) and free its shared objects. On a cluster the
        run only joined, they would otherwise live as long as the process that started the run (a
        notebook running search after search would pile them up)."""
        import ray

        if ray.is_initialized():
            for ref in self._pending:  # a run that ended on an error leaves no trial training
                ray.cancel(ref, force=True)
            self._pending.clear()
            actors = [self.board.handle] if isinstance(self.board, ActorBoard) else []
            actors += list(self.meter.handles.values()) if self.meter is not None else []
            for actor in actors:
                try:
                    ray.kill(actor)
                except Exception:  # already gone with its node
                    pass
        self._shared_ref = None
        if self._owns_ray:
            ray_runtime.disconnect()
            self._owns_ray = False
