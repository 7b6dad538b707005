"""End-to-end searches on the small digits task through the Python API."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
import yaml

import orchestrator
from orchestrator.errors import UsageError
from orchestrator.export import load_runner
from orchestrator.recipe import Recipe

from helpers import RecordingPlugin, quick_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One 5-trial search shared by the read-only tests below; no warnings may be raised."""
    out = tmp_path_factory.mktemp("run")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = orchestrator.search(quick_config(budget={"n_trials": 5}), out=out, progress=False)
    return result, out, caught


def test_search_prints_no_deprecation_warnings(run):
    _, _, caught = run
    bad = [w for w in caught if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning))]
    assert not bad, [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in bad]


def test_run_directory_holds_the_documented_files(run):
    result, out, _ = run
    for name in ("config.yaml", "study.log", "trials.jsonl", "pareto.json", "report.md"):
        assert (out / name).is_file(), name
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["sampler"]["name"] == "tpe" and config["latency"]["runtime"] == "onnxruntime"  # defaults filled in
    lines = (out / "trials.jsonl").read_text().splitlines()
    assert len(lines) == 5
    first = json.loads(lines[0])
    assert {"number", "state", "recipe", "metrics", "error"} <= set(first)
    assert not list(out.rglob("*.tmp"))


def test_baseline_and_single_technique_recipes_run_first(run):
    result, _, _ = run
    assert Recipe.model_validate(result.trials[0].recipe).describe() == "baseline"
    assert result.trials[0].metrics["accuracy_drop"] == pytest.approx(0.0, abs=1e-9)
    words = [t.description for t in result.trials[1:4]]
    assert any(w.startswith("channel") and "fine-tune" in w for w in words)
    assert any("kd" in w for w in words)


def test_pareto_json_lists_only_feasible_nondominated_trials(run):
    result, out, _ = run
    pareto = json.loads((out / "pareto.json").read_text())
    assert pareto["schema_version"] == 1
    assert [o["metric"] for o in pareto["objectives"]] == ["accuracy", "size_mb", "latency_ms"]
    assert pareto["constraints"] == {"accuracy_drop": {"min": None, "max": 5.0}}
    numbers = [p["number"] for p in pareto["pareto"]]
    assert numbers and numbers == [t.number for t in result.pareto]
    by_number = {t.number: t for t in result.trials}
    for n in numbers:
        assert by_number[n].feasible and by_number[n].metrics["accuracy_drop"] <= 5.0
    history = [hv for _, hv in pareto["hypervolume_history"]]
    assert len(history) == 5 and history == sorted(history)  # a front only ever improves
    assert 0.0 <= pareto["hypervolume"] == history[-1] <= 1.0
    assert pareto["baseline"]["size_mb"] > 0


def test_only_pareto_trials_keep_artifacts_with_recipe_and_metrics(run):
    result, out, _ = run
    kept = sorted(p.name for p in (out / "artifacts").iterdir())
    assert kept == sorted(f"trial-{t.number}" for t in result.pareto)
    for t in result.pareto:
        folder = out / "artifacts" / f"trial-{t.number}"
        assert (folder / "model.onnx").is_file()
        assert Recipe.load(folder / "recipe.yaml") == Recipe.model_validate(t.recipe)
        assert json.loads((folder / "metrics.json").read_text()) == t.metrics


def test_recorded_metrics_are_those_of_the_shipped_file(run, digits_task, digits_data):
    result, out, _ = run
    for t in result.pareto:
        path = result.artifact(t.number)
        assert t.metrics["size_mb"] == pytest.approx(path.stat().st_size / 1e6)
        run = load_runner(path)
        assert digits_task.metric(run(digits_data.val[0]), digits_data.val[1]) == pytest.approx(t.metrics["accuracy"])
        assert digits_task.metric(run(digits_data.test[0]), digits_data.test[1]) == pytest.approx(
            t.metrics["test_accuracy"])


