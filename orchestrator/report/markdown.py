"""report.md: the run's summary for a code host: the facts, the front as a table, PNG plots,
and why trials were infeasible or failed."""

from __future__ import annotations

import html

from orchestrator.progress import fmt_metric
from orchestrator.report.view import RunView, bound_text
from orchestrator.results import TrialResult

COLUMNS = ("accuracy", "test_accuracy", "accuracy_drop", "size_mb", "gzip_mb", "latency_ms", "params", "macs")


def _cell(text: str) -> str:
    """Text from configs, plugins and errors, safe in a Markdown table or list: no markup survives."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


def _row(name: str, metrics: dict[str, float], ratios: dict[str, float], desc: str) -> str:
    cells = [name, *(fmt_metric(c, metrics[c]) if c in metrics else "" for c in COLUMNS),
             f"{ratios.get('smaller', 0):.2f}", f"{ratios.get('faster', 0):.2f}", _cell(desc)]
    return "| " + " | ".join(cells) + " |"


def _list(trials: list[TrialResult], why) -> list[str]:  # type: ignore[no-untyped-def]
    return [f"- trial {r.number} ({_cell(r.description)}): {_cell(why(r))}" for r in trials]


def render_markdown(view: RunView, plots: dict[str, str]) -> str:
    c = view.config
    counts = view.counts()
    constraints = "; ".join(bound_text(m, b) for m, b in c.constraints.items()) or "none"
    lines = [f"# Compression search: {_cell(c.task.name)}", ""]
    if view.in_progress:
        lines += [f"*The search is running: {len(view.counted())} of {c.budget.n_trials} trials so far.*", ""]
    elif view.interrupted:
        lines += ["*The run was interrupted; `orchestrator resume DIR` continues it.*", ""]
    lines += [
        f"- Objectives: {', '.join(f'{o.direction} {o.metric}' for o in c.objectives)}",
        f"- Constraints: {constraints}",
        f"- Search space: {_cell(c.search_space)}; sampler {c.sampler.name}, seed {c.seed}",
        f"- Trials: {len(view.counted())} ({counts['pareto']} on the front, {counts['feasible']} other feasible, "
        f"{counts['infeasible']} infeasible, {counts['pruned']} stopped early, {counts['failed']} failed)",
        f"- Latency: {c.latency.runtime}, batch {c.latency.batch_size}, {c.latency.threads} thread(s), "
        f"median of {c.latency.sessions} sessions × {c.latency.repeats} runs",
        f"- Hypervolume (normalised, reference from the baseline): {view.hypervolume:.4f}",
        f"- Wall time: {view.wall_time_s / 60:.1f} min", "",
        "The interactive version of this report, with every trial, is `report.html`.", "",
        "## Pareto front (feasible trials)", "",
    ]
    if "pareto" in plots:
        lines += [f"![Pareto front]({plots['pareto']})", ""]
    header = ["trial", *COLUMNS, "× smaller", "× faster", "recipe"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.append(_row("baseline", view.baseline, {"smaller": 1.0, "faster": 1.0}, ""))
    lines += [_row(str(r.number), r.metrics, view.ratios(r), r.description) for r in view.front]
    if not view.front:
        misses = view.nearest_misses()
        lines += ["", "**No trial met every constraint.**" + (" The nearest misses:" if misses else "")]
        lines += _list(misses, lambda r: "; ".join(view.violations(r)))
    for key, title in (("hypervolume", "Hypervolume"), ("curves", "Training curves")):
        if key in plots:
            lines += ["", f"## {title}", "", f"![{title}]({plots[key]})"]
    infeasible = [r for r in view.results if r.state == "COMPLETE" and not r.feasible]
    for title, trials, why in (
            ("Infeasible trials", infeasible, lambda r: "; ".join(view.violations(r))),
            ("Stopped early", [r for r in view.results if r.state == "PRUNED"], lambda r: r.error or ""),
            ("Failed trials", [r for r in view.results if r.state == "FAIL"], lambda r: r.error or "")):
        if trials:
            lines += ["", f"## {title} ({len(trials)})", ""] + _list(trials, why)
    return "\n".join(lines) + "\n"
