"""Progress on the terminal: trials done / total, elapsed time, and the best feasible values so far."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orchestrator.config import Objective
from orchestrator.results import TrialResult

UNITS = {"size_mb": " MB", "gzip_mb": " MB", "latency_ms": " ms", "accuracy_drop": " pts"}


def fmt_metric(name: str, value: float) -> str:
    if name in ("params", "macs"):
        return f"{value:,.0f}"
    return f"{value:.4g}{UNITS.get(name, '')}"


class SearchProgress:
    def __init__(self, total: int, objectives: list[Objective], console: Console | None = None,
                 enabled: bool = True) -> None:
        self.objectives = objectives
        self.console = console or Console(stderr=True)
        self._progress = Progress(TextColumn("[bold]search"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TextColumn("{task.fields[best]}"),
                                  console=self.console, disable=not enabled, transient=False)
        self._task = self._progress.add_task("search", total=total, best="no feasible trial yet")

    def __enter__(self) -> "SearchProgress":
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    def advance(self, results: list[TrialResult], done: int) -> None:
        last = results[-1] if results else None
        if last is not None and last.state == "FAIL":
            self._progress.console.print(f"[dim]trial {last.number} failed: {escape(last.error or '')}[/dim]")
        feasible = [r for r in results if r.state == "COMPLETE" and r.feasible]
        best = "no feasible trial yet"
        if feasible:
            parts = []
            for o in self.objectives:
                pick = max if o.direction == "maximize" else min
                parts.append(fmt_metric(o.metric, pick(r.metrics[o.metric] for r in feasible)))
            best = "best feasible: " + " · ".join(parts)
        self._progress.update(self._task, completed=done, best=best)
