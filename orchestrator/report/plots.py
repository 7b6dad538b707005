"""The PNG plots of report.md, drawn with matplotlib (Agg: no display needed)."""

from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path

from orchestrator.atomic import FILE_MODE
from orchestrator.report.figures import COLOURS, LABELS, LOG_METRICS, TITLES, bounds, plot_axes
from orchestrator.report.view import RunView


def write_plots(view: RunView, folder: Path) -> dict[str, Path]:
    """Write pareto.png, hypervolume.png and curves.png into ``folder``; name -> path of those drawn."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name, draw in (("pareto", _pareto), ("hypervolume", _hypervolume), ("curves", _curves)):
        fig = draw(view, plt)
        if fig is None:
            continue
        path = folder / f"{name}.png"
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".png.tmp")
        os.fchmod(fd, FILE_MODE)
        os.close(fd)
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
        plt.close(fig)
        os.replace(tmp, path)
        out[name] = path
    return out


def _pareto(view: RunView, plt):  # type: ignore[no-untyped-def]
    complete = [r for r in view.results if r.state == "COMPLETE"]
    if not complete:
        return None
    pairs = list(itertools.combinations(plot_axes(view), 2))
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.2 * len(pairs), 4.2), squeeze=False)
    for ax, (x, y) in zip(axes[0], pairs):
        for kind in ("infeasible", "feasible", "pareto"):
            pts = [r for r in complete if view.kind(r) == kind and x in r.metrics and y in r.metrics]
            ax.scatter([r.metrics[x] for r in pts], [r.metrics[y] for r in pts], c=COLOURS[kind],
                       s=40 if kind == "pareto" else 18, label=f"{LABELS[kind]} ({len(pts)})", edgecolors="white",
                       linewidths=0.5, zorder=3 if kind == "pareto" else 2)
        if x in view.baseline and y in view.baseline:
            ax.scatter([view.baseline[x]], [view.baseline[y]], marker="*", s=160, c="black", label="baseline",
                       zorder=4)
        for value, _ in bounds(view, x):
            ax.axvline(value, color="#2ca02c", ls="--", lw=1)
        for value, _ in bounds(view, y):
            ax.axhline(value, color="#2ca02c", ls="--", lw=1)
        ax.set_xlabel(TITLES.get(x, x))
        ax.set_ylabel(TITLES.get(y, y))
        ax.set_xscale("log" if x in LOG_METRICS else "linear")
        ax.set_yscale("log" if y in LOG_METRICS else "linear")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="best")
    fig.suptitle("Every completed trial; dashed: constraints", fontsize=10)
    return fig


def _hypervolume(view: RunView, plt):  # type: ignore[no-untyped-def]
    if not view.history:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.step([p[0] for p in view.history], [p[1] for p in view.history], where="post", color=COLOURS["pareto"])
    ax.set_xlabel("trials finished")
    ax.set_ylabel("hypervolume (normalised)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    return fig


def _curves(view: RunView, plt):  # type: ignore[no-untyped-def]
    trials = [r for r in view.results if r.curve and r.state in ("COMPLETE", "PRUNED")]
    if not trials:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.6))
    seen: set[str] = set()
    for r in trials:
        kind = view.kind(r)
        ax.plot(range(1, len(r.curve) + 1), r.curve, color=COLOURS[kind], ls=":" if kind == "pruned" else "-",
                lw=1.6 if kind == "pareto" else 0.8, alpha=1.0 if kind in ("pareto", "pruned") else 0.5,
                label=LABELS[kind] if kind not in seen else None)
        seen.add(kind)
    for value, label in bounds(view, "accuracy"):
        ax.axhline(value, color="#2ca02c", ls="--", lw=1, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation metric")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
