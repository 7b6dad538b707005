"""report.html: one self-contained page that works offline.

plotly.js is embedded once (no CDN, no MathJax, no fonts fetched); each figure is a div and a
script holding its JSON, which plotly escapes so no string can close the script. All text from a
config, a plugin or an error is escaped with :func:`html.escape`; the page has no external
request of any kind.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from orchestrator.progress import fmt_metric
from orchestrator.report.figures import (COLOURS, LABELS, curves_plot, esc, hypervolume_plot, importance_plot,
                                         parallel_coordinates, pareto_3d, pareto_scatter)
from orchestrator.report.view import RunView, bound_text
from orchestrator.results import TrialResult

TABLE_METRICS = ("accuracy", "test_accuracy", "accuracy_drop", "size_mb", "gzip_mb", "latency_ms", "params", "macs")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1280px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:1.6em;margin:.4em 0 .2em} h2{font-size:1.25em;margin:1.6em 0 .5em;border-bottom:1px solid #ddd;
padding-bottom:.2em} h3{font-size:1.05em;margin:1em 0 .3em}
.banner{padding:.6em 1em;border-radius:6px;margin:.6em 0} .live{background:#fff4d6;border:1px solid #f0c36d}
.stop{background:#fde2e1;border:1px solid #f2a19b} .ok{background:#e3f4e1;border:1px solid #9fd49a}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:.8em 0} .card{background:#fff;border:1px solid #ddd;
border-radius:8px;padding:10px 14px;min-width:200px;flex:1} .card b{font-size:1.35em;display:block}
.card small{color:#666} td.recipe{min-width:16em}
table{border-collapse:collapse;background:#fff;font-size:.88em;margin:.4em 0} th,td{border:1px solid #e2e2e2;
padding:4px 8px;text-align:left;vertical-align:top} th{background:#f2f2f2} td.n{text-align:right;
font-variant-numeric:tabular-nums;white-space:nowrap} table.sortable th{cursor:pointer;user-select:none}
table.sortable th:after{content:" \\2195";color:#aaa} .facts td:first-child{font-weight:600;white-space:nowrap}
.bar{background:#e8e8e8;width:120px;height:10px;display:inline-block;vertical-align:middle;margin-right:6px}
.bar i{background:#1f77b4;height:10px;display:block} .dot{display:inline-block;width:10px;height:10px;
border-radius:50%;margin-right:4px} details{background:#fff;border:1px solid #ddd;border-radius:6px;
padding:6px 10px;margin:6px 0} summary{cursor:pointer} .plot{background:#fff;border:1px solid #ddd;
border-radius:6px;margin:.4em 0} .muted{color:#666} code{background:#f0f0f0;padding:0 3px;border-radius:3px}
"""

SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function(table){
  table.querySelectorAll('th').forEach(function(th, col){
    th.addEventListener('click', function(){
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
      rows.sort(function(a, b){
        var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
        return asc ? c : -c;
      });
      rows.forEach(function(r){ body.appendChild(r); });
    });
  });
});
"""

PLOT_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "png", "scale": 2}}


def _figure(fig: Any, div_id: str) -> str:
    if fig is None:
        return '<p class="muted">Not enough finished trials for this plot yet.</p>'
    return ('<div class="plot">' + fig.to_html(full_html=False, include_plotlyjs=False, include_mathjax=False,
                                               div_id=div_id, config=PLOT_CONFIG) + "</div>")


def _num(metric: str, value: float | None) -> str:
    if value is None:
        return '<td class="n" data-v=""></td>'
    return f'<td class="n" data-v="{value:.10g}">{esc(fmt_metric(metric, value))}</td>'


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "unknown"


def _duration(seconds: float) -> str:
    minutes, s = divmod(int(round(seconds)), 60)
    h, m = divmod(minutes, 60)
    return f"{h} h {m} min {s} s" if h else f"{m} min {s} s"


def _point(point: dict[str, float]) -> str:
    return "(" + ", ".join(f"{m} {v:.4g}" for m, v in point.items()) + ")"


def _facts(view: RunView) -> str:
    c = view.config
    env = view.environment or {}
    versions = env.get("versions", {})
    machine = env.get("machine", {})
    counts = view.counts()
    sampler = c.sampler.name + (f", {c.sampler.n_startup_trials} random start-up trials" if c.sampler.name == "tpe"
                                else f", population {c.sampler.population_size}" if c.sampler.name == "nsga2" else "")
    lat = c.latency
    rows = [
        ("Task", c.task.name + (f" {json.dumps(c.task.params)}" if c.task.params else "")),
        ("Baseline", ", ".join(f"{m} {fmt_metric(m, view.baseline[m])}" for m in
                               ("accuracy", "test_accuracy", "size_mb", "latency_ms", "params") if m in view.baseline)),
        ("Objectives", ", ".join(f"{o.direction} {o.metric}" for o in c.objectives)),
        ("Constraints", "; ".join(bound_text(m, b) for m, b in c.constraints.items()) or "none"),
        ("Search space", c.search_space),
        ("Sampler", f"{sampler}; seed {c.seed}"),
        ("Budget", f"{c.budget.n_trials} trials" + (f", {c.budget.timeout:g} s" if c.budget.timeout else "")),
        ("Trials", f"{len(view.counted())} finished: {counts['pareto']} on the front, {counts['feasible']} other "
                   f"feasible, {counts['infeasible']} infeasible, {counts['pruned']} stopped early, "
                   f"{counts['failed']} failed"),
        ("Execution", f"{c.execution.executor} executor" + (f", {c.execution.workers} workers" if c.execution.workers
                                                            else "") + f", {c.execution.cpus_per_trial:g} CPU per trial"),
        ("Latency", f"{lat.runtime}, batch {lat.batch_size}, {lat.threads} thread(s), median of {lat.sessions} "
                    f"sessions × {lat.repeats} runs"),
        ("Hypervolume", f"{view.hypervolume:.4f} (objectives normalised between the ideal point "
                        f"{_point(view.ideal)} and the reference point {_point(view.reference)}, derived from "
                        "the baseline)"),
        ("Wall time", _duration(view.wall_time_s) + ("" if not view.in_progress else " so far")),
        ("Versions", ", ".join(f"{k} {v}" for k, v in versions.items()) or "not recorded"),
        ("Machine", f"{machine.get('cpu', 'unknown')}, {machine.get('cores', '?')} cores "
                    f"({machine.get('usable_cores', '?')} usable), {machine.get('platform', '')}"
         if machine else "not recorded"),
        ("Written", _when(view.written_at)),
    ]
    body = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="facts">{body}</table>'


def _banner(view: RunView) -> str:
    n = len(view.counted())
    if view.in_progress:
        return (f'<div class="banner live">The search is running: {n} of {view.config.budget.n_trials} trials '
                f"finished at {esc(_when(view.written_at))}. This page is rewritten as trials finish and reloads "
                "itself every 30 s.</div>")
    if view.interrupted:
        return (f'<div class="banner stop">The run was interrupted after {n} of {view.config.budget.n_trials} '
                "trials; <code>orchestrator resume DIR</code> continues it.</div>")
    return ""


def _cards(view: RunView) -> str:
    if not view.front:
        return ""
    cards = []
    picks = [("Most accurate", max(view.front, key=lambda r: r.metrics.get("accuracy", 0.0)))]
    for label, metric in (("Smallest", "size_mb"), ("Fastest", "latency_ms")):
        if all(metric in r.metrics for r in view.front):
            picks.append((label, min(view.front, key=lambda r: r.metrics[metric])))
    for label, r in picks:
        rat = view.ratios(r)
        drop = r.metrics.get("accuracy_drop")
        cards.append(f'<div class="card"><small>{label} on the front</small><b>trial {r.number}</b>'
                     f"{rat.get('smaller', 0):.2f}× smaller · {rat.get('faster', 0):.2f}× faster"
                     + (f" · {drop:+.2f} pts" if drop is not None else "")
                     + f'<br><small>{esc(r.description)}</small></div>')
    return '<div class="cards">' + "".join(cards) + "</div>"


def _pareto_table(view: RunView) -> str:
    head = ["trial", *TABLE_METRICS, "× smaller", "× faster", "recipe"]
    rows = []
    for r in view.front:
        rat = view.ratios(r)
        cells = [f'<td class="n" data-v="{r.number}">{r.number}</td>']
        cells += [_num(m, r.metrics.get(m)) for m in TABLE_METRICS]
        cells += [_num("ratio", rat.get("smaller")), _num("ratio", rat.get("faster"))]
        cells.append(f'<td class="recipe" data-v="{esc(r.description)}">{esc(r.description)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    base = "".join([f"<td>baseline</td>"] + [_num(m, view.baseline.get(m)) for m in TABLE_METRICS]
                   + ["<td class='n'>1.00</td>", "<td class='n'>1.00</td>", "<td></td>"])
    return (f'<table class="sortable" id="pareto-table"><thead><tr>{"".join(f"<th>{esc(h)}</th>" for h in head)}'
            f'</tr></thead><tbody>{"".join(rows)}</tbody><tfoot><tr class="muted">{base}</tr></tfoot></table>')


def _layers(view: RunView) -> str:
    parts = []
    for r in view.front:
        if not r.layers:
            parts.append(f"<details><summary>trial {r.number}: no per-layer record (written by an older version)"
                         "</summary></details>")
            continue
        kept = sum(l["params"] for l in r.layers)
        base = sum(l.get("base_params", l["params"]) for l in r.layers)
        weights = sum(math.prod(l["shape"]) for l in r.layers)
        zeros = sum(math.prod(l["shape"]) * l["sparsity"] for l in r.layers)
        zero_note = f", {100 * zeros / weights:.0f}% of the weights zero" if zeros >= 0.005 * weights else ""
        rows = []
        for layer in r.layers:
            width = layer.get("width_kept")
            bar = (f'<span class="bar"><i style="width:{100 * min(width, 1.0):.0f}%"></i></span>{100 * width:.0f}%'
                   if width is not None else "new")
            shape = "×".join(map(str, layer["shape"]))
            b_shape = "×".join(map(str, layer.get("base_shape", []))) or "—"
            params_kept = (f"{100 * layer['params'] / layer['base_params']:.0f}%" if layer.get("base_params") else "")
            rows.append(f"<tr><td>{esc(layer['name'])}</td><td>{esc(layer['kind'])}</td><td>{esc(b_shape)} → "
                        f"{esc(shape)}</td><td>{bar}</td><td class='n'>{esc(params_kept)}</td>"
                        f"<td class='n'>{100 * layer['sparsity']:.0f}%</td><td>{esc(layer['precision'])}</td></tr>")
        parts.append(
            f"<details><summary>trial {r.number}: {esc(r.description)}: {kept:,} of {base:,} weights kept "
            f"({100 * kept / max(base, 1):.0f}%){zero_note}</summary><table><thead><tr><th>layer</th><th>type</th>"
            "<th>shape (baseline → now)</th><th>width kept</th><th>weights kept</th><th>zeros</th>"
            f"<th>shipped as</th></tr></thead><tbody>{''.join(rows)}</tbody></table>{_notes(r)}</details>")
    return "".join(parts) or '<p class="muted">No Pareto trial yet.</p>'


def _notes(r: TrialResult) -> str:
    """What the trial's strategies logged, as a list (nothing when they logged nothing)."""
    if not r.notes:
        return ""
    return "<ul class='muted'>" + "".join(f"<li>{esc(n)}</li>" for n in r.notes) + "</ul>"


