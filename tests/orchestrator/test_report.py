"""The reports a run leaves: report.html (offline, escaped), report.md with its PNGs, the per-layer
view, refreshing during a run, and ``orchestrator report``."""

from __future__ import annotations

import html
import json

import pytest
import yaml

import orchestrator
from helpers import HOSTILE, MixedPlugin, RecordingPlugin, quick_config
from orchestrator.cli.app import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _mixed_run(out, n_trials=8, **overrides):
    """A run with every kind of trial: complete, infeasible, failed and stopped early (see MixedPlugin)."""
    from orchestrator.pluginmanager import PluginHost

    space = out.parent / "mixed-space.yaml"
    space.write_text(yaml.safe_dump({"stages": {"prune": {"none": {}}, "train": {"mixed": {}},
                                                "quantize": {"none": {}, "dynamic-int8": {}}}}))
    config = quick_config(search_space=str(space), budget={"n_trials": n_trials}, execution={"executor": "local"},
                          sampler={"name": "random"}, **overrides)
    return orchestrator.search(config, out=out, progress=False, host=PluginHost(extra_plugins=[("mixed", MixedPlugin())]))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    return _mixed_run(tmp_path_factory.mktemp("report") / "run")


@pytest.fixture(scope="module")
def hopeless(tmp_path_factory):
    """A run where no trial can be feasible: the accuracy must rise 50 points above the baseline."""
    out = tmp_path_factory.mktemp("hopeless") / "run"
    return orchestrator.search(quick_config(budget={"n_trials": 3}, execution={"executor": "local"},
                                            constraints={"accuracy_drop": {"max": -50.0}}), out=out, progress=False)


def test_a_mixed_run_has_every_kind_of_trial(mixed):
    states = {(t.state, t.feasible) for t in mixed.trials}
    assert {("COMPLETE", True), ("COMPLETE", False), ("FAIL", False), ("PRUNED", False)} <= states


def test_report_html_states_the_facts_and_why_trials_fell_short(mixed):
    page = (mixed.run_dir / "report.html").read_text()
    doc = json.loads((mixed.run_dir / "pareto.json").read_text())
    env = doc["environment"]
    for lib in ("torch", "optuna", "ray", "onnxruntime"):
        assert f"{lib} {env['versions'][lib]}" in page
    assert env["machine"]["cpu"] and env["machine"]["cores"] >= 1 and html.escape(env["machine"]["cpu"]) in page
    assert "digits" in page and "accuracy_drop ≤ 5" in page and "random" in page
    infeasible = [t for t in mixed.trials if t.state == "COMPLETE" and not t.feasible]
    assert f"Infeasible trials ({len(infeasible)})" in page
    assert "is outside accuracy_drop ≤ 5" in page  # the reason, not only the verdict
    failed = [t for t in mixed.trials if t.state == "FAIL"]
    assert f"Failed trials ({len(failed)})" in page and html.escape(f"RuntimeError: {HOSTILE}") in page
    assert f"Stopped early ({sum(t.state == 'PRUNED' for t in mixed.trials)})" in page
    for div in ("pareto-scatter", "pareto-3d", "hypervolume", "parallel", "curves", "pareto-table"):
        assert f'id="{div}"' in page


def test_a_failed_trial_names_the_strategy_its_plugin_and_the_line(mixed):
    failed = [t for t in mixed.trials if t.state == "FAIL"]
    assert failed and all(t.error.startswith(f"RuntimeError: {HOSTILE}") for t in failed)
    assert all(t.error.endswith(")") and "(in distiller 'mixed' of plugin 'mixed', helpers.py line " in t.error
               for t in failed)


def test_what_strategies_log_is_kept_with_the_trial_and_shown_escaped(mixed):
    for trial in mixed.trials:
        assert trial.notes == [f"mixed: mode {trial.recipe['seed'] % 4} {HOSTILE}"]
    page = (mixed.run_dir / "report.html").read_text()
    assert html.escape(f"mixed: mode 1 {HOSTILE}") in page  # beside a failed trial's error


