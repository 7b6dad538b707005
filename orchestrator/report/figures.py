"""The interactive plots of report.html, as plotly figures built from a RunView.

Every string that comes from a config, a plugin or an error goes through :func:`html.escape`
before it reaches a figure: plotly renders a subset of HTML in hover labels and titles, and a
recipe named ``<a href=...>`` must print as text.
"""

from __future__ import annotations

import html
import itertools
import math
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from orchestrator.progress import fmt_metric
from orchestrator.report.view import RunView
from orchestrator.results import TrialResult

COLOURS = {"pareto": "#d62728", "feasible": "#1f77b4", "infeasible": "#b0b0b0", "pruned": "#ff7f0e",
           "failed": "#7f7f7f"}
LABELS = {"pareto": "Pareto front", "feasible": "feasible", "infeasible": "infeasible", "pruned": "stopped early",
          "failed": "failed"}
#: metrics drawn on a log axis: they shrink by factors, not by steps
LOG_METRICS = {"size_mb", "gzip_mb", "latency_ms", "latency_iqr_ms", "params", "macs"}
TITLES = {"accuracy": "accuracy (validation)", "test_accuracy": "accuracy (test)", "accuracy_drop": "accuracy drop (pts)",
          "size_mb": "file size (MB)", "gzip_mb": "gzip size (MB)", "latency_ms": "latency (ms)", "params": "parameters",
          "macs": "MACs"}
LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=40, b=50), font=dict(size=12),
              legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def plot_axes(view: RunView) -> list[str]:
    """The metrics the scatter plots use: the objectives, completed to three with the usual ones."""
    axes = [o.metric for o in view.config.objectives]
    for m in ("accuracy", "size_mb", "latency_ms"):
        if len(axes) < 3 and m not in axes:
            axes.append(m)
    return axes[:3]


def hover(view: RunView, r: TrialResult) -> str:
    rat = view.ratios(r)
    metrics = "<br>".join(f"{m}: {esc(fmt_metric(m, r.metrics[m]))}" for m in
                          ("accuracy", "test_accuracy", "accuracy_drop", "size_mb", "latency_ms") if m in r.metrics)
    extra = [f"{rat['smaller']:.2f}× smaller" if "smaller" in rat else "",
             f"{rat['faster']:.2f}× faster" if "faster" in rat else ""]
    why = view.violations(r)
    lines = [f"<b>trial {r.number}</b> ({LABELS[view.kind(r)]})", "<br>".join(map(esc, wrap(r.description, 60))),
             metrics,
             " · ".join(e for e in extra if e)]
    if why:
        lines.append("infeasible: " + esc("; ".join(why)))
    return "<br>".join(line for line in lines if line)


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of about ``width`` characters, broken between words."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + len(word) > width:
            lines.append(line)
            line = ""
        line = f"{line} {word}".strip()
    return lines + [line]


def bounds(view: RunView, metric: str) -> list[tuple[float, str]]:
    """Constraint bounds that apply to ``metric``'s axis, as (value, label)."""
    out = []
    bound = view.config.constraints.get(metric)
    if bound is not None:
        for value, side in ((bound.min, "min"), (bound.max, "max")):
            if value is not None:
                out.append((value, f"{metric} {side} {value:g}"))
    drop = view.config.constraints.get("accuracy_drop")
    if metric == "accuracy" and drop is not None and drop.max is not None and "accuracy" in view.baseline:
        out.append((view.baseline["accuracy"] - drop.max / 100.0, f"floor: drop ≤ {drop.max:g} pts"))
    return out