def _trial_list(view: RunView, trials: list[TrialResult], why: Any, head: str) -> str:
    if not trials:
        return '<p class="muted">None.</p>'
    rows = "".join(f"<tr><td class='n' data-v='{r.number}'>{r.number}</td><td data-v='{esc(r.description)}'>"
                   f"{esc(r.description)}</td><td data-v='{esc(why(r))}'>{esc(why(r))}{_notes(r)}</td></tr>"
                   for r in trials)
    return (f'<table class="sortable"><thead><tr><th>trial</th><th>recipe</th><th>{esc(head)}</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def _nothing_feasible(view: RunView) -> str:
    misses = view.nearest_misses()
    text = ("No trial met every constraint. " + ("The nearest misses, by how far they are outside the bounds:"
                                                  if misses else "No trial completed."))
    return f'<div class="banner stop"><b>{esc(text)}</b></div>' + (
        _trial_list(view, misses, lambda r: "; ".join(view.violations(r)), "outside the constraints")
        if misses else "")


def _legend() -> str:
    return " ".join(f'<span class="dot" style="background:{COLOURS[k]}"></span>{LABELS[k]}' for k in COLOURS)


def render_html(view: RunView) -> str:
    import plotly.offline

    c = view.config
    infeasible = [r for r in view.results if r.state == "COMPLETE" and not r.feasible]
    pruned = [r for r in view.results if r.state == "PRUNED"]
    failed = [r for r in view.results if r.state == "FAIL"]
    title = f"Compression search: {c.task.name}"
    refresh = '<meta http-equiv="refresh" content="30">' if view.in_progress else ""
    sections = [
        f"<h1>{esc(title)}</h1>", _banner(view), _cards(view),
        "<h2>The run</h2>", _facts(view),
        "<h2>Pareto front</h2>",
        (_nothing_feasible(view) if not view.front else
         f"<p>{len(view.front)} trials are not beaten on every objective by any other feasible trial. "
         f"Hover a point for its recipe. {_legend()}; the star is the baseline, dashed lines are the "
         "constraints.</p>"),
        _figure(pareto_scatter(view), "pareto-scatter"),
        "<h3>The same trials in 3-D</h3>", _figure(pareto_3d(view), "pareto-3d"),
        "<h3>Pareto trials</h3><p class='muted'>Click a column to sort. Ratios are against the baseline; "
        "<code>orchestrator export DIR --trial N --to PATH</code> takes a trial away.</p>",
        _pareto_table(view) if view.front else "<p class='muted'>None yet.</p>",
        "<h3>Where each Pareto trial kept its weights</h3>", _layers(view),
        "<h2>Search progress</h2><h3>Hypervolume</h3>", _figure(hypervolume_plot(view), "hypervolume"),
        "<h3>Choices and outcomes</h3>", _figure(parallel_coordinates(view), "parallel"),
        "<h3>Parameter importance</h3>",
        _figure(importance_plot(view), "importance") if view.importance else
        f"<p class='muted'>{'Computed when the run ends.' if view.in_progress else 'Not computed for this run.'}</p>",
        "<h3>Training curves</h3>", _figure(curves_plot(view), "curves"),
        f"<h2>Infeasible trials ({len(infeasible)})</h2>",
        _trial_list(view, infeasible, lambda r: "; ".join(view.violations(r)), "outside the constraints"),
        f"<h2>Stopped early ({len(pruned)})</h2>", _trial_list(view, pruned, lambda r: r.error or "", "why"),
        f"<h2>Failed trials ({len(failed)})</h2>", _trial_list(view, failed, lambda r: r.error or "", "error"),
    ]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{refresh}'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
            f"<style>{CSS}</style><script>{plotly.offline.get_plotlyjs()}</script></head>"
            f'<body><main>{"".join(sections)}</main><script>{SORT_JS}</script></body></html>\n')
