"""Early stopping (the curve rules) and the pre-training constraint checks."""

from __future__ import annotations

import pytest
import yaml

import orchestrator
from helpers import HOPELESS, FaultPlugin, quick_config
from orchestrator.config import EarlyStoppingConfig, load_config
from orchestrator.study.early_stopping import CurveBoard, accuracy_floor


def board(floor=None, completed=(), **rule) -> CurveBoard:
    """The rules' logic from epoch 1 (the defaults' grace and margin are tuned by a benchmark)."""
    rule = {"min_trials": 2, "grace_epochs": 1, "floor_margin": 0.01, **rule}
    return CurveBoard(EarlyStoppingConfig(**rule), floor, [list(c) for c in completed])


def test_floor_rule_stops_a_curve_no_completed_trial_could_lift_over_the_floor():
    b = board(floor=0.9, completed=[[0.80, 0.95], [0.85, 0.97]], median_margin=None)
    assert b.report(7, 1, 0.70) is not None  # best later gain 0.15: 0.85 < 0.89
    reason = b.report(8, 1, 0.80)  # 0.80 + 0.15 = 0.95 can still make it
    assert reason is None
    assert "accuracy floor 0.9000" in b.report(9, 1, 0.5)


def test_floor_rule_learns_only_from_curves_that_went_on_after_the_epoch():
    # both references ended at epoch 1: they say nothing about what a longer schedule gains later
    assert board(floor=0.9, completed=[[0.95], [0.96]], median_margin=None).report(1, 1, 0.5) is None


def test_a_trial_far_behind_but_climbing_steeply_is_left_to_train():
    """A heavily pruned model starts far below the lightly pruned ones, whose curves gained little
    after epoch 2; it climbs steeply instead. Judged by their gains it would be stopped; its own
    pace, kept up for the epochs they trained after this one, reaches the floor, so it goes on."""
    light = [[0.95, 0.97, 0.975, 0.978, 0.98, 0.98]] * 3
    b = board(floor=0.97, completed=light, median_margin=0.1)
    b.report(1, 1, 0.30)
    assert b.report(1, 2, 0.60) is None  # +0.30 an epoch, 4 epochs left: both rules wait
    b.report(2, 1, 0.59)
    reason = b.report(2, 2, 0.60)  # as far behind, but flat: hopeless
    assert reason is not None and "own pace is +0.0100" in reason
    b.report(3, 1, 0.70)
    assert b.report(3, 2, 0.60) is not None  # falling
    # without a floor the median rule asks the same of the pace: catching up with the median
    b = board(completed=light, median_margin=0.1)
    b.report(4, 1, 0.50)
    assert b.report(4, 2, 0.70) is None
    b.report(5, 1, 0.69)
    assert "below the median 0.9700" in b.report(5, 2, 0.70)


def test_one_noisy_epoch_does_not_end_a_trial():
    """The rules judge a trial by the better of its last two epochs: a dip is not a collapse."""
    b = board(floor=0.97, completed=[[0.95, 0.97, 0.98, 0.98]] * 3, median_margin=0.1)
    b.report(1, 1, 0.975)
    assert b.report(1, 2, 0.80) is None  # fell 0.175 at epoch 2, was at the floor at epoch 1
    assert b.report(1, 3, 0.78) is not None  # and stayed down: a collapse


def test_median_rule_stops_only_a_trial_far_behind():
    b = board(completed=[[0.90, 0.95], [0.92, 0.96], [0.94, 0.97]], median_margin=0.1)
    assert b.report(1, 1, 0.85) is None  # behind, but within the margin: may be a small, useful model
    assert "median 0.9200" in b.report(2, 1, 0.80)
    assert board(completed=[[0.9], [0.9]], median_margin=None).report(3, 1, 0.1) is None
    # far behind, but above the accuracy floor: it may be a small model that belongs on the front
    assert board(floor=0.8, completed=[[0.95], [0.95]], median_margin=0.1).report(4, 1, 0.84) is None


def test_no_rule_applies_during_the_grace_epochs_or_without_enough_completed_curves():
    completed = [[0.9, 0.9, 0.9]] * 3
    assert board(completed=completed, grace_epochs=2).report(1, 1, 0.0) is None
    assert board(completed=completed[:1]).report(1, 1, 0.0) is None  # min_trials is 2
    assert board(completed=completed, enabled=False).report(1, 1, 0.0) is None
    assert board(completed=[[0.9]] * 3).report(1, 2, 0.0) is None  # no completed curve reached epoch 2


def test_only_completed_curves_become_references():
    b = board(completed=[[0.9], [0.9]])
    b.report(5, 1, 0.2)
    assert b.finish(5, completed=False) == [0.2]
    b.report(6, 1, 0.95)
    b.finish(6, completed=True)
    assert b.completed == [[0.9], [0.9], [0.95]]