def test_a_recipe_replays_to_the_same_accuracy_and_size(run, tmp_path):
    from orchestrator.context import TrialContext
    from orchestrator.pipeline import run_recipe

    result, out, _ = run
    t = result.pareto[-1]
    recipe = result.recipe(t.number)
    teacher = _teacher_of(result)
    ctx = TrialContext(task=teacher[0], data=teacher[1], teacher=teacher[2], seed=recipe.seed, workdir=tmp_path)
    torch.manual_seed(recipe.seed)
    again = run_recipe(recipe, ctx, _catalogue(), result.config.latency, result.baseline["accuracy"])
    assert again.metrics["accuracy"] == pytest.approx(t.metrics["accuracy"])
    assert again.metrics["size_mb"] == pytest.approx(t.metrics["size_mb"], rel=0.01)


def _catalogue():
    from orchestrator.pluginmanager import get_host

    return get_host().catalogue


def _teacher_of(result):
    from orchestrator.baseline import prepare_baseline
    from orchestrator.tasks import resolve_task

    task = resolve_task(result.config.task, _catalogue())
    data = task.load_data(result.config.seed)
    return task, data, prepare_baseline(task, data, result.config.seed, log=lambda m: None).model


def test_open_reads_a_finished_run_and_exports_a_trial(run, tmp_path):
    result, out, _ = run
    again = orchestrator.SearchResult.open(out)
    assert [t.number for t in again.pareto] == [t.number for t in result.pareto]
    n = result.pareto[0].number
    path = again.export(n, tmp_path / "deploy")
    assert path.name == "model.onnx" and (tmp_path / "deploy" / "recipe.yaml").is_file()
    predict = again.load(n)
    assert predict(torch.zeros(3, 1, 8, 8)).shape == (3, 10)


def test_rerunning_the_directory_continues_the_study(tmp_path):
    out = tmp_path / "run"
    first = orchestrator.search(quick_config(budget={"n_trials": 2}), out=out, progress=False)
    second = orchestrator.search(quick_config(budget={"n_trials": 4}), out=out, progress=False)
    assert [t.number for t in second.trials] == [0, 1, 2, 3]
    assert [(t.recipe, t.metrics) for t in second.trials[:2]] == [(t.recipe, t.metrics) for t in first.trials]


def test_a_different_config_on_the_same_directory_is_refused(tmp_path):
    out = tmp_path / "run"
    orchestrator.search(quick_config(budget={"n_trials": 1}), out=out, progress=False)
    with pytest.raises(UsageError, match="different config"):
        orchestrator.search(quick_config(budget={"n_trials": 1}, seed=3), out=out, progress=False)


def enqueued_in_quick() -> int:
    """How many recipes the driver enqueues before sampling, on the quick space, in a run without
    constraints (with one, the chain's ladder adds rungs as its first ones are measured)."""
    from orchestrator.pluginmanager import get_host
    from orchestrator.spaces import resolve_space
    from orchestrator.study.sampling import default_recipes

    catalogue = get_host().catalogue
    return len(default_recipes(resolve_space("quick", catalogue), catalogue))


def test_seeded_runs_sample_the_same_recipes(tmp_path):
    # random search: which recipes come next does not depend on measured latencies, which vary
    n = enqueued_in_quick() + 3  # three sampled after the enqueued ones
    config = quick_config(budget={"n_trials": n}, sampler={"name": "random"}, constraints={})
    a = orchestrator.search(config, out=tmp_path / "a", progress=False)
    b = orchestrator.search(config, out=tmp_path / "b", progress=False)
    assert [t.recipe for t in a.trials] == [t.recipe for t in b.trials]
    assert len({json.dumps(t.recipe, sort_keys=True) for t in a.trials}) == n