def test_report_html_is_self_contained(mixed):
    """plotly.js is embedded once; nothing else the page holds points outside it (the browser test
    checks that no request is made at all)."""
    import plotly.offline

    page = (mixed.run_dir / "report.html").read_text()
    plotly_js = plotly.offline.get_plotlyjs()
    assert page.count(plotly_js) == 1
    ours = page.replace(plotly_js, "").replace("&lt;img src=x", "").lower()  # HOSTILE, escaped
    for remote in ("src=", "href=", "http://", "https://", "@import", "url("):
        assert remote not in ours, remote


def test_hostile_strings_are_escaped_everywhere(mixed):
    page = (mixed.run_dir / "report.html").read_text()
    assert HOSTILE not in page and "<img" not in page and "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")
    assert html.escape(HOSTILE) in page
    md = (mixed.run_dir / "report.md").read_text()
    assert "RuntimeError" in md and "<img" not in md and "<script" not in md and "&lt;img src=x" in md


def test_each_pareto_trial_has_a_per_layer_view(mixed):
    page = (mixed.run_dir / "report.html").read_text()
    for trial in mixed.pareto:
        assert trial.layers, f"trial {trial.number} recorded no layers"
        assert f"trial {trial.number}: " in page
        names = {layer["name"] for layer in trial.layers}
        assert all(html.escape(n) in page for n in names)
        quantized = trial.recipe["quantize"]["strategy"] == "dynamic-int8"
        precisions = {layer["precision"] for layer in trial.layers}
        assert ("int8" in precisions) == quantized, precisions


def test_report_md_shows_the_front_with_png_plots(mixed):
    md = (mixed.run_dir / "report.md").read_text()
    assert "| baseline |" in md and "![Pareto front](plots/pareto.png)" in md
    for name in ("pareto", "hypervolume", "curves"):
        png = mixed.run_dir / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
    assert all(f"| {t.number} |" in md for t in mixed.pareto)


def test_a_run_where_nothing_is_feasible_says_so_and_shows_the_nearest_misses(hopeless):
    assert not hopeless.pareto
    page = (hopeless.run_dir / "report.html").read_text()
    md = (hopeless.run_dir / "report.md").read_text()
    assert "No trial met every constraint" in page and "No trial met every constraint" in md
    complete = [t for t in hopeless.trials if t.state == "COMPLETE"]
    assert complete
    for trial in complete:
        assert f"- trial {trial.number} " in md
    assert "is outside accuracy_drop ≤ -50" in page and "nearest misses" in page


def test_the_report_is_refreshed_while_the_search_runs(tmp_path):
    seen = []

    class Watcher(RecordingPlugin):
        @RecordingPlugin._hookimpl
        def orchestrator_trial_end(self, result):
            doc = tmp_path / "run" / "pareto.json"
            if doc.is_file():
                data = json.loads(doc.read_text())
                seen.append((result.number, data["in_progress"], sum(data["n_trials"].values()),
                             (tmp_path / "run" / "report.html").is_file()))

    from orchestrator.pluginmanager import PluginHost

    config = quick_config(budget={"n_trials": 3}, execution={"executor": "local"}, report={"refresh_s": 0})
    orchestrator.search(config, out=tmp_path / "run", progress=False,
                        host=PluginHost(extra_plugins=[("watcher", Watcher())]))
    # when the 2nd and 3rd trials end, the report of the trials before them is already there
    assert [(n, live, count, page) for n, live, count, page in seen] == [(1, True, 1, True), (2, True, 2, True)]
    final = json.loads((tmp_path / "run" / "pareto.json").read_text())
    assert final["in_progress"] is False and sum(final["n_trials"].values()) == 3


def test_the_next_trial_is_handed_out_before_the_report_is_redrawn(tmp_path):
    """A redraw takes a while on a long run; the workers must not wait for it."""
    from orchestrator import hookimpl
    from orchestrator.pluginmanager import PluginHost

    reported_at_start = {}

    class Watcher:
        @hookimpl
        def orchestrator_trial_start(self, number, recipe):
            doc = tmp_path / "run" / "pareto.json"
            reported_at_start[number] = sum(json.loads(doc.read_text())["n_trials"].values()) if doc.is_file() else 0

    config = quick_config(budget={"n_trials": 4}, execution={"executor": "local"}, report={"refresh_s": 0})
    orchestrator.search(config, out=tmp_path / "run", progress=False,
                        host=PluginHost(extra_plugins=[("watcher", Watcher())]))
    # trial n starts when n trials are recorded, before the report that shows them is drawn
    assert reported_at_start == {0: 0, 1: 0, 2: 1, 3: 2}


