"""The tabular benchmark in its smoke form on MNIST-1D: both documented commands run with ``--smoke``
(a 6-recipe space, 2 seeds) and their records show what a reader checks first: the table holds
every recipe of the space once, every recipe the samplers asked for was in it, and the
hypervolume fractions and ask times are sane numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import run_benchmark_smoke

SCRIPT = "benchmarks/tabular.py"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    results = tmp_path_factory.mktemp("tabular")
    build, samplers = run_benchmark_smoke(SCRIPT, results)  # as docs/benchmarks.md shows them: build, samplers
    table = json.loads((results / "tabular_mnist1d_table.json").read_text())
    record = json.loads((results / "tabular_mnist1d_samplers.json").read_text())
    return build, samplers, table, record, results


def space_recipes(space_path: Path, draws: int = 300) -> set[str]:
    """The Optuna params of every recipe ``sample_recipe`` returns in ``draws`` random trials."""
    import optuna

    from orchestrator.pluginmanager import get_host
    from orchestrator.spaces import resolve_space
    from orchestrator.study.sampling import sample_recipe

    catalogue = get_host().catalogue
    space = resolve_space(str(space_path), catalogue, runtime="onnxruntime")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(draws):
        trial = study.ask()
        sample_recipe(trial, space, catalogue)
        seen.add(json.dumps(trial.params, sort_keys=True))
        study.tell(trial, 0.0)
    return seen


def test_both_phases_say_they_are_smoke_runs_and_write_their_records(smoke):
    build, samplers, table, record, _ = smoke
    assert "SMOKE" in build.stdout and "SMOKE" in samplers.stdout
    assert "Warning" not in build.stderr + samplers.stderr
    for r, phase in ((table, "build"), (record, "samplers")):
        assert r["smoke"] is True and f"{SCRIPT} {phase} " in r["command"] and "--smoke" in r["command"]
        assert r["machine"]["cores"] >= 1
    assert "fraction of the true front's hypervolume" in samplers.stdout and "ask time" in samplers.stdout


def test_the_table_has_one_row_per_recipe_of_the_space_and_no_duplicates(smoke):
    _, _, table, _, results = smoke
    keys = [row["key"] for row in table["rows"]]
    assert len(keys) == len(set(keys)) == 6
    assert set(keys) == space_recipes(results / "tabular_space_smoke.yaml")
    for row in table["rows"]:
        assert row["state"] == "COMPLETE", row["error"]
        assert {"accuracy", "accuracy_drop", "size_mb", "latency_ms", "test_accuracy"} <= set(row["metrics"])
        assert json.loads(row["key"]) == row["params"]


def test_every_sampler_ran_its_budget_and_found_every_recipe_in_the_table(smoke):
    _, _, table, record, _ = smoke
    assert record["table_size"] == len(table["rows"]) and record["budgets"][-1] == len(table["rows"])
    assert set(record["samplers"]) == {"tpe", "tpe-no-defaults", "tpe-multivariate", "nsga2", "gp", "random",
                                       "random-no-repeats"}
    for name, s in record["samplers"].items():
        assert s["supported"], s.get("error")
        assert len(s["visited"]) == record["seeds"] == 2
        for visited in s["visited"]:
            assert len(visited) == record["budgets"][-1]
            assert all(0 <= row < len(table["rows"]) for row in visited)
    assert record["samplers"]["tpe"]["defaults_enqueued"] and not record["samplers"]["random"]["defaults_enqueued"]


def test_hypervolume_fractions_lie_in_0_1_and_never_decrease_with_evaluations(smoke):
    record = smoke[3]
    assert record["true_hypervolume"] > 0
    for s in record["samplers"].values():
        for fractions in s["fractions_per_seed"]:
            assert len(fractions) == len(record["budgets"])
            assert all(0.0 <= f <= 1.0 + 1e-9 for f in fractions)
            assert fractions == sorted(fractions)
        for curve in s["curves"]:
            assert 0.0 <= curve["q1"] <= curve["median"] <= curve["q3"] <= 1.0 + 1e-9


def test_a_seed_that_visited_the_whole_true_front_reaches_the_true_hypervolume(smoke):
    record = smoke[3]
    front = {p["row"] for p in record["true_front"]}
    reached = 0
    for s in record["samplers"].values():
        for visited, fractions in zip(s["visited"], s["fractions_per_seed"]):
            if front <= set(visited):
                assert fractions[-1] == pytest.approx(1.0)
                reached += 1
    assert reached  # the default sampler's enqueued defaults include the smoke table's front


def test_ask_times_are_positive_in_memory_and_with_the_journal_storage(smoke):
    asks = smoke[3]["ask_time_ms"]
    for storage in ("in_memory", "journal"):
        assert set(asks[storage]) == {str(p) for p in asks["points"]}
        assert all(ms > 0 for ms in asks[storage].values())


def test_samplers_that_skip_repeats_measure_every_recipe_once_where_plain_random_repeats(smoke):
    _, _, table, record, _ = smoke
    n = len(table["rows"])
    for name, s in record["samplers"].items():
        if s["repeats_skipped"]:
            assert s["distinct_per_seed"] == [n] * record["seeds"], name
    assert min(record["samplers"]["random"]["distinct_per_seed"]) < n  # with these seeds, random draws repeat