def test_accuracy_floor_comes_from_the_constraints():
    config = load_config(quick_config(constraints={"accuracy_drop": {"max": 2.0}, "accuracy": {"min": 0.5}}))
    assert accuracy_floor(config, 0.99) == pytest.approx(0.97)
    assert accuracy_floor(load_config(quick_config(constraints={})), 0.99) is None


def test_a_planted_hopeless_recipe_is_stopped_and_good_ones_finish(tmp_path):
    from orchestrator.pluginmanager import PluginHost

    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"stages": {"prune": {"none": {}}, "train": {"planted": {"epochs": [8]}},
                                                "quantize": {"none": {}}}}))
    config = quick_config(search_space=str(space), budget={"n_trials": 5}, early_stopping={"min_trials": 2},
                          execution={"workers": 2})
    result = orchestrator.search(config, out=tmp_path / "run", progress=False,
                                 host=PluginHost(extra_plugins=[("faults", FaultPlugin())]))
    for trial in result.trials:
        if trial.number in HOPELESS:
            assert trial.state == "PRUNED" and trial.error.startswith("early-stopped at epoch"), trial.curve
            assert 1 <= len(trial.curve) < 8  # stopped early, its curve kept
            assert "cannot reach the accuracy floor" in trial.error
        else:
            assert trial.state == "COMPLETE" and len(trial.curve) == 8
    assert [t.number for t in result.trials if t.state == "PRUNED"] == sorted(HOPELESS)


def test_an_enqueued_default_recipe_trains_to_the_end_even_when_hopeless(tmp_path):
    """The enqueued defaults are the answers a practitioner would try by hand: early stopping leaves
    them be. Trial 3 here is an enqueued default (the lighter chain) that the planted distiller
    sabotages; as a sampled trial it is stopped (the test above), as a default it completes."""
    from orchestrator.pluginmanager import PluginHost

    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"stages": {"score": {"magnitude": {}}, "prune": {"none": {}, "channel": {}},
                                                "train": {"planted": {"epochs": [8]}},
                                                "quantize": {"none": {}, "static-int8": {}}}}))
    config = quick_config(search_space=str(space), budget={"n_trials": 4}, early_stopping={"min_trials": 2},
                          execution={"workers": 2})
    result = orchestrator.search(config, out=tmp_path / "run", progress=False,
                                 host=PluginHost(extra_plugins=[("faults", FaultPlugin())]))
    hopeless = next(t for t in result.trials if t.number in HOPELESS)
    assert hopeless.description.startswith("channel 28% round 4 by magnitude")  # the lighter chain
    assert hopeless.state == "COMPLETE" and len(hopeless.curve) == 8
    assert not hopeless.feasible  # trained on shuffled labels to the end: far below the floor
    assert [t.state for t in result.trials] == ["COMPLETE"] * 4


def test_a_recipe_that_cannot_fit_the_size_constraint_is_never_trained(tmp_path):
    # the digits baseline is ~0.1 MB: no recipe of the quick space fits in 1 kB
    result = orchestrator.search(quick_config(constraints={"size_mb": {"max": 0.001}}, budget={"n_trials": 4}),
                                 out=tmp_path / "run", progress=False)
    assert [t.state for t in result.trials] == ["PRUNED"] * 4
    assert all(t.error.startswith("pre-check: the file would hold at least") and t.curve == []
               for t in result.trials)
    assert result.baseline["size_mb"] > 0.001  # the baseline itself is measured whatever the bound


def test_a_params_constraint_is_checked_after_pruning_before_training(tmp_path):
    result = orchestrator.search(quick_config(constraints={"params": {"max": 10}}, budget={"n_trials": 3}),
                                 out=tmp_path / "run", progress=False)
    assert all(t.state == "PRUNED" and "parameters after pruning" in t.error for t in result.trials)


@pytest.mark.parametrize("quantizer", ["none", "fp16", "static-int8", "dynamic-int8"])
def test_the_size_lower_bound_never_exceeds_the_real_file(make_ctx, host, quantizer):
    """The pre-check may only reject what truly cannot fit: its bound is at most the shipped size."""
    from orchestrator.metrics.size import MB, artifact_sizes
    from orchestrator.pipeline import compress
    from orchestrator.precheck import weights_in_use
    from orchestrator.recipe import Recipe

    digits_ctx = make_ctx()
    recipe = Recipe.model_validate({"prune": {"strategy": "none"}, "quantize": {"strategy": quantizer}})
    candidate = compress(recipe, digits_ctx, host.catalogue)
    strategy = host.catalogue.family("quantizer")[quantizer]
    bound = weights_in_use(digits_ctx.teacher, digits_ctx.example_inputs(1)) * strategy.min_bytes_per_weight / MB
    actual = artifact_sizes(candidate.artifact)["size_mb"]
    assert bound <= actual
    if quantizer == "none":  # and it is close enough to be worth checking: fp32 weights are most of the file
        assert bound > 0.5 * actual