def test_orchestrator_report_rewrites_the_reports_with_parameter_importance(mixed, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(mixed.run_dir, run)
    for name in ("report.html", "report.md", "plots/pareto.png"):
        (run / name).unlink()
    doc = json.loads((run / "pareto.json").read_text())
    doc["in_progress"] = True  # as a driver killed mid-run leaves it
    (run / "pareto.json").write_text(json.dumps(doc))
    assert main(["report", str(run)]) == 0
    assert "report.html" in capsys.readouterr().out
    page = (run / "report.html").read_text()
    assert (run / "plots" / "pareto.png").is_file() and "The run was interrupted" in page
    again = json.loads((run / "pareto.json").read_text())
    assert again["in_progress"] is False and again["interrupted"] is True
    assert set(again["importance"]) == {"accuracy", "size_mb", "latency_ms"}
    assert 'id="importance"' in page


def test_orchestrator_report_refuses_a_directory_without_results(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ERROR:") and "no pareto.json" in err and "\n" not in err


CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update", "--use-angle=swiftshader",
                  "--enable-unsafe-swiftshader"]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's, which .ci/run installs), driven by Playwright; no browser is downloaded."""
    import os
    import shutil

    path = os.environ.get("ORCHESTRATOR_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("ORCHESTRATOR_REQUIRE_BROWSER"):
            pytest.fail("ORCHESTRATOR_REQUIRE_BROWSER is set but no chromium is installed")
        pytest.skip("no chromium on this machine (apt install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def _red_pixels(png: bytes) -> int:
    """Pixels of the Pareto colour (#d62728) in a screenshot."""
    import io

    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return int(((abs(r - 214) < 30) & (g < 80) & (b < 80)).sum())


def test_report_html_renders_in_a_browser_offline_without_errors(mixed, browser):
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    problems, requests, dialogs = [], [], []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    url = (mixed.run_dir / "report.html").resolve().as_uri()
    page.goto(url)
    page.wait_for_function("document.querySelectorAll('#pareto-scatter .point').length > 0", timeout=20000)
    page.wait_for_timeout(500)
    assert problems == [] and dialogs == []
    assert requests == [url], "the report made a network request"
    # hostile strings are text, never elements
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert HOSTILE in page.inner_text("body")
    # the Pareto plots are drawn: every trial a point, the front in its colour (SVG and WebGL)
    complete = sum(t.state == "COMPLETE" for t in mixed.trials)
    points = page.evaluate("document.querySelectorAll('#pareto-scatter .scatterlayer .point').length")
    assert points >= 3 * complete  # three pairwise plots (the baseline's star adds one each)
    assert _red_pixels(page.locator("#pareto-scatter").screenshot()) > 100
    page.locator("#pareto-3d").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    assert _red_pixels(page.locator("#pareto-3d").screenshot()) > 30, "the 3-D view drew no Pareto point"
    page.close()


def test_the_pareto_table_sorts_by_a_click(mixed, browser, tmp_path):
    from orchestrator.report.html import render_html
    from orchestrator.report.view import RunView

    view = RunView.from_dir(mixed.run_dir)
    view.front = [t for t in view.results if t.state == "COMPLETE"]  # a longer table than this run's front
    (tmp_path / "report.html").write_text(render_html(view))
    page = browser.new_page()
    page.goto((tmp_path / "report.html").as_uri())
    column = ["trial", "accuracy", "test_accuracy", "accuracy_drop", "size_mb"].index("size_mb")
    read = (f"Array.from(document.querySelectorAll('#pareto-table tbody tr'))"
            f".map(r => parseFloat(r.cells[{column}].dataset.v))")
    page.locator("#pareto-table th", has_text="size_mb").click()
    values = page.evaluate(read)
    assert values == sorted(values) and len(values) == len(view.front) and len(set(values)) > 1
    page.locator("#pareto-table th", has_text="size_mb").click()
    assert page.evaluate(read) == sorted(values, reverse=True)
    page.close()
