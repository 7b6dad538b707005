"""From Optuna trials to recipes over the conditional space, enqueued recipes, and seeded samplers."""

from __future__ import annotations

import optuna
import pytest
import torch
from torch import nn

from orchestrator.config import SamplerConfig
from orchestrator.errors import ConfigError
from orchestrator.params import Choice, Float
from orchestrator.recipe import NONE, Recipe, StageChoice
from orchestrator.spaces import builtin_spaces, resolve_space
from orchestrator.study.samplers import make_sampler
from orchestrator.study.sampling import default_recipes, recipe_params, sample_recipe

optuna.logging.set_verbosity(optuna.logging.WARNING)

BASE_TRAIN = StageChoice(strategy=NONE, params={"epochs": 0, "lr": 0.003})

#: every built-in space, the four shipped ones named so that none can silently drop out
BUILTIN_SPACES = sorted({"default", "quick", "cnn", "transformer"} | set(builtin_spaces()))

#: a recipe that sets every parameter of channel pruning, kd and static int8
FULL_RECIPE = Recipe(
    score=StageChoice(strategy="magnitude", params={"p": 2}),
    prune=StageChoice(strategy="channel", params={"ratio": 0.35, "global_pruning": True, "round_to": 4,
                                                  "prune_heads": False}),
    train=StageChoice(strategy="kd", params={"epochs": 5, "lr": 0.002, "temperature": 3.5, "alpha": 0.4}),
    quantize=StageChoice(strategy="static-int8", params={"calibration": "entropy", "per_channel": False,
                                                         "calibration_batches": 16}))

#: recipes that between them use every strategy of the default space, each parameter off its default
REPLAY_RECIPES = {
    "channel-kd-static-int8": FULL_RECIPE,
    "taylor-iterative-feature-qat": Recipe(
        score=StageChoice(strategy="taylor", params={"batches": 4}),
        prune=StageChoice(strategy="iterative", params={
            "granularity": "channel", "sparsity": 0.6, "ratio": 0.4, "scope": "global", "steps": 3,
            "schedule": "linear", "epochs_per_step": 1, "lr": 0.001}),
        train=StageChoice(strategy="feature", params={"epochs": 6, "lr": 0.002, "beta": 2.0, "layers": 1,
                                                      "kd_alpha": 0.3, "temperature": 2.0}),
        quantize=StageChoice(strategy="qat", params={"averaging_constant": 0.02, "calibration_batches": 4})),
    "lottery-dynamic-int8": Recipe(
        prune=StageChoice(strategy="lottery", params={"sparsity": 0.7, "rounds": 2, "epochs_per_round": 2,
                                                      "lr": 0.005, "scope": "global"}),
        train=StageChoice(strategy=NONE, params={"epochs": 3, "lr": 0.001}),
        quantize=StageChoice(strategy="dynamic-int8", params={"per_channel": True, "reduce_range": True})),
    "random-unstructured-fp16": Recipe(
        score=StageChoice(strategy="random", params={}),
        prune=StageChoice(strategy="unstructured", params={"sparsity": 0.9, "scope": "global"}),
        train=StageChoice(strategy=NONE, params={"epochs": 0, "lr": 0.003}),
        quantize=StageChoice(strategy="fp16", params={})),
    "fpgm-channel-heads": Recipe(
        score=StageChoice(strategy="fpgm", params={}),
        prune=StageChoice(strategy="channel", params={"ratio": 0.2, "global_pruning": False, "round_to": 8,
                                                      "prune_heads": True}),
        train=BASE_TRAIN),
    "bn-scale-channel": Recipe(
        score=StageChoice(strategy="bn-scale", params={}),
        prune=StageChoice(strategy="channel", params={"ratio": 0.6, "global_pruning": True, "round_to": 1,
                                                      "prune_heads": False}),
        train=BASE_TRAIN),
}


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
    pruners = host.catalogue.family("pruner")
    scorers = [s for s in space.strategies("score") if s != NONE]
    assert not pruners[NONE].needs_scores
    study = _study(optuna.samplers.RandomSampler(seed=0))
    seen = {stage: set() for stage in ("score", "prune", "train", "quantize")}
    for _ in range(80):
        trial = study.ask()
        recipe = sample_recipe(trial, space, host.catalogue)
        expected = set()
        for stage, choice in recipe.stages():
            seen[stage].add(choice.strategy)
            if stage == "score" and choice.strategy == NONE:
                continue
            expected.add(stage)
            assert trial.params[stage] == choice.strategy
            declared = space.stages[stage][choice.strategy]
            expected |= {f"{stage}.{choice.strategy}.{p}" for p in declared}
            assert set(choice.params) == set(declared)
            for p, value in choice.params.items():
                assert trial.params[f"{stage}.{choice.strategy}.{p}"] == value
                assert declared[p].contains(value), (stage, choice.strategy, p, value)
        assert set(trial.params) == expected  # no parameter of a strategy the trial did not choose
        if pruners[recipe.prune.strategy].needs_scores:
            assert recipe.score.strategy in scorers
        else:  # prune: none, or a pruner that ranks weights itself: no scorer and no scoring parameters
            assert recipe.score.strategy == NONE
            assert "score" not in trial.params
            assert not any(name.startswith("score.") for name in trial.params)
        study.tell(trial, _fake_values(recipe))
    assert seen["prune"] == set(space.strategies("prune"))
    assert seen["score"] == set(scorers) | {NONE}
    assert seen["train"] == set(space.strategies("train"))
    assert seen["quantize"] == set(space.strategies("quantize"))


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
    assert recipe_params(FULL_RECIPE, space, host.catalogue) == {
        "score": "magnitude", "score.magnitude.p": 2,
        "prune": "channel", "prune.channel.ratio": 0.35, "prune.channel.global_pruning": True,
        "prune.channel.round_to": 4, "prune.channel.prune_heads": False,
        "train": "kd", "train.kd.epochs": 5, "train.kd.lr": 0.002, "train.kd.temperature": 3.5,
        "train.kd.alpha": 0.4,
        "quantize": "static-int8", "quantize.static-int8.calibration": "entropy",
        "quantize.static-int8.per_channel": False, "quantize.static-int8.calibration_batches": 16,
    }


