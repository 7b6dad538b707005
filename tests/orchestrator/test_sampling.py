"""From Optuna trials to recipes over the conditional space, enqueued recipes, and seeded samplers."""

from __future__ import annotations

import optuna
import pytest

from orchestrator.config import SamplerConfig
from orchestrator.recipe import NONE, Recipe, StageChoice
from orchestrator.spaces import resolve_space
from orchestrator.study.samplers import make_sampler
from orchestrator.study.sampling import default_recipes, recipe_params, sample_recipe

optuna.logging.set_verbosity(optuna.logging.WARNING)

BASE_TRAIN = StageChoice(strategy=NONE, params={"epochs": 0, "lr": 0.003})


@pytest.fixture(scope="module")
def space(host):
    return resolve_space("default", host.catalogue)


@pytest.fixture(scope="module")
def quick(host):
    return resolve_space("quick", host.catalogue)


def _study(sampler=None) -> optuna.Study:
    return optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)


def _enqueued(recipe: Recipe, space, catalogue) -> tuple[Recipe, dict]:
    """The recipe sample_recipe gives for a trial enqueued with recipe_params(recipe), and its params."""
    study = _study()
    study.enqueue_trial(recipe_params(recipe, space, catalogue))
    trial = study.ask()
    return sample_recipe(trial, space, catalogue), trial.params


def _fake_values(recipe: Recipe) -> list[float]:
    ratio = recipe.prune.params.get("ratio", 0.0)
    return [0.9 - 0.2 * ratio + 0.01 * recipe.train.params.get("epochs", 0), 1.0 - ratio]


# --- the conditional space -----------------------------------------------------------------------

def test_sampled_recipes_only_hold_parameters_of_the_chosen_strategies(space, host):
    study = _study(optuna.samplers.RandomSampler(seed=0))
    seen_prune = set()
    for _ in range(40):
        trial = study.ask()
        recipe = sample_recipe(trial, space, host.catalogue)
        seen_prune.add(recipe.prune.strategy)
        expected = set()
        for stage, choice in recipe.stages():
            if stage == "score" and choice.strategy == NONE:
                continue
            expected.add(stage)
            expected |= {f"{stage}.{choice.strategy}.{p}" for p in space.stages[stage][choice.strategy]}
            assert set(choice.params) == set(space.stages[stage][choice.strategy])
        assert set(trial.params) == expected
        if recipe.prune.strategy == NONE:
            assert recipe.score.strategy == NONE
            assert "score" not in trial.params
            assert not any(name.startswith(("prune.channel.", "score.")) for name in trial.params)
        else:
            assert recipe.score.strategy == "magnitude"
            assert trial.params["score"] == "magnitude"
            assert space.stages["prune"]["channel"]["ratio"].contains(trial.params["prune.channel.ratio"])
        study.tell(trial, _fake_values(recipe))
    assert seen_prune == {"none", "channel"}


def test_sampled_values_stay_inside_the_narrowed_space(quick, host):
    study = _study(optuna.samplers.RandomSampler(seed=1))
    for _ in range(30):
        recipe = sample_recipe(study.ask(), quick, host.catalogue)
        for stage, choice in recipe.stages():
            for p, value in choice.params.items():
                assert quick.stages[stage][choice.strategy][p].contains(value), (stage, p, value)
        if recipe.prune.strategy == "channel":
            assert recipe.score.params == {"p": 1}
            assert recipe.prune.params["global_pruning"] is False
            assert 0.2 <= recipe.prune.params["ratio"] <= 0.6


def test_a_trial_that_chose_prune_none_has_no_pruning_or_scoring_parameters(space, host):
    recipe = Recipe(train=BASE_TRAIN)
    again, params = _enqueued(recipe, space, host.catalogue)
    assert again == recipe
    assert params == {"prune": "none", "train": "none", "train.none.epochs": 0, "train.none.lr": 0.003,
                      "quantize": "none"}


# --- enqueueing recipes --------------------------------------------------------------------------

def test_recipe_params_names_each_parameter_by_stage_and_strategy(space, host):
    recipe = Recipe(score=StageChoice(strategy="magnitude", params={"p": 2}),
                    prune=StageChoice(strategy="channel", params={"ratio": 0.35, "global_pruning": True}),
                    train=StageChoice(strategy="kd", params={"epochs": 5, "lr": 0.002, "temperature": 3.5,
                                                             "alpha": 0.4}),
                    quantize=StageChoice(strategy="static-int8", params={"calibration": "entropy",
                                                                         "per_channel": False,
                                                                         "calibration_batches": 16}))
    assert recipe_params(recipe, space, host.catalogue) == {
        "score": "magnitude", "score.magnitude.p": 2,
        "prune": "channel", "prune.channel.ratio": 0.35, "prune.channel.global_pruning": True,
        "train": "kd", "train.kd.epochs": 5, "train.kd.lr": 0.002, "train.kd.temperature": 3.5,
        "train.kd.alpha": 0.4,
        "quantize": "static-int8", "quantize.static-int8.calibration": "entropy",
        "quantize.static-int8.per_channel": False, "quantize.static-int8.calibration_batches": 16,
    }