def pareto_scatter(view: RunView) -> go.Figure:
    """Pairwise scatter plots of the axes' metrics: every completed trial coloured by kind, the
    baseline as a star, constraint bounds as dashed lines."""
    axes = plot_axes(view)
    pairs = list(itertools.combinations(axes, 2))
    fig = make_subplots(rows=1, cols=len(pairs), horizontal_spacing=0.08)
    complete = [r for r in view.results if r.state == "COMPLETE"]
    for col, (x, y) in enumerate(pairs, start=1):
        for kind in ("infeasible", "feasible", "pareto"):
            pts = [r for r in complete if view.kind(r) == kind and x in r.metrics and y in r.metrics]
            if kind == "pareto":
                pts.sort(key=lambda r: r.metrics[x])
            fig.add_trace(go.Scatter(
                x=[r.metrics[x] for r in pts], y=[r.metrics[y] for r in pts], mode="markers",
                name=f"{LABELS[kind]} ({len(pts)})", legendgroup=kind, showlegend=col == 1,
                marker=dict(color=COLOURS[kind], size=11 if kind == "pareto" else 8,
                            line=dict(width=1, color="white")),
                text=[hover(view, r) for r in pts], hoverinfo="text", customdata=[r.number for r in pts]),
                row=1, col=col)
        if x in view.baseline and y in view.baseline:
            fig.add_trace(go.Scatter(x=[view.baseline[x]], y=[view.baseline[y]], mode="markers", name="baseline",
                                     legendgroup="baseline", showlegend=col == 1,
                                     marker=dict(symbol="star", size=16, color="black"),
                                     hovertext=["baseline"], hoverinfo="text"), row=1, col=col)
        for metric, axis in ((x, "x"), (y, "y")):
            for value, label in bounds(view, metric):
                line = dict(color="#2ca02c", dash="dash", width=1.5)
                if axis == "x":
                    fig.add_vline(x=value, line=line, row=1, col=col, annotation_text=esc(label),
                                  annotation_font_size=10)
                else:
                    fig.add_hline(y=value, line=line, row=1, col=col, annotation_text=esc(label),
                                  annotation_font_size=10)
        fig.update_xaxes(title_text=TITLES.get(x, x), type="log" if x in LOG_METRICS else "linear", row=1, col=col)
        fig.update_yaxes(title_text=TITLES.get(y, y), type="log" if y in LOG_METRICS else "linear", row=1, col=col)
    fig.update_layout(**LAYOUT, height=430)
    return fig


def pareto_3d(view: RunView) -> go.Figure | None:
    axes = plot_axes(view)
    if len(axes) < 3:
        return None
    fig = go.Figure()
    complete = [r for r in view.results if r.state == "COMPLETE" and all(a in r.metrics for a in axes)]
    for kind in ("infeasible", "feasible", "pareto"):
        pts = [r for r in complete if view.kind(r) == kind]
        fig.add_trace(go.Scatter3d(x=[r.metrics[axes[0]] for r in pts], y=[r.metrics[axes[1]] for r in pts],
                                   z=[r.metrics[axes[2]] for r in pts], mode="markers", name=LABELS[kind],
                                   marker=dict(color=COLOURS[kind], size=6 if kind == "pareto" else 4),
                                   text=[hover(view, r) for r in pts], hoverinfo="text"))
    if all(a in view.baseline for a in axes):
        fig.add_trace(go.Scatter3d(x=[view.baseline[axes[0]]], y=[view.baseline[axes[1]]],
                                   z=[view.baseline[axes[2]]], mode="markers", name="baseline",
                                   marker=dict(symbol="diamond", size=7, color="black")))
    scene = {f"{k}axis": dict(title=TITLES.get(a, a), type="log" if a in LOG_METRICS else "linear")
             for k, a in zip("xyz", axes)}
    fig.update_layout(**LAYOUT, height=560, scene=scene)
    return fig


def hypervolume_plot(view: RunView) -> go.Figure:
    xs = [p[0] for p in view.history]
    ys = [p[1] for p in view.history]
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="lines+markers", line_shape="hv", name="hypervolume",
                               marker=dict(size=4), line=dict(color="#d62728")))
    fig.update_layout(**LAYOUT, height=320, showlegend=False)
    fig.update_xaxes(title_text="trials finished")
    fig.update_yaxes(title_text="hypervolume (normalised)", rangemode="tozero")
    return fig


