"""One run as the reports see it: the config, the baseline, every trial, the front and the run's
history, read from a run directory or handed over by a running driver.

``pareto.json`` is this view written down; every other report file is rendered from it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from orchestrator.config import RunConfig, load_config
from orchestrator.errors import UsageError
from orchestrator.results import TrialResult

PARETO_SCHEMA_VERSION = 1

Kind = Literal["pareto", "feasible", "infeasible", "pruned", "failed"]
KINDS: tuple[Kind, ...] = ("pareto", "feasible", "infeasible", "pruned", "failed")


def ratios(metrics: dict[str, float], baseline: dict[str, float]) -> dict[str, float]:
    """How many times smaller / faster than the baseline."""
    out = {}
    for key, metric in (("smaller", "size_mb"), ("faster", "latency_ms")):
        if metrics.get(metric) and baseline.get(metric):
            out[key] = baseline[metric] / metrics[metric]
    return out


def bound_text(metric: str, bound: Any) -> str:
    parts = []
    if bound.min is not None:
        parts.append(f"≥ {bound.min:g}")
    if bound.max is not None:
        parts.append(f"≤ {bound.max:g}")
    return f"{metric} {' and '.join(parts)}"


@dataclass
class RunView:
    config: RunConfig
    baseline: dict[str, float]
    results: list[TrialResult]
    front: list[TrialResult]
    ideal: dict[str, float]
    reference: dict[str, float]
    hypervolume: float
    #: [n_trials, hypervolume] after each finished trial, across sessions
    history: list[list[float]] = field(default_factory=list)
    wall_time_s: float = 0.0
    environment: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    #: written by a running search (the report refreshes until the run ends)
    in_progress: bool = False
    #: objective metric -> parameter -> importance (fANOVA), filled by the final report
    importance: dict[str, dict[str, float]] = field(default_factory=dict)
    written_at: float = 0.0

    def __post_init__(self) -> None:
        self.results = sorted(self.results, key=lambda r: r.number)

    # -- classification -------------------------------------------------------------------------
    def kind(self, r: TrialResult) -> Kind:
        if r.state == "FAIL":
            return "failed"
        if r.state == "PRUNED":
            return "pruned"
        if any(f.number == r.number for f in self.front):  # the front is a handful of trials
            return "pareto"
        return "feasible" if r.feasible else "infeasible"

    def counted(self) -> list[TrialResult]:
        """Trials that count against the budget (interrupted ones were re-queued)."""
        return [r for r in self.results if not r.interrupted]

    def counts(self) -> dict[str, int]:
        out = {k: 0 for k in KINDS}
        for r in self.counted():
            out[self.kind(r)] += 1
        return out

    def violations(self, r: TrialResult) -> list[str]:
        """Why a complete trial is infeasible, one phrase per violated constraint."""
        out = []
        for metric, violation in r.constraints.items():
            if violation > 0 and metric in self.config.constraints:
                value = r.metrics.get(metric, math.nan)
                out.append(f"{metric} {value:.4g} is outside {bound_text(metric, self.config.constraints[metric])}")
        return out

    def nearest_misses(self, k: int = 5) -> list[TrialResult]:
        """The infeasible complete trials that came closest to every constraint (summed violation)."""
        pool = [r for r in self.results if r.state == "COMPLETE" and not r.feasible]
        return sorted(pool, key=lambda r: sum(max(v, 0.0) for v in r.constraints.values()))[:k]

    def ratios(self, r: TrialResult) -> dict[str, float]:
        return ratios(r.metrics, self.baseline)

    # -- pareto.json ----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "schema_version": PARETO_SCHEMA_VERSION,
            "task": c.task.name,
            "objectives": [o.model_dump() for o in c.objectives],
            "constraints": {m: b.model_dump() for m, b in c.constraints.items()},
            "baseline": self.baseline,
            "ideal_point": self.ideal,
            "reference_point": self.reference,
            "hypervolume": self.hypervolume,
            "hypervolume_history": self.history,
            "n_trials": {s: sum(r.state == s for r in self.results) for s in ("COMPLETE", "PRUNED", "FAIL")},
            "n_feasible": sum(r.feasible for r in self.results),
            "wall_time_s": self.wall_time_s,
            "interrupted": self.interrupted,
            "in_progress": self.in_progress,
            "written_at": self.written_at,
            "environment": self.environment,
            "importance": self.importance,
            "pareto": [{"number": r.number, "description": r.description, "recipe": r.recipe, "metrics": r.metrics,
                        "ratios": self.ratios(r), "artifact": r.artifact} for r in self.front],
        }

    @classmethod
    def from_dir(cls, run_dir: str | Path) -> "RunView":
        """The run as its files record it; the front and its hypervolume are worked out again from
        trials.jsonl, which a killed driver may have written past its last report."""
        from orchestrator.rundir import RunDir
        from orchestrator.study.pareto import hypervolume, pareto_front, reference

        rd = RunDir(run_dir)
        if not rd.pareto_json.is_file():
            raise UsageError(f"{run_dir}: not a run directory with results (no pareto.json)")
        doc = json.loads(rd.pareto_json.read_text())
        config = load_config(rd.config)
        results = rd.read_trials()
        front = pareto_front(results, config.objectives)
        ideal, ref = reference(doc["baseline"], config.objectives)
        ideal, ref = doc.get("ideal_point", ideal), doc.get("reference_point", ref)
        return cls(config=config, baseline=doc["baseline"], results=results, front=front, ideal=ideal,
                   reference=ref, hypervolume=hypervolume(front, config.objectives, ideal, ref),
                   history=doc.get("hypervolume_history", []),
                   wall_time_s=doc.get("wall_time_s", 0.0), environment=doc.get("environment", {}),
                   interrupted=bool(doc.get("interrupted")), in_progress=bool(doc.get("in_progress")),
                   importance=doc.get("importance", {}), written_at=doc.get("written_at", 0.0))
