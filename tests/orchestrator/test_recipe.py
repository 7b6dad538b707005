"""Recipes as plain data: exact YAML round trips, strict keys, and a description in words."""

from __future__ import annotations

import pytest

from orchestrator.errors import ConfigError

from orchestrator.recipe import NONE, Recipe, StageChoice

FULL = Recipe(
    score=StageChoice(strategy="magnitude", params={"p": 1}),
    prune=StageChoice(strategy="channel", params={"ratio": 0.5, "global_pruning": False}),
    train=StageChoice(strategy="kd", params={"epochs": 8, "lr": 0.003, "temperature": 4.0, "alpha": 0.7}),
    quantize=StageChoice(strategy="static-int8", params={"calibration": "minmax", "per_channel": True,
                                                         "calibration_batches": 8}),
)


def test_an_empty_recipe_is_none_at_every_stage():
    recipe = Recipe()
    assert [(stage, choice.strategy, choice.params) for stage, choice in recipe.stages()] == [
        ("score", NONE, {}), ("prune", NONE, {}), ("train", NONE, {}), ("quantize", NONE, {})]


def test_stages_come_in_canonical_order():
    assert [stage for stage, _ in FULL.stages()] == ["score", "prune", "train", "quantize"]


def test_yaml_round_trip_is_exact():
    again = Recipe.from_yaml(FULL.to_yaml())
    assert again == FULL
    assert again.model_dump() == FULL.model_dump()
    assert again.to_yaml() == FULL.to_yaml()


@pytest.mark.parametrize("value", [0.1 + 0.2, 1e-5, 3.0000000001e-3, 2 ** 40, True, "1e3", "none", -0.0])
def test_yaml_round_trip_keeps_awkward_values_and_their_types(value):
    recipe = Recipe(train=StageChoice(strategy="kd", params={"x": value}))
    again = Recipe.from_yaml(recipe.to_yaml())
    assert again.train.params["x"] == value
    assert type(again.train.params["x"]) is type(value)


def test_yaml_keeps_parameter_order():
    text = FULL.to_yaml()
    assert text.index("temperature") < text.index("alpha")
    assert list(Recipe.from_yaml(text).train.params) == ["epochs", "lr", "temperature", "alpha"]


def test_load_reads_a_recipe_file(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(FULL.to_yaml())
    assert Recipe.load(path) == FULL
    assert Recipe.load(str(path)) == FULL


def test_an_empty_yaml_document_is_the_baseline_recipe():
    assert Recipe.from_yaml("") == Recipe()


def test_a_stage_left_out_of_the_yaml_is_none():
    recipe = Recipe.from_yaml("prune: {strategy: channel, params: {ratio: 0.3}}\n")
    assert recipe.prune == StageChoice(strategy="channel", params={"ratio": 0.3})
    assert recipe.score.strategy == recipe.train.strategy == recipe.quantize.strategy == NONE


@pytest.mark.parametrize("text, key", [
    ("distill: {strategy: kd}\n", "distill"),
    ("prune: {strategy: channel, parms: {ratio: 0.3}}\n", "parms"),
])
def test_unknown_keys_are_rejected_and_named(text, key):
    with pytest.raises(ConfigError) as info:
        Recipe.from_yaml(text)
    message = str(info.value)
    assert f"{key}': unknown key" in message and "\n" not in message


def test_describe_the_full_recipe_in_words(host):
    assert FULL.describe(host.catalogue) == ("channel 50% by magnitude p=1 -> kd T=4 alpha=0.7 8 epochs "
                                             "-> static-int8 minmax")


def test_describe_the_empty_recipe_as_baseline(host):
    assert Recipe().describe(host.catalogue) == "baseline"
    assert Recipe().describe() == "baseline"


def test_describe_skips_fine_tuning_for_zero_epochs(host):
    recipe = Recipe(train=StageChoice(strategy=NONE, params={"epochs": 0, "lr": 0.003}))
    assert recipe.describe(host.catalogue) == "baseline"


def test_describe_names_fine_tuning(host):
    recipe = Recipe(score=StageChoice(strategy="magnitude", params={"p": 2}),
                    prune=StageChoice(strategy="channel", params={"ratio": 0.25, "global_pruning": True}),
                    train=StageChoice(strategy=NONE, params={"epochs": 8, "lr": 0.003}))
    assert recipe.describe(host.catalogue) == "channel 25% global by magnitude p=2 -> fine-tune 8 epochs lr=0.003"


def test_describe_per_tensor_quantization(host):
    recipe = Recipe(quantize=StageChoice(strategy="static-int8", params={"calibration": "entropy",
                                                                         "per_channel": False}))
    assert recipe.describe(host.catalogue) == "static-int8 entropy per-tensor"


def test_describe_without_a_catalogue_lists_raw_parameters():
    assert FULL.describe() == ("channel ratio=0.5 global_pruning=False by magnitude p=1 "
                               "-> kd epochs=8 lr=0.003 temperature=4.0 alpha=0.7 "
                               "-> static-int8 calibration=minmax per_channel=True calibration_batches=8")


def test_describe_falls_back_to_raw_parameters_for_an_unknown_strategy(host):
    recipe = Recipe(quantize=StageChoice(strategy="fp8", params={"scale": 2}))
    assert recipe.describe(host.catalogue) == "fp8 scale=2"