def test_the_chain_climbs_towards_the_accuracy_floor_once_its_rungs_are_measured(tmp_path):
    import optuna

    from orchestrator.study.ladder import LADDER

    k = enqueued_in_quick()
    config = quick_config(budget={"n_trials": k + 2}, sampler={"name": "random"}, execution={"workers": 1})
    result = orchestrator.search(config, out=tmp_path / "run", progress=False)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
        str(tmp_path / "run" / "study.log")))
    marks = {t.number: t.user_attrs.get(LADDER) for t in optuna.load_study(study_name="orchestrator",
                                                                            storage=storage).trials}

    def recipe(trial):
        return Recipe.model_validate({key: v for key, v in trial.recipe.items() if key != "seed"})

    def ratio(trial):
        return trial.recipe["prune"]["params"]["ratio"]

    rungs = [t for t in result.trials if marks[t.number] == 0]
    assert [ratio(t) for t in rungs] == pytest.approx([0.5, 0.35, 0.55])
    added = [t for t in result.trials if marks[t.number]]
    assert [t.number for t in added] == list(range(k, k + len(added))) and added  # right after them
    # each added rung goes where the rungs measured before it point: stronger while the floor
    # (5 points) holds, between the strongest that held and the lightest that broke it, lighter
    # when every one broke it
    for trial in added:
        chain, rung = recipe(rungs[0]), recipe(trial)
        assert (rung.score, rung.quantize, rung.train.strategy) == (chain.score, chain.quantize, chain.train.strategy)
        assert rung.prune.model_copy(update={"params": {**rung.prune.params, "ratio": 0.5}}) == chain.prune
        kept = [ratio(t) for t in rungs if t.metrics["accuracy_drop"] <= 5.0]
        broke = [ratio(t) for t in rungs if t.metrics["accuracy_drop"] > 5.0]
        if not kept:
            assert ratio(trial) < min(broke)
        elif [b for b in broke if b > max(kept)]:
            assert max(kept) < ratio(trial) < min(b for b in broke if b > max(kept))
        else:
            assert ratio(trial) > max(kept)
        # and a model no rung before it made (a ratio that prunes to the same widths is passed over)
        assert trial.metrics["params"] not in [t.metrics["params"] for t in rungs]
        rungs.append(trial)
        # enqueued like the defaults, it trains to the end: one point on its curve per epoch
        assert len(trial.curve) == trial.recipe["train"]["params"]["epochs"]


def test_impossible_constraints_give_an_empty_front_said_plainly(tmp_path):
    config = quick_config(budget={"n_trials": 2}, constraints={"size_mb": {"max": 1e-6}})
    result = orchestrator.search(config, out=tmp_path / "run", progress=False)
    assert result.pareto == []
    assert all(not t.feasible for t in result.trials)
    assert "No trial met every constraint" in (tmp_path / "run" / "report.md").read_text()
    assert json.loads((tmp_path / "run" / "pareto.json").read_text())["pareto"] == []


def test_a_failing_strategy_fails_its_trial_only_and_hooks_see_everything(tmp_path):
    from orchestrator import hookimpl
    from orchestrator.pluginmanager import PluginHost
    from orchestrator.strategies import Scorer

    class ExplodingScorer(Scorer):
        name = "exploding"

        def score(self, model, ctx, params):
            raise RuntimeError("scorer blew up")

    class Plugin:
        @hookimpl
        def orchestrator_register_scorers(self, register):
            register(ExplodingScorer())

    recorder = RecordingPlugin()
    host = PluginHost(extra_plugins=[("exploding-plugin", Plugin()), ("recorder", recorder)])
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"stages": {"score": {"exploding": {}}, "prune": {"channel": {}},
                                                "train": {"none": {"epochs": [0, 1]}}}}))
    result = orchestrator.search(quick_config(search_space=str(space), budget={"n_trials": 3}), out=tmp_path / "run",
                                 progress=False, host=host)
    assert len(result.trials) == 3
    assert all(t.state == "FAIL" and "scorer blew up" in t.error for t in result.trials)
    assert all("(in scorer 'exploding' of plugin 'exploding-plugin'" in t.error for t in result.trials)
    kinds = [c[0] for c in recorder.calls]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert kinds.count("trial_start") == kinds.count("trial_end") == 3


def test_a_user_task_named_by_import_path(tmp_path):
    config = quick_config(task={"name": "helpers:make_blob_task", "params": {"hidden": 16}}, budget={"n_trials": 3})
    result = orchestrator.search(config, out=tmp_path / "run", progress=False)
    assert result.baseline["accuracy"] > 0.9
    assert all(t.state == "COMPLETE" for t in result.trials)
    pruned = [t for t in result.trials if t.description.startswith("channel")]
    assert pruned and pruned[0].metrics["params"] < result.baseline["params"]


def test_the_torch_runtime_ships_torch_export_programs(tmp_path):
    config = quick_config(latency={"runtime": "torch", "batch_size": 32, "repeats": 3, "warmup": 1},
                          budget={"n_trials": 2})
    result = orchestrator.search(config, out=tmp_path / "run", progress=False)
    assert all(t.state == "COMPLETE" for t in result.trials)
    assert all("static-int8" not in t.description for t in result.trials)
    assert result.artifact(result.pareto[0].number).suffix == ".pt2"


