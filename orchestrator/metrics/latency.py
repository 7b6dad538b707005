"""Latency: median wall time of one batch, with warm-up and its spread.

The median of many repetitions resists the occasional scheduler hiccup; the interquartile range
beside it says how much to trust it.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class LatencyStats:
    median_ms: float
    iqr_ms: float
    repeats: int


def measure_latency(run: Callable[[torch.Tensor], object], batch: torch.Tensor, *, warmup: int = 5,
                    repeats: int = 30) -> LatencyStats:
    for _ in range(warmup):
        run(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(batch)
        times.append((time.perf_counter() - start) * 1e3)
    if len(times) >= 4:
        q = statistics.quantiles(times, n=4)
        iqr = q[2] - q[0]
    else:
        iqr = max(times) - min(times)
    return LatencyStats(median_ms=statistics.median(times), iqr_ms=iqr, repeats=repeats)
