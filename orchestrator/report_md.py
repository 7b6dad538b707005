"""A short Markdown summary of a run: the facts, the baseline and the Pareto front as a table."""

from __future__ import annotations

from orchestrator.config import RunConfig
from orchestrator.progress import fmt_metric
from orchestrator.results import TrialResult

COLUMNS = ("accuracy", "test_accuracy", "accuracy_drop", "size_mb", "gzip_mb", "latency_ms", "params", "macs")


def ratios(metrics: dict[str, float], baseline: dict[str, float]) -> dict[str, float]:
    """How many times smaller / faster than the baseline."""
    out = {}
    for key, metric in (("smaller", "size_mb"), ("faster", "latency_ms")):
        if metrics.get(metric) and baseline.get(metric):
            out[key] = baseline[metric] / metrics[metric]
    return out


def render_markdown(config: RunConfig, baseline: dict[str, float], front: list[TrialResult],
                    results: list[TrialResult], hv: float) -> str:
    counts = {s: sum(r.state == s for r in results) for s in ("COMPLETE", "PRUNED", "FAIL")}
    feasible = sum(r.feasible for r in results)
    constraints = ", ".join(
        f"{m} {'≥ ' + str(b.min) if b.min is not None else ''}{' ' if b.min is not None and b.max is not None else ''}"
        f"{'≤ ' + str(b.max) if b.max is not None else ''}" for m, b in config.constraints.items()) or "none"
    lines = [
        f"# Compression search: {config.task.name}", "",
        f"- Objectives: {', '.join(f'{o.direction} {o.metric}' for o in config.objectives)}",
        f"- Constraints: {constraints}",
        f"- Search space: {config.search_space}; sampler {config.sampler.name}, seed {config.seed}",
        f"- Trials: {len(results)} ({counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed); "
        f"{feasible} feasible",
        f"- Latency: {config.latency.runtime}, batch {config.latency.batch_size}, {config.latency.threads} thread(s), "
        f"median of {config.latency.repeats}",
        f"- Hypervolume (normalised, reference from the baseline): {hv:.4f}", "",
        "## Pareto front (feasible trials)", "",
    ]
    header = ["trial", *COLUMNS, "× smaller", "× faster", "recipe"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows = [("baseline", baseline, "")] + [(str(r.number), r.metrics, r.description) for r in front]
    for name, metrics, desc in rows:
        r = ratios(metrics, baseline)
        cells = [name, *(fmt_metric(c, metrics[c]) if c in metrics else "" for c in COLUMNS),
                 f"{r.get('smaller', 0):.2f}", f"{r.get('faster', 0):.2f}", desc.replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    if not front:
        lines += ["", "No trial met every constraint. The closest misses are in `trials.jsonl`."]
    failed = [r for r in results if r.state == "FAIL"]
    if failed:
        lines += ["", "## Failed trials", ""] + [f"- trial {r.number}: {r.error}" for r in failed]
    return "\n".join(lines) + "\n"
