"""Search spaces: built-in by name or a user's YAML file, checked against the loaded plugins."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.errors import ConfigError
from orchestrator.params import Choice, Float, Int
from orchestrator.spaces import builtin_spaces, resolve_space
from orchestrator.strategies import STAGES

SPACES_DIR = Path(__file__).resolve().parents[2] / "search_spaces"


def _write(tmp_path, text: str, name: str = "mine.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _error(name_or_path: str, catalogue) -> str:
    with pytest.raises(ConfigError) as info:
        resolve_space(name_or_path, catalogue)
    message = str(info.value)
    assert "\n" not in message, message
    return message


# --- built-in spaces -----------------------------------------------------------------------------

def _yaml(name: str) -> dict:
    return yaml.safe_load((SPACES_DIR / f"{name}.yaml").read_text())


def test_builtin_spaces_lists_default_and_quick_with_descriptions():
    spaces = builtin_spaces()
    assert {"default", "quick", "cnn", "transformer"} <= set(spaces)
    assert set(spaces) == {p.stem for p in SPACES_DIR.glob("*.yaml")}  # every shipped file, nothing else
    assert spaces["default"].startswith("The whole catalogue")
    assert spaces["quick"].startswith("A small, fast space")
    for name, description in spaces.items():
        assert description == str(_yaml(name)["description"]).strip(), name
    assert all(description.strip() == description and description for description in spaces.values())


@pytest.mark.parametrize("name", ["default", "quick", "cnn", "transformer"])
def test_every_builtin_space_resolves_with_the_strategies_its_file_lists(name, host):
    space = resolve_space(name, host.catalogue)
    assert space.name == name and space.description == builtin_spaces()[name]
    raw = _yaml(name)["stages"]
    for stage in STAGES:
        assert space.strategies(stage) == list(raw.get(stage) or ["none"]), stage


def test_default_space_has_every_stage_with_the_expected_strategies(host):
    space = resolve_space("default", host.catalogue)
    assert space.name == "default"
    assert space.description == builtin_spaces()["default"]
    assert list(space.stages) == ["score", "prune", "train", "quantize"]
    # the whole built-in catalogue is offered: every built-in scorer, pruner, distiller and quantizer
    for stage, family in STAGES.items():
        builtin = [n for n in host.catalogue.family(family) if host.catalogue.owners[(family, n)].startswith("builtin.")]
        assert sorted(space.strategies(stage)) == sorted(builtin), stage
    # in the file's order, the baseline choice first where a stage has one
    raw = _yaml("default")["stages"]
    for stage in STAGES:
        assert space.strategies(stage) == list(raw[stage]), stage
    assert space.strategies("score")[0] == "magnitude"
    assert space.strategies("prune")[:2] == ["none", "channel"]
    assert space.strategies("train")[:2] == ["none", "kd"]
    assert space.strategies("quantize")[:2] == ["none", "static-int8"]


def test_default_space_narrows_the_declared_ranges_and_keeps_the_rest(host):
    stages = resolve_space("default", host.catalogue).stages
    assert stages["prune"]["channel"]["ratio"] == Float(0.1, 0.8)
    assert stages["prune"]["channel"]["global_pruning"] == Choice([False, True])
    assert stages["train"]["none"]["epochs"] == Int(0, 20)
    assert stages["train"]["kd"]["epochs"] == Int(2, 20)
    assert stages["train"]["kd"]["lr"] == Float(1e-4, 1e-2, log=True)
    assert stages["score"]["magnitude"] == {"p": Choice([1, 2])}
    assert stages["prune"]["none"] == {}
    assert set(stages["quantize"]["static-int8"]) == {"calibration", "per_channel", "calibration_batches"}


def test_quick_space_fixes_values_with_lists(host):
    stages = resolve_space("quick", host.catalogue).stages
    assert stages["score"]["magnitude"]["p"] == Choice([1])
    assert stages["prune"]["channel"]["global_pruning"] == Choice([False])
    assert stages["quantize"]["static-int8"]["calibration"] == Choice(["minmax"])
    assert stages["quantize"]["static-int8"]["calibration_batches"] == Int(2, 4, log=True)


# --- user files ----------------------------------------------------------------------------------

def test_a_yaml_file_path_is_resolved(host, tmp_path):
    path = _write(tmp_path, "description: |\n  Only int8.\n"
                            "stages:\n"
                            "  quantize:\n"
                            "    none: {}\n"
                            "    static-int8: {calibration: [minmax, entropy], calibration_batches: 4}\n")
    space = resolve_space(path, host.catalogue)
    assert space.name == "mine"
    assert space.description == "Only int8."
    assert space.strategies("quantize") == ["none", "static-int8"]
    static = space.stages["quantize"]["static-int8"]
    assert static["calibration"] == Choice(["minmax", "entropy"])
    assert static["calibration_batches"] == Choice([4])
    assert static["per_channel"] == Choice([True, False])


def test_a_stage_left_out_is_none(host, tmp_path):
    space = resolve_space(_write(tmp_path, "stages:\n  train: {kd: {}}\n"), host.catalogue)
    assert space.stages["score"] == {"none": {}}
    assert space.stages["prune"] == {"none": {}}
    assert space.stages["quantize"] == {"none": {}}
    assert space.strategies("train") == ["kd"]


def test_a_plain_list_of_strategies_keeps_every_declared_range(host, tmp_path):
    space = resolve_space(_write(tmp_path, "stages:\n  score: [magnitude]\n  prune: [none, channel]\n"),
                          host.catalogue)
    assert space.strategies("prune") == ["none", "channel"]
    assert space.stages["prune"]["channel"]["ratio"] == Float(0.05, 0.9)


def test_a_file_with_a_yml_suffix_and_a_file_without_suffix_are_read(host, tmp_path):
    for name in ("mine.yml", "plain"):
        space = resolve_space(_write(tmp_path, "stages:\n  quantize: [static-int8]\n", name), host.catalogue)
        assert space.strategies("quantize") == ["static-int8"]


# --- errors --------------------------------------------------------------------------------------

def test_an_unknown_strategy_names_it_its_stage_and_the_known_ones(host, tmp_path):
    message = _error(_write(tmp_path, "stages:\n  score: [magnitude]\n  prune: {none: {}, chanel: {}}\n"),
                     host.catalogue)
    assert message.startswith("search space 'mine': stages.prune.chanel: ")
    assert "no plugin provides pruner 'chanel'" in message
    assert "did you mean 'channel'?" in message
    known = sorted(host.catalogue.family("pruner"))
    assert {"channel", "none"} <= set(known)
    assert message.endswith("; known: " + ", ".join(known))


def test_an_unknown_strategy_without_a_close_match_still_lists_the_known_ones(host, tmp_path):
    message = _error(_write(tmp_path, "stages:\n  quantize: [fp8]\n"), host.catalogue)
    assert "stages.quantize.fp8" in message
    assert "did you mean" not in message
    assert "no plugin provides quantizer 'fp8'" in message
    known = sorted(host.catalogue.family("quantizer"))
    assert {"none", "static-int8"} <= set(known)
    assert message.endswith("; known: " + ", ".join(known))


def test_an_unknown_parameter_names_it_and_the_declared_ones(host, tmp_path):
    message = _error(_write(tmp_path, "stages:\n  score: [magnitude]\n  prune: {channel: {ratoi: 0.5}}\n"),
                     host.catalogue)
    declared = sorted(host.catalogue.family("pruner")["channel"].space)
    assert {"global_pruning", "ratio"} <= set(declared)
    assert message == ("search space 'mine': stages.prune.channel: unknown parameter 'ratoi' "
                       f"(did you mean 'ratio'?); known: {', '.join(declared)}")


def test_an_unknown_stage_is_named(host, tmp_path):
    message = _error(_write(tmp_path, "stages:\n  distill: {kd: {}}\n"), host.catalogue)
    assert message.startswith("search space 'mine': unknown stage 'distill'")
    assert "known: prune, quantize, score, train" in message


def test_an_unknown_top_level_key_is_named(host, tmp_path):
    message = _error(_write(tmp_path, "stage:\n  prune: [none]\n"), host.catalogue)
    assert message == "search space 'mine': unknown key(s) ['stage']; use description, stages"


def test_a_range_that_widens_the_declared_one_is_rejected(host, tmp_path):
    message = _error(_write(tmp_path, "stages:\n  train: {kd: {epochs: {low: 0, high: 50}}}\n"), host.catalogue)
    assert message == "search space 'mine': stages.train.kd.epochs: range [0, 50] widens the declared [0, 30]"


def test_a_choice_outside_the_declared_ones_is_rejected(host, tmp_path):
    message = _error(_write(tmp_path, "stages:\n  score: {magnitude: {p: [1, 3]}}\n  prune: [channel]\n"),
                     host.catalogue)
    assert message == "search space 'mine': stages.score.magnitude.p: 3 is outside the declared space {1, 2}"


def test_a_pruner_that_needs_scores_without_a_scorer_is_rejected(host, tmp_path):
    message = _error(_write(tmp_path, "stages:\n  prune: [none, channel]\n"), host.catalogue)
    assert message == "search space 'mine': pruner 'channel' needs a scorer; list one under stages.score"


def test_listing_only_the_none_scorer_does_not_satisfy_a_pruner(host, tmp_path):
    message = _error(_write(tmp_path, "stages:\n  score: [none]\n  prune: [channel]\n"), host.catalogue)
    assert "pruner 'channel' needs a scorer" in message


def test_an_unknown_builtin_space_name_lists_the_builtin_ones(host):
    message = _error("defualt", host.catalogue)
    assert message.startswith("field 'search_space': unknown space 'defualt'")
    assert "did you mean 'default'?" in message
    known = sorted(builtin_spaces())
    assert {"default", "quick", "cnn", "transformer"} <= set(known)
    assert message.endswith("; known: " + ", ".join(known))


def test_a_missing_yaml_file_is_a_config_error(host, tmp_path):
    path = str(tmp_path / "gone.yaml")
    assert _error(path, host.catalogue) == f"field 'search_space': no such file {path}"


def test_malformed_space_yaml_is_a_one_line_config_error(host, tmp_path):
    message = _error(_write(tmp_path, "stages:\n  prune: [none, channel\n"), host.catalogue)
    assert message.startswith("search space 'mine': malformed YAML")


@pytest.mark.parametrize("text, words", [
    ("- prune\n- none\n", "expected a mapping with 'stages'"),
    ("stages: [prune]\n", "'stages' must be a mapping of stage -> strategies"),
    ("stages:\n  prune: none\n", "stages.prune must map strategy names to parameters"),
    ("stages:\n  prune: {none: 0.5}\n", "stages.prune.none: expected a mapping of parameter -> override"),
])
def test_a_space_of_the_wrong_shape_is_a_config_error(host, tmp_path, text, words):
    message = _error(_write(tmp_path, text), host.catalogue)
    assert message.startswith("search space 'mine'")
    assert words in message


def test_a_fractional_epoch_bound_is_a_config_error_naming_the_field(host, tmp_path):
    message = _error(_write(tmp_path, "stages:\n  train: {none: {epochs: {low: 0.5, high: 3}}}\n"),
                     host.catalogue)
    assert message.startswith("search space 'mine': stages.train.none.epochs")


def test_a_learning_rate_bound_written_as_1e_3_is_accepted_or_named(host, tmp_path):
    path = _write(tmp_path, "stages:\n  train: {kd: {lr: {low: 1e-3}}}\n")
    try:
        space = resolve_space(path, host.catalogue)
    except ConfigError as exc:
        assert str(exc).startswith("search space 'mine': stages.train.kd.lr")
    else:
        assert space.stages["train"]["kd"]["lr"] == Float(1e-3, 1e-2, log=True)


def test_a_train_stage_left_out_trains_nothing(host, tmp_path):
    path = tmp_path / "prune_only.yaml"
    path.write_text("stages:\n  score: [magnitude]\n  prune: [channel]\n")
    space = resolve_space(str(path), host.catalogue)
    assert list(space.stages["train"]) == ["none"]
    assert space.stages["train"]["none"]["epochs"].choices == (0,)


def test_numbers_yaml_reads_as_strings_work_in_choice_lists(host, tmp_path):
    path = tmp_path / "lr.yaml"
    path.write_text("stages:\n  train: {kd: {lr: [1e-3, 3e-3]}}\n")
    assert resolve_space(str(path), host.catalogue).stages["train"]["kd"]["lr"].choices == (1e-3, 3e-3)
