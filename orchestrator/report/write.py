"""Writing every report file of a run directory from one RunView, each file atomically."""

from __future__ import annotations

import time
from typing import Callable

from orchestrator.atomic import atomic_write_json, atomic_write_text
from orchestrator.report.view import RunView
from orchestrator.rundir import RunDir


def write_reports(rd: RunDir, view: RunView, log: Callable[[str], None] | None = None) -> None:
    """pareto.json, trials.csv, pareto.csv, report.md with its PNG plots, and report.html.

    pareto.json and the tables come first: a report that cannot be drawn (a broken plotting
    library, say) is logged and never costs the run its results.
    """
    from orchestrator.report.tables_csv import render_csv

    view.written_at = time.time()
    atomic_write_json(rd.pareto_json, view.to_json())
    atomic_write_text(rd.trials_csv, render_csv(view.results, view.baseline))
    atomic_write_text(rd.pareto_csv, render_csv(view.front, view.baseline))
    for name, write in (("report.md", _write_markdown), ("report.html", _write_html)):
        try:
            write(rd, view)
        except Exception as exc:  # noqa: BLE001 - the results above are what matters
            if log is None:
                raise
            log(f"{name} could not be written: {type(exc).__name__}: {exc}")


def _write_markdown(rd: RunDir, view: RunView) -> None:
    from orchestrator.report.markdown import render_markdown
    from orchestrator.report.plots import write_plots

    plots = write_plots(view, rd.plots)
    atomic_write_text(rd.report_md, render_markdown(view, {k: rd.relative(p) for k, p in plots.items()}))


def _write_html(rd: RunDir, view: RunView) -> None:
    from orchestrator.report.html import render_html

    atomic_write_text(rd.report_html, render_html(view))