def test_the_replay_recipes_use_every_strategy_of_the_default_space(space):
    for stage in ("score", "prune", "train", "quantize"):
        used = {getattr(r, stage).strategy for r in REPLAY_RECIPES.values()}
        assert set(space.strategies(stage)) - {NONE} <= used, stage


@pytest.mark.parametrize("recipe", list(REPLAY_RECIPES.values()), ids=list(REPLAY_RECIPES))
def test_an_enqueued_recipe_comes_back_exactly(recipe, space, host):
    assert recipe_params(recipe, space, host.catalogue) is not None
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
    Recipe(train=StageChoice(strategy=NONE, params={"epochs": 25, "lr": 0.003})),  # epochs beyond [0, 20]
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
        "channel 50% round 4 by magnitude p=1 -> fine-tune 8 epochs lr=0.003",
        "unstructured 50% by magnitude p=1 -> fine-tune 8 epochs lr=0.003",
        "iterative unstructured 70% in 4 cubic steps, 2 epochs each lr=0.003 by magnitude p=1"
        " -> fine-tune 8 epochs lr=0.003",
        "lottery 80% in 3 rounds of 4 epochs lr=0.003 -> fine-tune 8 epochs lr=0.003",
        "channel 50% round 4 by magnitude p=1 -> kd T=4 alpha=0.7 8 epochs",
        "channel 50% round 4 by magnitude p=1 -> feature x2 beta=1 + kd 0.5 8 epochs",
        "static-int8 minmax",
        "dynamic-int8",
        "fine-tune 8 epochs lr=0.003 -> qat ema=0.01",
        "fp16",
        "channel 50% round 4 by magnitude p=1 -> kd T=4 alpha=0.7 8 epochs -> static-int8 minmax",
        "channel 30% round 4 by magnitude p=1 -> kd T=4 alpha=0.7 8 epochs -> static-int8 minmax",
        "channel 65% round 4 by magnitude p=1 -> kd T=4 alpha=0.7 14 epochs -> static-int8 minmax",
    ]
    # one recipe per technique: pruning followed by plain fine-tuning, distillation after the default
    # pruning, quantization alone (QAT with the default fine-tuning it trains in)
    single = recipes[:-3]
    for name in [n for n in space.strategies("prune") if n != NONE]:
        assert sum(1 for r in single if r.prune.strategy == name and r.train.strategy == NONE) == 1, name
    for name in [n for n in space.strategies("train") if n != NONE]:
        assert sum(1 for r in single if r.train.strategy == name) == 1, name
    for name in [n for n in space.strategies("quantize") if n != NONE]:
        assert sum(1 for r in single if r.quantize.strategy == name) == 1, name
    # and the three chained: the default pruning, distilled, then quantized without training, at
    # three strengths
    assert len(recipes) == 4 + sum(len(space.strategies(stage)) - 1 for stage in ("prune", "train", "quantize"))