def _param_columns(params: list[dict[str, Any]]) -> list[str]:
    """Flattened parameter names every completed trial has (the stage choices at least)."""
    names = [set(p) for p in params]
    common = set.intersection(*names) if names else set()
    return sorted(common, key=lambda n: (n.count("."), n))


def flat_params(recipe: dict[str, Any]) -> dict[str, Any]:
    """A recipe as {"prune": "channel", "prune.ratio": 0.5, ...}."""
    out: dict[str, Any] = {}
    for stage, choice in recipe.items():
        if isinstance(choice, dict) and "strategy" in choice:
            out[stage] = choice["strategy"]
            for k, v in (choice.get("params") or {}).items():
                if isinstance(v, (int, float, str, bool)):
                    out[f"{stage}.{k}"] = v
    return out


def parallel_coordinates(view: RunView) -> go.Figure | None:
    complete = [r for r in view.results if r.state == "COMPLETE"]
    if len(complete) < 2:
        return None
    params = [flat_params(r.recipe) for r in complete]
    dims = []
    for name in _param_columns(params):
        values = [p[name] for p in params]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            dims.append(dict(label=esc(name), values=values))
        else:
            cats = sorted({str(v) for v in values})
            dims.append(dict(label=esc(name), values=[cats.index(str(v)) for v in values],
                             tickvals=list(range(len(cats))), ticktext=[esc(c) for c in cats]))
    for o in view.config.objectives:
        dims.append(dict(label=esc(TITLES.get(o.metric, o.metric)), values=[r.metrics.get(o.metric, math.nan)
                                                                           for r in complete]))
    order = {"infeasible": 0, "feasible": 1, "pareto": 2}
    colour = [order[view.kind(r)] for r in complete]
    scale = [[0, COLOURS["infeasible"]], [0.5, COLOURS["feasible"]], [1, COLOURS["pareto"]]]
    fig = go.Figure(go.Parcoords(line=dict(color=colour, colorscale=scale, cmin=0, cmax=2), dimensions=dims))
    fig.update_layout(**{**LAYOUT, "margin": dict(l=80, r=80, t=60, b=30)}, height=420)
    return fig


def importance_plot(view: RunView) -> go.Figure | None:
    if not view.importance:
        return None
    fig = go.Figure()
    params = sorted({p for scores in view.importance.values() for p in scores})
    for metric, scores in view.importance.items():
        fig.add_trace(go.Bar(y=[esc(p) for p in params], x=[scores.get(p, 0.0) for p in params], orientation="h",
                             name=esc(TITLES.get(metric, metric))))
    fig.update_layout(**LAYOUT, height=120 + 28 * len(params) * max(1, len(view.importance)) // 2,
                      barmode="group")
    fig.update_xaxes(title_text="importance (fANOVA, sums to 1 per objective)")
    return fig


def curves_plot(view: RunView) -> go.Figure | None:
    with_curve = [r for r in view.results if r.curve and r.state in ("COMPLETE", "PRUNED")]
    if not with_curve:
        return None
    fig = go.Figure()
    shown: set[str] = set()
    for r in with_curve:
        kind = view.kind(r)
        fig.add_trace(go.Scatter(
            x=list(range(1, len(r.curve) + 1)), y=r.curve, mode="lines+markers", legendgroup=kind,
            name=LABELS[kind], showlegend=kind not in shown, marker=dict(size=4),
            line=dict(color=COLOURS[kind], width=2 if kind == "pareto" else 1,
                      dash="dot" if kind == "pruned" else "solid"),
            opacity=1.0 if kind in ("pareto", "pruned") else 0.5,
            hovertext=f"trial {r.number}: {esc(r.description)}" + (f"<br>stopped: {esc(r.error)}"
                                                                   if kind == "pruned" else ""),
            hoverinfo="text"))
        shown.add(kind)
    for value, label in bounds(view, "accuracy"):
        fig.add_hline(y=value, line=dict(color="#2ca02c", dash="dash", width=1.5), annotation_text=esc(label))
    fig.update_layout(**LAYOUT, height=380)
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_yaxes(title_text="validation metric")
    return fig