def test_an_enqueued_recipe_comes_back_exactly(space, host):
    recipe = Recipe(score=StageChoice(strategy="magnitude", params={"p": 2}),
                    prune=StageChoice(strategy="channel", params={"ratio": 0.35, "global_pruning": True}),
                    train=StageChoice(strategy="kd", params={"epochs": 5, "lr": 0.002, "temperature": 3.5,
                                                             "alpha": 0.4}),
                    quantize=StageChoice(strategy="static-int8", params={"calibration": "entropy",
                                                                         "per_channel": False,
                                                                         "calibration_batches": 16}))
    again, _ = _enqueued(recipe, space, host.catalogue)
    assert again == recipe
    assert again.model_dump() == recipe.model_dump()


def test_randomly_sampled_recipes_replay_exactly_through_recipe_params(space, host):
    study = _study(optuna.samplers.RandomSampler(seed=7))
    for _ in range(15):
        recipe = sample_recipe(study.ask(), space, host.catalogue)
        again, _ = _enqueued(recipe, space, host.catalogue)
        assert again == recipe


@pytest.mark.parametrize("recipe", [
    Recipe(train=StageChoice(strategy=NONE, params={"epochs": 20, "lr": 0.003})),  # epochs beyond [0, 12]
    Recipe(train=StageChoice(strategy="kd", params={"epochs": 1, "lr": 0.003, "temperature": 4.0, "alpha": 0.7})),
    Recipe(train=StageChoice(strategy="distill-more", params={})),  # a strategy the space does not list
    Recipe(train=StageChoice(strategy=NONE, params={"epochs": 2})),  # a parameter missing
    Recipe(train=BASE_TRAIN, quantize=StageChoice(strategy="static-int8", params={
        "calibration": "histogram", "per_channel": True, "calibration_batches": 8})),
    Recipe(),  # the default space searches fine-tuning epochs: a recipe must give them
], ids=["epochs-out-of-range", "kd-epochs-below-low", "unknown-strategy", "missing-param", "bad-choice",
        "no-train-params"])
def test_a_recipe_outside_the_space_has_no_params(space, host, recipe):
    assert recipe_params(recipe, space, host.catalogue) is None


def test_a_recipe_outside_a_narrowed_space_has_no_params(quick, host):
    recipe = Recipe(score=StageChoice(strategy="magnitude", params={"p": 2}),
                    prune=StageChoice(strategy="channel", params={"ratio": 0.5, "global_pruning": False}),
                    train=BASE_TRAIN)
    assert recipe_params(recipe, quick, host.catalogue) is None  # quick fixes p to 1


def test_a_pruner_that_needs_scores_without_a_scorer_is_outside_the_space(space, host):
    recipe = Recipe(prune=StageChoice(strategy="channel", params={"ratio": 0.5, "global_pruning": False}),
                    train=BASE_TRAIN)
    assert recipe_params(recipe, space, host.catalogue) is None


def test_a_scorer_without_a_pruner_that_uses_it_is_outside_the_space(space, host):
    recipe = Recipe(score=StageChoice(strategy="magnitude", params={"p": 2}), train=BASE_TRAIN)
    assert recipe_params(recipe, space, host.catalogue) is None


def test_a_recipe_with_an_undeclared_parameter_is_outside_the_space(space, host):
    recipe = Recipe(train=StageChoice(strategy=NONE, params={"epochs": 2, "lr": 0.003, "momentum": 0.9}))
    assert recipe_params(recipe, space, host.catalogue) is None


# --- default recipes -----------------------------------------------------------------------------

def test_default_recipes_start_with_the_baseline(space, host):
    recipes = default_recipes(space, host.catalogue)
    baseline = recipes[0]
    assert [choice.strategy for _, choice in baseline.stages()] == [NONE] * 4
    assert baseline.train.params["epochs"] == 0
    assert baseline.train.params == {"epochs": 0, "lr": 0.003}
    assert baseline.describe(host.catalogue) == "baseline"


