"""The head-to-head benchmark against the hand-written anchor grid, in its smoke form: the
documented command runs, and its record shows what a reader would check first (pruning and int8 shrink
the files, the search ran, the hypervolumes are normalised)."""

from __future__ import annotations

import itertools
import json
import math
import re

import pytest

from helpers import run_benchmark_smoke

SCRIPT = "benchmarks/versus_anchor.py"


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """One smoke run per command docs/benchmarks.md shows; (its output, its record) for each, by
    the record's name: the task, or the task and the variant (``mnist1d_no-early-stopping``)."""
    results = tmp_path_factory.mktemp("versus-anchor")
    procs = run_benchmark_smoke(SCRIPT, results)  # as docs/benchmarks.md shows them
    records = {p.stem.removeprefix("versus_anchor_"): p for p in results.glob("versus_anchor_*.json")}
    assert len(records) == len(procs) >= 4
    return procs, records


def test_each_smoke_run_writes_its_record_and_says_it_is_a_smoke_run(smoke_runs):
    procs, records = smoke_runs
    assert set(records) == {"mnist1d", "digits", "tiny-text", "mnist1d_no-early-stopping", "mnist1d_sampler-seed-1",
                            "mnist1d_sampler-seed-2", "digits_sampler-seed-1", "digits_sampler-seed-2"}
    for name, path in records.items():
        record = json.loads(path.read_text())
        assert record["smoke"] is True and name.startswith(record["task"])
        assert "benchmarks/versus_anchor.py" in record["command"] and record["machine"]["cores"] >= 1
        assert record["commit"] is None or re.fullmatch(r"[0-9a-f]{40}(\+changes)?", record["commit"])
    assert all("SMOKE" in p.stdout and "anchor grid" in p.stdout for p in procs)


@pytest.mark.parametrize("task", ["mnist1d", "digits", "tiny-text"])
def test_every_grid_combination_is_measured_with_the_trials_metrics(smoke_runs, task):
    record = json.loads(smoke_runs[1][task].read_text())
    configs = {(p["config"]["ratio"], p["config"]["epochs"], p["config"]["kd"], p["config"]["int8"])
               for p in record["grid"]}
    assert configs == set(itertools.product([0.0, 0.5], [1], [False, True], [False, True]))
    for p in record["grid"]:
        assert {"accuracy", "test_accuracy", "accuracy_drop", "size_mb", "gzip_mb", "latency_ms"} <= set(p["metrics"])
        assert 0.0 <= p["metrics"]["accuracy"] <= 1.0 and p["metrics"]["latency_ms"] > 0


@pytest.mark.parametrize("task", ["mnist1d", "digits", "tiny-text"])
def test_pruning_shrinks_the_grid_files_and_int8_shrinks_convolutions_and_mlps(smoke_runs, task):
    """int8 is not asserted for tiny-text: QDQ nodes around a small transformer's many small
    matmuls can outweigh what the int8 weights save, and the benchmark records that as measured."""
    record = json.loads(smoke_runs[1][task].read_text())
    grid = {tuple(p["config"].values()): p["metrics"] for p in record["grid"]}
    for (ratio, epochs, kd, int8), metrics in grid.items():
        if ratio == 0.5:
            unpruned = grid[(0.0, epochs, kd, int8)]
            assert metrics["params"] < unpruned["params"] and metrics["size_mb"] < unpruned["size_mb"]
        if int8 and task != "tiny-text":
            assert metrics["size_mb"] < grid[(ratio, epochs, kd, False)]["size_mb"]


@pytest.mark.parametrize("task", ["mnist1d", "digits", "tiny-text"])
def test_the_search_ran_and_both_sides_have_a_normalised_hypervolume(smoke_runs, task):
    record = json.loads(smoke_runs[1][task].read_text())
    assert any(t["state"] == "COMPLETE" for t in record["search"]["trials"])
    for side in ("grid", "search_early", "search"):
        hv = record["summary"][side]["hypervolume"]
        assert isinstance(hv, float) and math.isfinite(hv) and 0.0 <= hv <= 1.0
    assert len(record["verdicts"]) == 3 and all(isinstance(v["passed"], bool) for v in record["verdicts"])


def test_the_run_without_early_stopping_replays_the_rules_over_its_curves(smoke_runs):
    record = json.loads(smoke_runs[1]["mnist1d_no-early-stopping"].read_text())
    assert record["settings"]["search"]["early_stopping"]["enabled"] is False
    assert not any(t["state"] == "PRUNED" for t in record["search"]["trials"])  # nothing was stopped
    rows = record["summary"]["early_stopping_replay"]
    assert rows[0]["setting"] == "defaults" and len(rows) > 1
    for row in rows:
        assert 0 <= row["stopped_on_front"] <= row["stopped_feasible"] <= row["stopped"]
        assert 0 <= row["epochs_saved"] <= row["epochs_trained"]


def test_a_run_with_a_sampler_seed_of_its_own_starts_where_the_run_seed_does(smoke_runs):
    """The same grid and enqueued first trials on the same baseline, and the sampler's seed recorded."""
    records = {name: json.loads(smoke_runs[1][name].read_text())
               for name in ("digits", "digits_sampler-seed-1", "digits_sampler-seed-2")}
    default = records["digits"]
    assert default["sampler_seed"] is None and default["settings"]["search"]["sampler"]["seed"] is None
    for n in (1, 2):
        record = records[f"digits_sampler-seed-{n}"]
        assert record["sampler_seed"] == n and record["settings"]["search"]["sampler"]["seed"] == n
        assert record["seed"] == default["seed"]
        assert [p["config"] for p in record["grid"]] == [p["config"] for p in default["grid"]]
        assert record["baseline"]["search"]["accuracy"] == default["baseline"]["search"]["accuracy"]
        # a smoke search's few trials are all enqueued ones: the same recipes with the same seeds
        assert [t["recipe"] for t in record["search"]["trials"]] == [t["recipe"] for t in default["search"]["trials"]]
