"""A recipe is measured once: a repeated proposal is set aside and redrawn at random."""

from __future__ import annotations

import json

import optuna
import pytest
import yaml
from optuna.trial import TrialState

import orchestrator
from helpers import quick_config
from orchestrator.spaces import resolve_space
from orchestrator.study.driver import counted
from orchestrator.study.repeats import MAX_REDRAWS, REPEAT, ask_recipe
from orchestrator.study.sampling import recipe_params

optuna.logging.set_verbosity(optuna.logging.WARNING)

#: 2 x 2 = 4 recipes
FOUR = {"stages": {"prune": {"none": {}}, "train": {"none": {"epochs": [0, 1], "lr": 0.003}},
                   "quantize": {"none": {}, "fp16": {}}}}
ONE = {"stages": {"prune": {"none": {}}, "train": {"none": {"epochs": [0], "lr": 0.003}}, "quantize": {"none": {}}}}


def _space(tmp_path, data, host):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    return resolve_space(str(path), host.catalogue)


@pytest.fixture
def four(tmp_path, host):
    return _space(tmp_path, FOUR, host)


def _first(study, space, host, state=TrialState.COMPLETE):
    """Ask one trial and end it in ``state``; its params."""
    trial, _ = ask_recipe(study, space, host.catalogue, seed=0)
    if state == TrialState.COMPLETE:
        study.tell(trial, [0.9, 1.0])
    elif state != TrialState.RUNNING:
        study.tell(trial, state=state)
    return trial.params


def _study():
    return optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))


@pytest.mark.parametrize("state", [TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING])
def test_a_recipe_measured_or_running_is_set_aside_and_redrawn(state, four, host):
    study = _study()
    params = _first(study, four, host, state)
    study.enqueue_trial(params)
    trial, recipe = ask_recipe(study, four, host.catalogue, seed=0)
    assert trial.params != params and recipe_params(recipe, four, host.catalogue) == trial.params
    repeat = study.trials[1]
    assert repeat.state == TrialState.FAIL and repeat.user_attrs[REPEAT] == 0 and not counted(repeat)


@pytest.mark.parametrize("interrupted", [False, True])
def test_a_failed_or_interrupted_recipe_may_run_again(interrupted, four, host):
    study = _study()
    first, _ = ask_recipe(study, four, host.catalogue, seed=0)
    if interrupted:  # as the driver marks a trial it cut short, then re-queues it
        first.set_user_attr("interrupted", True)
    study.tell(first, state=TrialState.FAIL)
    params = first.params
    study.enqueue_trial(params)
    trial, _ = ask_recipe(study, four, host.catalogue, seed=0)
    assert trial.params == params and len(study.trials) == 2


def test_repeats_run_when_skipping_them_is_off(four, host):
    study = _study()
    params = _first(study, four, host)
    study.enqueue_trial(params)
    trial, _ = ask_recipe(study, four, host.catalogue, seed=0, skip_repeats=False)
    assert trial.params == params and len(study.trials) == 2


def test_an_exhausted_space_runs_the_repeat_after_the_last_redraw(tmp_path, host):
    one = _space(tmp_path, ONE, host)
    study = _study()
    params = _first(study, one, host)
    trial, _ = ask_recipe(study, one, host.catalogue, seed=0)
    assert trial.params == params and trial.number == 1 + MAX_REDRAWS
    assert sum(REPEAT in t.user_attrs for t in study.trials) == MAX_REDRAWS


def test_a_run_measures_each_recipe_once_and_repeats_do_not_count(tmp_path):
    """Four recipes, four trials: with this seed, plain random draws would measure only two of them."""
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(FOUR))
    config = quick_config(search_space=str(space), budget={"n_trials": 4}, sampler={"name": "random"},
                          seed=2, execution={"executor": "local"})
    result = orchestrator.search(config, out=tmp_path / "run", progress=False)
    described = [t.description for t in result.trials]
    assert len(described) == 4 and len(set(described)) == 4, described
    doc = json.loads((tmp_path / "run" / "pareto.json").read_text())
    assert sum(doc["n_trials"].values()) == 4
    lines = (tmp_path / "run" / "trials.jsonl").read_text().splitlines()
    assert len(lines) == 4