def test_default_recipes_try_each_technique_once(space, host):
    recipes = default_recipes(space, host.catalogue)
    assert [r.describe(host.catalogue) for r in recipes] == [
        "baseline",
        "channel 50% by magnitude p=1 -> fine-tune 8 epochs lr=0.003",
        "channel 50% by magnitude p=1 -> kd T=4 alpha=0.7 8 epochs",
        "static-int8 minmax",
    ]
    # one recipe per technique: pruning followed by plain fine-tuning, distillation after the default
    # pruning, quantization alone
    for name in [n for n in space.strategies("prune") if n != NONE]:
        assert sum(1 for r in recipes if r.prune.strategy == name and r.train.strategy == NONE) == 1, name
    for name in [n for n in space.strategies("train") if n != NONE]:
        assert sum(1 for r in recipes if r.train.strategy == name) == 1, name
    for name in [n for n in space.strategies("quantize") if n != NONE]:
        assert sum(1 for r in recipes if r.quantize.strategy == name) == 1, name
    assert len(recipes) == 1 + sum(len(space.strategies(stage)) - 1 for stage in ("prune", "train", "quantize"))


def test_default_recipes_use_the_strategy_defaults(space, host):
    recipes = default_recipes(space, host.catalogue)
    prune = recipes[1]
    assert prune.score == StageChoice(strategy="magnitude", params={"p": 1})
    assert prune.prune == StageChoice(strategy="channel", params={"ratio": 0.5, "global_pruning": False})
    assert prune.train == StageChoice(strategy=NONE, params={"epochs": 8, "lr": 0.003})
    kd = recipes[2]
    assert kd.prune == prune.prune and kd.score == prune.score
    assert kd.train == StageChoice(strategy="kd", params={"epochs": 8, "lr": 0.003, "temperature": 4.0,
                                                          "alpha": 0.7})
    int8 = recipes[3]
    assert int8.prune.strategy == NONE and int8.train == recipes[0].train
    assert int8.quantize == StageChoice(strategy="static-int8", params={
        "calibration": "minmax", "per_channel": True, "calibration_batches": 8})


def test_default_recipes_fall_back_to_the_middle_of_a_narrowed_range(quick, host):
    recipes = default_recipes(quick, host.catalogue)
    # quick caps fine-tuning at 3 epochs and kd at [1, 3]: the default 8 is outside, the middle is used
    assert recipes[1].train.params["epochs"] == 2
    assert recipes[2].train.params["epochs"] == 2
    assert recipes[3].quantize.params["calibration_batches"] == 3  # geometric middle of [2, 4]


@pytest.mark.parametrize("name", ["default", "quick"])
def test_default_recipes_are_inside_their_space_and_replay_exactly(name, host):
    space = resolve_space(name, host.catalogue)
    recipes = default_recipes(space, host.catalogue)
    study = _study()
    for recipe in recipes:
        params = recipe_params(recipe, space, host.catalogue)
        assert params is not None, recipe
        study.enqueue_trial(params)
    assert [sample_recipe(study.ask(), space, host.catalogue) for _ in recipes] == recipes


def test_default_recipes_without_plain_fine_tuning_use_the_spaces_distiller(host, tmp_path):
    path = tmp_path / "kd_only.yaml"
    path.write_text("stages:\n  score: [magnitude]\n  prune: [none, channel]\n  train: [kd]\n"
                    "  quantize: [none, static-int8]\n")
    space = resolve_space(str(path), host.catalogue)
    recipes = default_recipes(space, host.catalogue)
    assert all(recipe_params(r, space, host.catalogue) is not None for r in recipes)  # all enqueued
    assert [r.describe(host.catalogue) for r in recipes] == [
        "channel 50% by magnitude p=1 -> kd T=4 alpha=0.7 8 epochs",
        "static-int8 minmax"]


# --- seeded samplers -----------------------------------------------------------------------------

def _run(sampler_name: str, seed: int, space, catalogue, n: int = 12) -> list[Recipe]:
    sampler = make_sampler(SamplerConfig(name=sampler_name, n_startup_trials=4, population_size=4), seed)
    study = _study(sampler)
    out = []
    for _ in range(n):
        trial = study.ask()
        recipe = sample_recipe(trial, space, catalogue)
        study.tell(trial, _fake_values(recipe))
        out.append(recipe)
    return out


@pytest.mark.parametrize("sampler_name", ["tpe", "nsga2", "random"])
def test_a_seeded_sampler_gives_the_same_recipes_twice(sampler_name, space, host):
    first = _run(sampler_name, 5, space, host.catalogue)
    assert _run(sampler_name, 5, space, host.catalogue) == first
    assert len({r.model_dump_json() for r in first}) > 1


def test_different_seeds_give_different_recipes(space, host):
    assert _run("random", 1, space, host.catalogue) != _run("random", 2, space, host.catalogue)


@pytest.mark.parametrize("sampler_name, kind", [("tpe", optuna.samplers.TPESampler),
                                                ("nsga2", optuna.samplers.NSGAIISampler),
                                                ("random", optuna.samplers.RandomSampler)])
def test_make_sampler_builds_the_named_sampler(sampler_name, kind):
    assert isinstance(make_sampler(SamplerConfig(name=sampler_name), 0), kind)
