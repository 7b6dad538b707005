"""The chain's ladder: the chain is tried at three strengths, then rungs are added towards the
strongest pruning that still meets the constraints, as the rungs are measured."""

from __future__ import annotations

import optuna
import pytest

from orchestrator.config import Objective
from orchestrator.recipe import Recipe
from orchestrator.results import TrialResult
from orchestrator.spaces import resolve_space
from orchestrator.config import Bound
from orchestrator.study.driver import DEFAULT_RECIPE, _requeue, enqueue_defaults, tell
from orchestrator.study.ladder import LADDER, LADDER_ADDED, extend_ladder, kept_constraints, next_rung
from orchestrator.study.repeats import ask_recipe
from orchestrator.study.sampling import chain_rungs

optuna.logging.set_verbosity(optuna.logging.WARNING)

OBJECTIVES = [Objective(metric="accuracy", direction="maximize"), Objective(metric="size_mb", direction="minimize")]


@pytest.fixture(scope="module")
def space(host):
    return resolve_space("default", host.catalogue)


def _ratio(recipe: Recipe) -> float:
    return recipe.prune.params["ratio"]


def _with_ratio(recipe: Recipe, ratio: float, epochs: int) -> Recipe:
    return recipe.model_copy(update={"prune": recipe.prune.model_copy(update={"params": {**recipe.prune.params,
                                                                                         "ratio": ratio}}),
                                     "train": recipe.train.model_copy(update={"params": {**recipe.train.params,
                                                                                         "epochs": epochs}})})


def test_the_ladder_climbs_while_its_strongest_rung_meets_the_constraints(space, host):
    chain, light, strong = chain_rungs(space, host.catalogue)
    up = next_rung(space, host.catalogue, [(chain, True), (light, True), (strong, True)])
    # halfway from 65 % to the top of [0.1, 0.8], trained halfway from 14 epochs to the top of [2, 20]
    assert up == _with_ratio(strong, pytest.approx(0.725), 17)
    higher = next_rung(space, host.catalogue, [(chain, True), (light, True), (strong, True), (up, True)])
    assert _ratio(higher) == pytest.approx(0.7625) and higher.train.params["epochs"] in (18, 19)
    # everything else is the chain's: the same scorer, pruner, distiller and quantizer settings
    assert (higher.score, higher.quantize, higher.prune.strategy) == (chain.score, chain.quantize, "channel")


def test_once_a_rung_fails_the_ladder_bisects_towards_the_last_that_met_the_constraints(space, host):
    chain, light, strong = chain_rungs(space, host.catalogue)
    between = next_rung(space, host.catalogue, [(chain, True), (light, True), (strong, False)])
    # halfway from 50 % (met) to 65 % (failed), trained as the stronger one was
    assert between == _with_ratio(strong, pytest.approx(0.575), 14)
    # the halfway rung met them too: halfway again, from it to the failure
    closer = next_rung(space, host.catalogue, [(chain, True), (light, True), (strong, False), (between, True)])
    assert _ratio(closer) == pytest.approx(0.6125)
    # it failed: halfway from the chain to it
    lower = next_rung(space, host.catalogue, [(chain, True), (light, True), (strong, False), (between, False)])
    assert _ratio(lower) == pytest.approx(0.5375)


def test_when_no_rung_meets_the_constraints_the_ladder_goes_lighter(space, host):
    chain, light, strong = chain_rungs(space, host.catalogue)
    down = next_rung(space, host.catalogue, [(chain, False), (light, False), (strong, False)])
    assert down == _with_ratio(light, pytest.approx(0.2), 8)  # halfway from 30 % to the bottom, 0.1