def _the_one(recipes: list[Recipe], stage: str, strategy: str) -> Recipe:
    found = [r for r in recipes if getattr(r, stage).strategy == strategy
             and (stage != "prune" or r.train.strategy == NONE)]
    assert len(found) == 1, (stage, strategy, found)
    return found[0]


def test_default_recipes_use_the_strategy_defaults(space, host):
    *recipes, chain, _, _ = default_recipes(space, host.catalogue)
    baseline = recipes[0]
    prune = recipes[1]
    assert prune.score == StageChoice(strategy="magnitude", params={"p": 1})
    assert prune.prune == StageChoice(strategy="channel", params={"ratio": 0.5, "global_pruning": False,
                                                                  "round_to": 4, "prune_heads": False})
    assert prune.train == StageChoice(strategy=NONE, params={"epochs": 8, "lr": 0.003})
    unstructured = _the_one(recipes, "prune", "unstructured")
    assert unstructured.score == prune.score and unstructured.train == prune.train
    assert unstructured.prune == StageChoice(strategy="unstructured", params={"sparsity": 0.5,
                                                                              "scope": "per-layer"})
    iterative = _the_one(recipes, "prune", "iterative")
    assert iterative.score == prune.score and iterative.train == prune.train
    assert iterative.prune == StageChoice(strategy="iterative", params={
        "granularity": "unstructured", "sparsity": 0.7, "ratio": 0.5, "scope": "per-layer", "steps": 4,
        "schedule": "cubic", "epochs_per_step": 2, "lr": 0.003})
    lottery = _the_one(recipes, "prune", "lottery")
    assert lottery.score == StageChoice()  # lottery needs no scorer
    assert lottery.train == prune.train
    # the default 8 epochs per round is outside the space's [1, 4]: the nearest value is used
    assert lottery.prune == StageChoice(strategy="lottery", params={
        "sparsity": 0.8, "rounds": 3, "epochs_per_round": 4, "lr": 0.003, "scope": "per-layer"})
    kd = _the_one(recipes, "train", "kd")
    assert kd.prune == prune.prune and kd.score == prune.score
    assert kd.train == StageChoice(strategy="kd", params={"epochs": 8, "lr": 0.003, "temperature": 4.0,
                                                          "alpha": 0.7})
    feature = _the_one(recipes, "train", "feature")
    assert feature.prune == prune.prune and feature.score == prune.score
    assert feature.train == StageChoice(strategy="feature", params={
        "epochs": 8, "lr": 0.003, "beta": 1.0, "layers": 2, "kd_alpha": 0.5, "temperature": 4.0})
    int8 = _the_one(recipes, "quantize", "static-int8")
    assert int8.prune.strategy == NONE and int8.train == baseline.train
    assert int8.quantize == StageChoice(strategy="static-int8", params={
        "calibration": "minmax", "per_channel": True, "calibration_batches": 8})
    dynamic = _the_one(recipes, "quantize", "dynamic-int8")
    assert dynamic.prune.strategy == NONE and dynamic.train == baseline.train
    assert dynamic.quantize == StageChoice(strategy="dynamic-int8", params={"per_channel": False,
                                                                            "reduce_range": False})
    fp16 = _the_one(recipes, "quantize", "fp16")
    assert fp16.prune.strategy == NONE and fp16.train == baseline.train
    assert fp16.quantize == StageChoice(strategy="fp16", params={})
    # QAT trains with the model: it gets the default fine-tuning, not the baseline's 0 epochs
    qat = _the_one(recipes, "quantize", "qat")
    assert qat.prune.strategy == NONE and qat.score.strategy == NONE
    assert qat.train == prune.train == StageChoice(strategy=NONE, params={"epochs": 8, "lr": 0.003})
    assert qat.quantize == StageChoice(strategy="qat", params={"averaging_constant": 0.01,
                                                               "calibration_batches": 8})
    # the chain: the default pruning, distilled as above, then static int8 as above
    assert chain == Recipe(score=prune.score, prune=prune.prune, train=kd.train, quantize=int8.quantize)


