"""The feasible Pareto front and its hypervolume in objectives normalised against the baseline.

Normalisation (recorded in ``pareto.json``): every objective is turned into a loss in [0, 1]
between an ideal point (0 for minimised metrics; 1 for maximised metrics in [0, 1], such as
accuracy) and a reference point derived from the baseline: 1.1x the baseline for minimised
metrics, the baseline minus 0.1 for maximised ones (ten accuracy points). The hypervolume of the
front against the point (1, ..., 1) is therefore comparable across runs of the same task.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from orchestrator.config import Objective
from orchestrator.results import TrialResult


def constraint_violations(metrics: dict[str, float], constraints: dict) -> dict[str, float]:
    """metric -> violation (<= 0 satisfied), scaled by the bound (1 for a zero bound) so metrics of
    any unit compare."""
    out = {}
    for metric, bound in constraints.items():
        value = metrics[metric]
        worst = float("-inf")
        if bound.max is not None:
            worst = max(worst, (value - bound.max) / (abs(bound.max) or 1.0))
        if bound.min is not None:
            worst = max(worst, (bound.min - value) / (abs(bound.min) or 1.0))
        out[metric] = worst
    return out


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def losses(metrics: dict[str, float], objectives: list[Objective]) -> list[float]:
    return [(-1.0 if o.direction == "maximize" else 1.0) * metrics[o.metric] for o in objectives]


def pareto_front(results: list[TrialResult], objectives: list[Objective]) -> list[TrialResult]:
    """Feasible, complete, non-dominated trials (ties keep the earliest trial), best first."""
    pool = [r for r in results if r.state == "COMPLETE" and r.feasible]
    vals = {r.number: losses(r.metrics, objectives) for r in pool}
    front = []
    for r in pool:
        v = vals[r.number]
        if any(_dominates(vals[o.number], v) or (vals[o.number] == v and o.number < r.number) for o in pool):
            continue
        front.append(r)
    return sorted(front, key=lambda r: vals[r.number])


def reference(baseline: dict[str, float], objectives: list[Objective]) -> tuple[dict, dict]:
    """(ideal point, reference point) in metric units."""
    ideal, ref = {}, {}
    for o in objectives:
        b = baseline[o.metric]
        if o.direction == "minimize":
            ideal[o.metric], ref[o.metric] = 0.0, 1.1 * b if b > 0 else 1.0
        else:
            ideal[o.metric] = 1.0 if b <= 1.0 else 2.0 * b
            ref[o.metric] = b - 0.1 * (ideal[o.metric] if b > 1.0 else 1.0)
    return ideal, ref


def hypervolume(front: list[TrialResult], objectives: list[Objective], ideal: dict, ref: dict) -> float:
    from optuna._hypervolume import compute_hypervolume

    points = []
    for r in front:
        p = [max(0.0, (r.metrics[o.metric] - ideal[o.metric]) / (ref[o.metric] - ideal[o.metric]))
             for o in objectives]
        if all(x < 1.0 for x in p):
            points.append(p)
    if not points:
        return 0.0
    return float(compute_hypervolume(np.asarray(points), np.ones(len(objectives)), assume_pareto=False))
