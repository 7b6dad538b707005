"""Latency: the median wall time of one batch, with warm-up, over several runtime sessions.

The median of many repetitions resists the occasional scheduler hiccup; the interquartile range
beside it says how much to trust it. One runtime session can also be slow as a whole (where its
buffers landed in memory, a noisy neighbour on a virtual machine): up to a third slower than the
next session of the same file, on the machines we measured. So the file is timed in ``sessions``
fresh sessions, one after the other, and ``latency_ms`` is the median of their medians: one slow
session is outvoted. (When most sessions were slow, the meter times the file again: see
:mod:`orchestrator.metrics.meter`.)
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

Run = Callable[[torch.Tensor], object]


@dataclass(frozen=True)
class LatencyStats:
    median_ms: float
    iqr_ms: float
    repeats: int
    #: each session's median
    session_medians_ms: tuple[float, ...] = ()
    #: how much slower than its best the canary ran around this reading (1.0: at its best)
    slowdown: float = 1.0
    #: readings taken (more than one when a disturbed reading was taken again)
    readings: int = 1


def _time(run: Run, batch: torch.Tensor, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        run(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(batch)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def measure_latency(run: Run, batch: torch.Tensor, *, warmup: int = 5, repeats: int = 30, sessions: int = 1,
                    new_session: Callable[[], Run] | None = None) -> LatencyStats:
    """Time ``run(batch)``; with ``sessions > 1``, also ``sessions - 1`` runners from ``new_session()``."""
    if sessions > 1 and new_session is None:
        raise ValueError("timing several sessions needs new_session")
    medians, pooled = [], []
    for i in range(sessions):
        times = _time(run if i == 0 else new_session(), batch, warmup, repeats)  # type: ignore[misc]
        medians.append(statistics.median(times))
        pooled += times
    if len(pooled) >= 4:
        q = statistics.quantiles(pooled, n=4)
        iqr = q[2] - q[0]
    else:
        iqr = max(pooled) - min(pooled)
    return LatencyStats(median_ms=statistics.median(medians), iqr_ms=iqr, repeats=repeats * sessions,
                        session_medians_ms=tuple(medians))
