"""``trials.csv`` and ``pareto.csv``: the run as spreadsheets, one row per trial.

Columns: the trial's number, state, feasibility, the ×smaller / ×faster ratios against the
baseline, every metric (in the order of orchestrator.metric_names), the recipe in words, the
error, whether it was interrupted, its duration and where it ran. A metric a trial lacks is an
empty cell.
"""

from __future__ import annotations

import csv
import io

from orchestrator.metric_names import METRICS
from orchestrator.report.view import ratios
from orchestrator.results import TrialResult

HEAD = ["number", "state", "feasible", "smaller", "faster"]
TAIL = ["description", "error", "interrupted", "duration_s", "node"]


def render_csv(results: list[TrialResult], baseline: dict[str, float]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEAD + list(METRICS) + TAIL)
    for r in results:
        ratio = ratios(r.metrics, baseline) if r.state == "COMPLETE" else {}
        writer.writerow([r.number, r.state, r.feasible, _num(ratio.get("smaller")), _num(ratio.get("faster"))]
                        + [_num(r.metrics.get(m)) for m in METRICS]
                        + [r.description, r.error or "", r.interrupted, f"{r.duration_s:.3f}", r.node or ""])
    return out.getvalue()


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))
