"""Who times the artifact: a latency meter, one long-lived process per machine.

A trial's own worker process has just trained a model: its heap, caches and allocator carry that
history, and the same file timed there can run a third slower than in a process that has only
ever timed models. So with Ray, every latency on a node is timed by that node's meter, an actor
(zero CPUs, pinned to the node) that the driver starts with the run and that does nothing else.
Its calls are served one at a time, inside the machine's measuring slot. Without Ray (the local
executor, or a node that joined after the run started) the trial's process times the file itself.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import torch

from orchestrator.export import load_runner
from orchestrator.metrics.canary import SLOW, Canary, canary
from orchestrator.metrics.latency import LatencyStats, measure_latency
from orchestrator.metrics.slot import measurement_turn, training_paused

if TYPE_CHECKING:
    from orchestrator.config import LatencyConfig


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


#: a measurement whose interquartile range is wider than this fraction of its median was disturbed
#: (most undisturbed readings spread by under a tenth of their median); so was one whose canary
#: ran slow (see :mod:`orchestrator.metrics.canary`). It is taken again, up to RETIMES times; the
#: undisturbed reading is kept, or when every reading was disturbed, the lowest median (a
#: disturbance only ever slows a reading down)
WIDE = 0.2
RETIMES = 2
#: the warm-up times the canary between chunks of this many seconds of running the model
WARM_CHUNK_S = 0.1
#: seconds of warm-up the canary is timed across before its best is trusted to end a warm-up early
LEARN_S = 1.0


def _warm(run: Any, batch: torch.Tensor, seconds: float, check: Canary | None) -> None:
    """Run the model untimed, for at most ``seconds``: a core that idled runs slow for a while
    (frequency, a virtual machine's scheduler). With a canary that has learnt its best, the
    warm-up ends as soon as the canary runs within :data:`~orchestrator.metrics.canary.SLOW` of it."""
    start = time.perf_counter()
    end = start + seconds
    while True:
        if check is not None:
            ms = check.time_ms()
            if check.learnt_s >= LEARN_S and not check.slow(ms):
                break
        now = time.perf_counter()
        if now >= end:
            break
        chunk = min(end, now + WARM_CHUNK_S)
        while time.perf_counter() < chunk:
            run(batch)
    if check is not None:
        check.learnt_s += time.perf_counter() - start


def _disturbed(stats: LatencyStats) -> bool:
    return stats.iqr_ms > WIDE * stats.median_ms or stats.slowdown > 1.0 + SLOW


class LatencyMeter:
    """Times an artifact in this process, in the machine's measuring slot."""

    def ready(self) -> int:
        """Load what timing needs (the first trial should not wait for the imports)."""
        import os

        import onnxruntime  # noqa: F401

        return os.getpid()

    def measure(self, artifact: str | Path, batch: torch.Tensor, latency: "LatencyConfig") -> LatencyStats:
        """The file's latency: warmed up while other trials go on training, then timed with their
        training paused; a disturbed reading (wide, or taken while the canary ran slow) is taken
        again, with a fresh warm-up, up to :data:`RETIMES` times."""
        def session() -> Any:
            return load_runner(Path(artifact), threads=latency.threads)

        check = canary(latency.threads) if latency.canary else None
        with measurement_turn(), torch_threads(latency.threads):
            run = session()
            readings: list[LatencyStats] = []
            for reading in range(1 + RETIMES):
                if reading:
                    run = session()
                _warm(run, batch, latency.warmup_s, check)
                with training_paused():
                    before = check.time_ms() if check else 0.0
                    stats = measure_latency(run, batch, warmup=latency.warmup, repeats=latency.repeats,
                                            sessions=latency.sessions, new_session=session)
                    after = check.time_ms() if check else 0.0
                slowdown = max(check.slowdown(before), check.slowdown(after)) if check else 1.0
                readings.append(replace(stats, slowdown=slowdown))
                if not _disturbed(readings[-1]):
                    return replace(readings[-1], readings=len(readings))
            return replace(min(readings, key=lambda s: s.median_ms), readings=len(readings))


class NodeMeters:
    """The run's meter actors by Ray node ID; a trial uses the one on its own node."""

    def __init__(self, handles: dict[str, Any]) -> None:
        self.handles = handles
        self._local = LatencyMeter()

    @classmethod
    def start(cls) -> "NodeMeters":
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        actor = ray.remote(LatencyMeter)
        handles = {}
        for node in ray.nodes():
            if node.get("Alive"):
                strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
                handles[node["NodeID"]] = actor.options(num_cpus=0, scheduling_strategy=strategy,
                                                        max_restarts=-1).remote()
        ray.get([h.ready.remote() for h in handles.values()])
        return cls(handles)

    def measure(self, artifact: str | Path, batch: torch.Tensor, latency: "LatencyConfig") -> LatencyStats:
        import ray

        from orchestrator.executors.ray_runtime import current_node

        handle = self.handles.get(current_node() or "") if ray.is_initialized() else None
        artifact = Path(artifact).resolve()  # the meter runs in a working directory of its own
        if handle is not None:
            try:
                return ray.get(handle.measure.remote(str(artifact), batch, latency))
            except ray.exceptions.RayActorError:  # the meter died (Ray restarts it): time it here
                pass
        return self._local.measure(artifact, batch, latency)