def test_default_recipes_take_the_nearest_value_of_a_narrowed_range(quick, host):
    recipes = default_recipes(quick, host.catalogue)
    # quick caps fine-tuning at 3 epochs and kd at [1, 3]: the default 8 is outside, the top is used
    assert recipes[1].train.params["epochs"] == 3
    assert recipes[2].train.params["epochs"] == 3
    assert recipes[3].quantize.params["calibration_batches"] == 4  # the default 8, capped at [2, 4]


def test_the_chain_is_tried_a_step_lighter_and_a_step_stronger(space, host):
    *_, chain, light, strong = default_recipes(space, host.catalogue)
    assert chain.prune.params["ratio"] == 0.5 and chain.train.params["epochs"] == 8
    # lighter: halfway from the default ratio to the bottom of [0.1, 0.8], the same training
    assert light == chain.model_copy(update={"prune": chain.prune.model_copy(
        update={"params": {**chain.prune.params, "ratio": pytest.approx(0.3)}})})
    # stronger: halfway to the top, and trained halfway from 8 epochs to the top of [2, 20]
    assert strong.prune.params == {**chain.prune.params, "ratio": pytest.approx(0.65)}
    assert strong.train.params == {**chain.train.params, "epochs": 14}
    assert (strong.score, strong.quantize) == (chain.score, chain.quantize)


