"""Rich tables of a run's results."""

from __future__ import annotations

from rich import box
from rich.table import Table

from orchestrator.api import SearchResult
from orchestrator.report.view import ratios

#: (header, metric, format)
COLUMNS = (("acc", "accuracy", "{:.4f}"), ("test", "test_accuracy", "{:.4f}"), ("drop", "accuracy_drop", "{:+.2f}"),
           ("MB", "size_mb", "{:.3g}"),
           ("ms", "latency_ms", "{:.3g}"))


def pareto_table(result: SearchResult) -> Table:
    n = len(result.trials)
    feasible = sum(t.feasible for t in result.trials)
    table = Table(title=f"Pareto front: {len(result.pareto)} of {n} trials ({feasible} feasible)", pad_edge=False,
                  box=box.SIMPLE_HEAD)
    table.add_column("trial", justify="right", no_wrap=True)
    for header, _, _ in COLUMNS:
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("×small", justify="right", no_wrap=True)
    table.add_column("×fast", justify="right", no_wrap=True)
    table.add_column("recipe", overflow="fold", ratio=1)
    rows = [("base", result.baseline, "baseline")] + [(str(t.number), t.metrics, t.description) for t in result.pareto]
    for name, metrics, desc in rows:
        r = ratios(metrics, result.baseline)
        table.add_row(name, *(fmt.format(metrics[m]) if m in metrics else "" for _, m, fmt in COLUMNS),
                      f"{r.get('smaller', 0):.2f}", f"{r.get('faster', 0):.2f}", desc,
                      style="dim" if name == "base" else None)
    if not result.pareto:
        table.caption = "No trial met every constraint; see trials.jsonl for the closest misses."
    return table