def test_the_ladder_stops_where_the_space_leaves_no_rung_between(host, tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("stages:\n  score: [magnitude]\n  prune:\n    none: {}\n"
                    "    channel: {ratio: [0.25, 0.5, 0.75]}\n  train: [kd]\n  quantize: [none, static-int8]\n")
    space = resolve_space(str(path), host.catalogue)
    chain, light, strong = chain_rungs(space, host.catalogue)
    assert next_rung(space, host.catalogue, [(chain, True), (light, True), (strong, False)]) is None
    assert next_rung(space, host.catalogue, [(chain, True), (light, True), (strong, True)]) is None
    assert next_rung(space, host.catalogue, [(chain, False), (light, False), (strong, False)]) is None


def _tenths(recipe: Recipe) -> int:
    """A stand-in for what a pruning makes: ratios in the same tenth make the same model."""
    return int(_ratio(recipe) * 10)


def test_a_rung_that_makes_a_model_already_measured_is_passed_over(space, host):
    chain, light, strong = chain_rungs(space, host.catalogue)

    def made(recipe: Recipe) -> object:  # from 50 % up to 60 %, the pruner keeps the same channels
        return "the model of 50 %" if 0.5 <= _ratio(recipe) < 0.6 else _ratio(recipe)

    # 50 % kept the floor and 65 % broke it: halfway, 57.5 %, makes the model 50 % made, so it
    # counts as kept without a trial, and the ladder tries halfway from there to the break
    rung = next_rung(space, host.catalogue, [(chain, True), (light, True), (strong, False)], made)
    assert _ratio(rung) == pytest.approx(0.6125)
    # trained as the rung that broke, like any halfway rung
    assert rung.train == strong.train
    # in tenths, 61.25 % makes the model 65 % made (it broke): nothing new is left between them
    assert next_rung(space, host.catalogue, [(chain, True), (light, True), (strong, False)], _tenths) is None
    # every rung broke: a step lighter than 30 % is 20 %, a new model
    down = next_rung(space, host.catalogue, [(chain, False), (light, False), (strong, False)], _tenths)
    assert _ratio(down) == pytest.approx(0.2)


def test_the_ladder_stops_when_every_rung_left_makes_a_model_already_measured(space, host):
    chain, light, strong = chain_rungs(space, host.catalogue)
    seven = _with_ratio(strong, 0.725, 17)
    # 72.5 % kept and 80 % (the top) is all that is left above it: every step up stays in the 70s
    assert next_rung(space, host.catalogue, [(chain, True), (light, True), (strong, True), (seven, True)],
                     _tenths) is None
    # unknown (a pruner that trains while it prunes): the rung is proposed as without a signature
    assert _ratio(next_rung(space, host.catalogue, [(chain, True), (light, True), (strong, True), (seven, True)],
                            lambda recipe: None)) == pytest.approx(0.7625)


def _measure(study: optuna.Study, space, catalogue, feasible_up_to: float, kept=("accuracy_drop",),
             crash_at: float | None = None, signature=None) -> tuple[Recipe, dict]:
    """Ask one trial, as the driver does, and tell it: a pruned model keeps the accuracy floor up to
    ``feasible_up_to`` of its channels removed, and always misses a cap on size the baseline misses
    too; a trial pruned ``crash_at`` fails with an error."""
    trial, recipe = ask_recipe(study, space, catalogue, seed=0)
    trial.set_user_attr("recipe", recipe.model_dump(mode="json"))
    ratio = recipe.prune.params.get("ratio", 0.0)
    ok = ratio <= feasible_up_to
    if crash_at is not None and ratio == pytest.approx(crash_at):
        result = TrialResult(number=trial.number, state="FAIL", recipe=recipe.model_dump(mode="json"), error="boom")
    else:
        result = TrialResult(number=trial.number, state="COMPLETE", recipe=recipe.model_dump(mode="json"),
                             metrics={"accuracy": 0.9 - ratio / 10, "size_mb": 1.0 - ratio},
                             constraints={"accuracy_drop": -0.1 if ok else 0.1, "size_mb": 0.5}, feasible=False)
    marks = dict(trial.user_attrs)
    tell(study, trial, result, OBJECTIVES)
    if LADDER in marks:
        extend_ladder(study, space, catalogue, kept, signature)
    return recipe, marks


def _study(space, catalogue) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    enqueue_defaults(study, space, catalogue)
    return study


def test_the_constraints_kept_are_those_the_baseline_meets():
    baseline = {"accuracy": 0.99, "accuracy_drop": 0.0, "size_mb": 0.14, "latency_ms": 4.0}
    constraints = {"accuracy_drop": Bound(max=1.0), "size_mb": Bound(max=0.05), "latency_ms": Bound(max=10.0)}
    # the accuracy floor and a latency cap the baseline already meets: compressing too hard breaks
    # them; the size cap asks for more compression
    assert kept_constraints(baseline, constraints) == ["accuracy_drop", "latency_ms"]
    assert kept_constraints(baseline, {}) == []


def test_the_driver_adds_rungs_as_they_are_measured_up_to_its_limit(space, host):
    study = _study(space, host.catalogue)
    first = len(study.trials)
    measured = [_measure(study, space, host.catalogue, feasible_up_to=0.7) for _ in range(first + LADDER_ADDED + 2)]
    rungs = [(r, m[LADDER]) for r, m in measured if LADDER in m]
    assert [mark for _, mark in rungs] == [0, 0, 0, 1, 2, 3]
    # 65 % kept the floor (missing only the size cap, as the baseline does): up to 72.5 %, which
    # broke it; then halfway back, 68.75 % (kept), and halfway from there to the break, 70.6 %,
    # which broke it: the ladder stops at its limit
    assert [_ratio(r) for r, _ in rungs[3:]] == pytest.approx([0.725, 0.6875, 0.70625])
    # the added rungs are asked right after the rung before them, and train to the end like every default
    assert [m.get(LADDER) for _, m in measured[first:first + LADDER_ADDED]] == [1, 2, 3]
    assert all(m.get(DEFAULT_RECIPE) for _, m in measured[first:first + LADDER_ADDED])
    assert not any(DEFAULT_RECIPE in m for _, m in measured[first + LADDER_ADDED:])  # then the sampler's


def test_the_driver_adds_only_rungs_that_make_a_model_not_measured_yet(space, host):
    study = _study(space, host.catalogue)
    first = len(study.trials)
    measured = [_measure(study, space, host.catalogue, feasible_up_to=0.75, signature=_tenths)
                for _ in range(first + LADDER_ADDED + 2)]
    rungs = [r for r, m in measured if LADDER in m]
    # 72.5 % kept, 76.25 % would make its model again: 78.1 % (the same) and so on are passed
    # over up to the limit, and nothing is added after the first added rung
    assert [_ratio(r) for r in rungs[3:]] == pytest.approx([0.725])
    assert len({_tenths(r) for r in rungs}) == len(rungs)


def test_without_a_constraint_the_baseline_meets_no_rung_is_added(space, host):
    study = _study(space, host.catalogue)
    first = len(study.trials)
    measured = [_measure(study, space, host.catalogue, feasible_up_to=0.7, kept=()) for _ in range(first + 2)]
    assert not any(DEFAULT_RECIPE in m for _, m in measured[first:])


def test_a_rung_that_crashed_is_not_taken_for_one_that_broke_the_floor(space, host):
    study = _study(space, host.catalogue)
    first = len(study.trials)
    # the stronger rung (65 %) raises: had it counted as too strong, the ladder would try 57.5 %;
    # the next rung up from the chain is the one that crashed, so nothing is added
    measured = [_measure(study, space, host.catalogue, feasible_up_to=1.0, crash_at=0.65) for _ in range(first + 2)]
    assert not any(DEFAULT_RECIPE in m for _, m in measured[first:])


def test_a_rung_is_added_only_once_every_rung_is_measured_and_only_once(space, host):
    study = _study(space, host.catalogue)
    waiting = len(study.trials)
    extend_ladder(study, space, host.catalogue, ["accuracy_drop"])  # nothing measured yet
    assert len(study.trials) == waiting
    for _ in range(waiting - 1):  # every default but the last rung
        _measure(study, space, host.catalogue, feasible_up_to=1.0)
    assert len(study.trials) == waiting
    _measure(study, space, host.catalogue, feasible_up_to=1.0)
    assert len(study.trials) == waiting + 1
    # a driver started again on the study asks again: the same rung is not added twice
    extend_ladder(study, space, host.catalogue, ["accuracy_drop"])
    assert len(study.trials) == waiting + 1


def test_an_interrupted_rung_is_queued_again_as_a_rung(space, host):
    study = _study(space, host.catalogue)
    for _ in range(len(study.trials) - 1):
        _measure(study, space, host.catalogue, feasible_up_to=1.0)
    trial, recipe = ask_recipe(study, space, host.catalogue, seed=0)  # the last rung, cut short by Ctrl-C
    assert trial.user_attrs[LADDER] == 0
    trial.set_user_attr("recipe", recipe.model_dump(mode="json"))
    tell(study, trial, TrialResult(number=trial.number, state="FAIL", recipe=recipe.model_dump(mode="json"),
                                   interrupted=True), OBJECTIVES)
    _requeue(study, trial.params, trial.user_attrs)
    extend_ladder(study, space, host.catalogue, ["accuracy_drop"])  # waits for the rung queued again
    again = study.trials[-1]
    assert again.state == optuna.trial.TrialState.WAITING
    assert again.user_attrs == {DEFAULT_RECIPE: True, LADDER: 0}
    _measure(study, space, host.catalogue, feasible_up_to=1.0)  # measured this time: the next rung follows
    assert study.trials[-1].user_attrs == {DEFAULT_RECIPE: True, LADDER: 1}


def test_what_a_rung_prunes_the_baseline_to_is_seen_without_training(space, host, make_ctx):
    from orchestrator.pipeline import pruned_model
    from orchestrator.study.ladder import pruned_signature

    ctx, messages = make_ctx(), []
    signature = pruned_signature(lambda recipe: pruned_model(recipe, ctx, host.catalogue), host.catalogue,
                                 messages.append)
    chain, light, strong = chain_rungs(space, host.catalogue)
    # the digits CNN of width 8, widths rounded to 4 channels: 30 % and 50 % keep the same channels
    assert signature(light) == signature(chain) != signature(strong)
    # training longer does not change what the pruning makes
    assert signature(_with_ratio(chain, 0.5, 20)) == signature(chain)
    # unstructured pruning keeps every shape: the weights it zeroes tell its rungs apart
    unstructured = Recipe(score=chain.score, prune={"strategy": "unstructured", "params": {"sparsity": 0.5}})
    sparser = Recipe(score=chain.score, prune={"strategy": "unstructured", "params": {"sparsity": 0.6}})
    assert signature(unstructured) != signature(sparser)
    assert not messages


def test_a_pruner_that_trains_or_fails_leaves_its_rungs_to_be_measured(host):
    from orchestrator.study.ladder import pruned_signature

    def prune(recipe: Recipe):
        raise ValueError("no such layer")

    messages = []
    signature = pruned_signature(prune, host.catalogue, messages.append)
    # an iterative pruner fine-tunes between its steps: it is not run outside a trial
    assert signature(Recipe(prune={"strategy": "iterative", "params": {"ratio": 0.5}})) is None
    assert not messages
    assert signature(Recipe(prune={"strategy": "channel", "params": {"ratio": 0.5}})) is None
    assert len(messages) == 1 and "'channel'" in messages[0] and "no such layer" in messages[0]