@pytest.mark.parametrize("prune, train, ladder", [
    # a list of ratios: the neighbouring choices; epochs at the top of [1, 3] stay there
    ("channel: {ratio: [0.25, 0.5, 0.75]}", "kd: {epochs: [1, 3]}",
     ["channel 25% round 4 by magnitude p=1 -> kd T=4 alpha=0.7 3 epochs -> static-int8 minmax",
      "channel 75% round 4 by magnitude p=1 -> kd T=4 alpha=0.7 3 epochs -> static-int8 minmax"]),
    ("channel: {ratio: [0.5, 0.75]}", "kd: {}",  # no lighter ratio offered: only the stronger rung
     ["channel 75% round 4 by magnitude p=1 -> kd T=4 alpha=0.7 19 epochs -> static-int8 minmax"]),
    ("channel: {ratio: 0.5}", "kd: {}", []),  # a pinned ratio: no ladder
    ("unstructured: {}", "kd: {epochs: {low: 2, high: 20}}",
     ["unstructured 28% by magnitude p=1 -> kd T=4 alpha=0.7 8 epochs -> static-int8 minmax",
      "unstructured 72% by magnitude p=1 -> kd T=4 alpha=0.7 14 epochs -> static-int8 minmax"]),
])
def test_the_ladder_follows_the_space(prune, train, ladder, host, tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(f"stages:\n  score: [magnitude]\n  prune:\n    none: {{}}\n    {prune}\n"
                    f"  train:\n    {train}\n  quantize: [none, static-int8]\n")
    space = resolve_space(str(path), host.catalogue)
    recipes = default_recipes(space, host.catalogue)
    chain = next(i for i, r in enumerate(recipes) if r.prune.strategy != NONE and r.quantize.strategy != NONE)
    assert [r.describe(host.catalogue) for r in recipes[chain + 1:]] == ladder
    assert all(recipe_params(r, space, host.catalogue) is not None for r in recipes)  # all enqueued


def test_every_shipped_space_is_covered():
    assert {"default", "quick", "cnn", "transformer"} <= set(builtin_spaces())
    assert set(BUILTIN_SPACES) == set(builtin_spaces())


@pytest.mark.parametrize("runtime", [None, "onnxruntime", "torch"])
@pytest.mark.parametrize("name", BUILTIN_SPACES)
def test_default_recipes_are_inside_their_space_and_replay_exactly(name, runtime, host):
    space = resolve_space(name, host.catalogue, runtime)
    recipes = default_recipes(space, host.catalogue)
    assert recipes and recipes[0].describe(host.catalogue) == "baseline"
    assert len({r.model_dump_json() for r in recipes}) == len(recipes)  # no recipe twice
    study = _study()
    for recipe in recipes:
        params = recipe_params(recipe, space, host.catalogue)
        assert params is not None, recipe  # else the driver would silently not enqueue it
        study.enqueue_trial(params)
    assert [sample_recipe(study.ask(), space, host.catalogue) for _ in recipes] == recipes


@pytest.mark.parametrize("name", BUILTIN_SPACES)
def test_default_recipes_cover_each_technique_of_every_builtin_space(name, host):
    space = resolve_space(name, host.catalogue)
    recipes = default_recipes(space, host.catalogue)
    for stage in ("prune", "train", "quantize"):
        offered = set(space.strategies(stage)) - {NONE}
        assert offered <= {getattr(r, stage).strategy for r in recipes}, (name, stage)


def test_default_recipes_without_plain_fine_tuning_use_the_spaces_distiller(host, tmp_path):
    path = tmp_path / "kd_only.yaml"
    path.write_text("stages:\n  score: [magnitude]\n  prune: [none, channel]\n  train: [kd]\n"
                    "  quantize: [none, static-int8]\n")
    space = resolve_space(str(path), host.catalogue)
    recipes = default_recipes(space, host.catalogue)
    assert all(recipe_params(r, space, host.catalogue) is not None for r in recipes)  # all enqueued
    assert [r.describe(host.catalogue) for r in recipes] == [
        "channel 50% round 4 by magnitude p=1 -> kd T=4 alpha=0.7 8 epochs",
        "static-int8 minmax",
        "channel 50% round 4 by magnitude p=1 -> kd T=4 alpha=0.7 8 epochs -> static-int8 minmax",
        # the declared ranges: ratio [0.05, 0.9], epochs [0, 30]
        "channel 28% round 4 by magnitude p=1 -> kd T=4 alpha=0.7 8 epochs -> static-int8 minmax",
        "channel 70% round 4 by magnitude p=1 -> kd T=4 alpha=0.7 19 epochs -> static-int8 minmax"]


@pytest.mark.parametrize("stages, chain", [
    ("prune: [none, channel]\n  train: [none]\n  quantize: [none, static-int8]",
     "channel 50% round 4 by magnitude p=1 -> fine-tune 8 epochs lr=0.003 -> static-int8 minmax"),
    ("prune: [none, channel]\n  train: [none, kd]\n  quantize: [none, qat]", None),  # QAT trains: no chain
    ("prune: [none]\n  train: [none, kd]\n  quantize: [none, static-int8]", None),
])
def test_the_chained_default_needs_a_pruner_and_a_quantizer_that_does_not_train(stages, chain, host, tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(f"stages:\n  score: [magnitude]\n  {stages}\n")
    space = resolve_space(str(path), host.catalogue)
    described = [r.describe(host.catalogue) for r in default_recipes(space, host.catalogue)]
    chained = [d for d in described if "->" in d and ("int8" in d or "qat" in d) and "%" in d]
    assert chained[:1] == ([chain] if chain else [])


def _restricted_to(model, task, host, tmp_path):
    """The default space restricted to ``model``, as a run restricts it to its baseline."""
    from orchestrator.context import TrialContext

    space = resolve_space("default", host.catalogue)
    space.restrict_to(model, TrialContext(task=task, data=task.load_data(0), teacher=model, seed=0,
                                          workdir=tmp_path), host.catalogue)
    return space


def test_default_recipes_remove_whole_heads_of_a_bert_style_model(host, tmp_path):
    from orchestrator_plugins.tasks.tiny_text import TinyTextTask

    task = TinyTextTask(num_samples=200, hidden=32, heads=4)
    space = _restricted_to(task.build_model(), task, host, tmp_path)
    recipes = default_recipes(space, host.catalogue)
    channel = [r for r in recipes if r.prune.strategy == "channel"]
    assert len(channel) == 6  # fine-tuned, distilled two ways, the chain at three strengths
    assert all(r.prune.params["prune_heads"] is True for r in channel)
    assert all(recipe_params(r, space, host.catalogue) is not None for r in recipes)  # all enqueued
    # the unrestricted space, or one whose range excludes it, keeps the declared default
    unrestricted = default_recipes(resolve_space("default", host.catalogue), host.catalogue)
    assert all(r.prune.params["prune_heads"] is False for r in unrestricted if r.prune.strategy == "channel")
    space.stages["prune"]["channel"]["prune_heads"] = Choice([False])
    assert all(r.prune.params["prune_heads"] is False for r in default_recipes(space, host.catalogue)
               if r.prune.strategy == "channel")


class _DigitsWithAttention(nn.Module):
    """nn.MultiheadAttention over the 64 pixels: its head width is tied to the embedding width."""

    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(64, 2, batch_first=True)
        self.classifier = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)[:, None, :]
        return self.classifier(self.attention(x, x, x, need_weights=False)[0][:, 0])


@pytest.mark.parametrize("model", ["cnn", "multihead-attention", "one-head"])
def test_default_recipes_narrow_channels_where_heads_cannot_go(model, host, tmp_path, digits_task):
    """A one-head layer keeps its head, and caps every layer's share of heads removed at none."""
    from orchestrator_plugins.tasks.tiny_text import TinyTextTask

    task = TinyTextTask(num_samples=200, hidden=32, heads=1) if model == "one-head" else digits_task
    built = {"cnn": digits_task.build_model, "multihead-attention": _DigitsWithAttention,
             "one-head": task.build_model}[model]()
    space = _restricted_to(built, task, host, tmp_path)
    channel = [r for r in default_recipes(space, host.catalogue) if r.prune.strategy == "channel"]
    assert len(channel) == 6 and all(r.prune.params["prune_heads"] is False for r in channel)


@pytest.mark.parametrize("model", ["cnn", "multihead-attention", "four-heads", "one-head"])
def test_the_search_tries_whole_heads_only_where_there_are_heads_to_remove(model, host, tmp_path, digits_task):
    """On a CNN whole heads change nothing, and nn.MultiheadAttention's cannot go: the restricted
    space fixes prune_heads to false there, so no trial spends itself on it and no recipe says
    "heads". BERT-style blocks keep both (with one head, true keeps the attention whole)."""
    from orchestrator_plugins.tasks.tiny_text import TinyTextTask

    task = TinyTextTask(num_samples=200, hidden=32, heads=4 if model == "four-heads" else 1) \
        if model in ("four-heads", "one-head") else digits_task
    built = _DigitsWithAttention() if model == "multihead-attention" else task.build_model()
    space = _restricted_to(built, task, host, tmp_path)
    choices = space.stages["prune"]["channel"]["prune_heads"].choices
    channel = [r for r in _run("random", 0, space, host.catalogue, n=60) if r.prune.strategy == "channel"]
    assert channel
    tried = {r.prune.params["prune_heads"] for r in channel}
    pruner = host.catalogue.family("pruner")["channel"]
    if model in ("cnn", "multihead-attention"):
        assert choices == (False,) and tried == {False}
        assert not any("heads" in pruner.describe(r.prune.params) for r in channel)
    else:
        assert choices == (False, True) and tried == {False, True}
    assert resolve_space("default", host.catalogue).stages["prune"]["channel"]["prune_heads"].choices == (False, True)


def test_a_space_for_that_widens_or_drops_a_parameter_is_refused_by_name(host, tmp_path, digits_task, monkeypatch):
    pruner = host.catalogue.family("pruner")["channel"]
    monkeypatch.setattr(type(pruner), "space_for", lambda self, model, space: {**space, "ratio": Float(0.0, 1.0)})
    with pytest.raises(ConfigError, match=r"pruner 'channel': space_for\(\) widens 'ratio' from \[0.1, 0.8\]"):
        _restricted_to(digits_task.build_model(), digits_task, host, tmp_path)
    monkeypatch.setattr(type(pruner), "space_for", lambda self, model, space: {"ratio": space["ratio"]})
    with pytest.raises(ConfigError, match=r"pruner 'channel': space_for\(\) must keep every parameter"):
        _restricted_to(digits_task.build_model(), digits_task, host, tmp_path)
    monkeypatch.setattr(type(pruner), "space_for", lambda self, model, space: {**space, "prune_heads": False})
    with pytest.raises(ConfigError, match=r"space_for\(\) returns False for 'prune_heads', not a Float, Int or Choice"):
        _restricted_to(digits_task.build_model(), digits_task, host, tmp_path)


# --- seeded samplers -----------------------------------------------------------------------------

def _run(sampler_name: str, seed: int, space, catalogue, n: int = 12, multivariate: bool = False) -> list[Recipe]:
    sampler = make_sampler(SamplerConfig(name=sampler_name, n_startup_trials=4, population_size=4,
                                         multivariate=multivariate), seed)
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


def test_multivariate_tpe_is_seeded_too_and_samples_otherwise_after_its_startup(space, host):
    joint = _run("tpe", 5, space, host.catalogue, n=20, multivariate=True)
    assert _run("tpe", 5, space, host.catalogue, n=20, multivariate=True) == joint
    one_by_one = _run("tpe", 5, space, host.catalogue, n=20)
    assert joint[:4] == one_by_one[:4]  # the same random startup
    assert joint[4:] != one_by_one[4:]


def test_different_seeds_give_different_recipes(space, host):
    assert _run("random", 1, space, host.catalogue) != _run("random", 2, space, host.catalogue)


def test_derived_seeds_of_neighbouring_run_seeds_do_not_coincide():
    """With ``seed + n``, run seed 1's stream at step 40 was run seed 2's at step 39."""
    from orchestrator.study.samplers import derived_seed

    derived = {seed: [derived_seed(seed, n) for n in range(200)] for seed in (0, 1, 2)}
    assert len(set().union(*map(set, derived.values()))) == 600
    assert derived[1] == [derived_seed(1, n) for n in range(200)]  # and reproducible


@pytest.mark.parametrize("sampler_name, kind", [("tpe", optuna.samplers.TPESampler),
                                                ("nsga2", optuna.samplers.NSGAIISampler),
                                                ("random", optuna.samplers.RandomSampler)])
def test_make_sampler_builds_the_named_sampler(sampler_name, kind):
    assert isinstance(make_sampler(SamplerConfig(name=sampler_name), 0), kind)