def test_strategies_inapplicable_to_the_model_are_left_out_of_the_search(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"stages": {"score": {"bn-scale": {}, "magnitude": {}},
                                                "prune": {"none": {}, "channel": {}},
                                                "train": {"none": {"epochs": [0, 1]}}}}))
    messages = []
    config = quick_config(task={"name": "helpers:make_blob_task"}, search_space=str(space), budget={"n_trials": 6},
                          sampler={"name": "random"})
    result = orchestrator.search(config, out=tmp_path / "run", progress=False, log=messages.append)
    assert all(t.state == "COMPLETE" for t in result.trials)  # the MLP has no BatchNorm: bn-scale never ran
    assert not any(t.recipe["score"]["strategy"] == "bn-scale" for t in result.trials)
    assert any("scorer 'bn-scale'" in m and "BatchNorm" in m for m in messages)


def test_a_resumed_run_samples_new_recipes_rather_than_replaying_old_ones(tmp_path):
    out = tmp_path / "run"
    k = enqueued_in_quick()
    config = quick_config(budget={"n_trials": k + 2}, sampler={"name": "random"}, constraints={})
    first = orchestrator.search(config, out=out, progress=False)
    second = orchestrator.search(dict(config, budget={"n_trials": k + 4}), out=out, progress=False)

    def recipes(trials):
        return [{k: v for k, v in t.recipe.items() if k != "seed"} for t in trials]

    assert len(second.trials) == k + 4
    # trials k, k+1 were the first session's first sampled ones (0 to k-1 are enqueued); a replayed
    # random stream would hand the second session exactly those again
    assert recipes(second.trials[k + 2:k + 4]) != recipes(first.trials[k:k + 2])


def test_a_sampler_seed_of_its_own_proposes_other_recipes_from_the_same_start(tmp_path):
    k = enqueued_in_quick()
    config = quick_config(budget={"n_trials": k + 3}, sampler={"name": "random"}, constraints={})
    first = orchestrator.search(config, out=tmp_path / "a", progress=False)
    other = orchestrator.search(dict(config, sampler={"name": "random", "seed": 7}), out=tmp_path / "b",
                                progress=False)
    same = orchestrator.search(dict(config, sampler={"name": "random", "seed": 0}), out=tmp_path / "c",
                               progress=False)

    def recipes(trials):
        return [t.recipe for t in trials]

    # the enqueued first trials and every trial's seed follow the run's seed: they train alike
    assert recipes(other.trials[:k]) == recipes(first.trials[:k])
    assert [t.recipe["seed"] for t in other.trials] == [t.recipe["seed"] for t in first.trials]
    assert other.baseline["size_mb"] == first.baseline["size_mb"]
    # the sampled ones follow the sampler's seed, which defaults to the run's
    assert recipes(other.trials[k:]) != recipes(first.trials[k:])
    assert recipes(same.trials) == recipes(first.trials)


def test_a_changed_search_space_on_resume_is_refused(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"stages": {"train": {"none": {"epochs": [0, 1]}}}}))
    out = tmp_path / "run"
    orchestrator.search(quick_config(search_space=str(space), budget={"n_trials": 1}), out=out, progress=False)
    space.write_text(yaml.safe_dump({"stages": {"train": {"none": {"epochs": [0, 2]}}}}))
    with pytest.raises(UsageError, match="changed since"):
        orchestrator.search(quick_config(search_space=str(space), budget={"n_trials": 2}), out=out, progress=False)


def test_an_observer_plugin_that_raises_does_not_stop_the_run(tmp_path):
    from orchestrator import hookimpl
    from orchestrator.pluginmanager import PluginHost

    class Broken:
        @hookimpl
        def orchestrator_trial_end(self, result):
            raise RuntimeError("dashboard is down")

    host = PluginHost(extra_plugins=[("broken-observer", Broken())])
    with pytest.warns(RuntimeWarning, match="broken-observer.*dashboard is down"):
        result = orchestrator.search(quick_config(budget={"n_trials": 2}), out=tmp_path / "run", progress=False,
                                     host=host)
    assert len(result.trials) == 2
