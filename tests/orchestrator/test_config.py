"""The run config: loaded from YAML or a dict, defaults filled in, every mistake a one-line ConfigError."""

from __future__ import annotations

import pytest
import yaml

from helpers import quick_config
from orchestrator.config import Bound, RunConfig, dump_config, load_config
from orchestrator.errors import ConfigError, UsageError
from orchestrator.metric_names import METRICS


def _error(source) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(source)
    message = str(info.value)
    assert "\n" not in message, message
    return message


# --- loading -------------------------------------------------------------------------------------

def test_load_config_from_a_yaml_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "task:\n"
        "  name: digits\n"
        "  params: {width: 8}\n"
        "search_space: quick\n"
        "objectives: [accuracy, {metric: size_mb, direction: minimize}]\n"
        "constraints:\n"
        "  accuracy_drop: {max: 2.5}\n"
        "budget: {n_trials: 7, timeout: 60}\n"
        "sampler: {name: random}\n"
        "seed: 3\n")
    config = load_config(path)
    assert config.task.name == "digits"
    assert config.task.params == {"width": 8}
    assert config.search_space == "quick"
    assert [(o.metric, o.direction) for o in config.objectives] == [("accuracy", "maximize"),
                                                                    ("size_mb", "minimize")]
    assert config.constraints == {"accuracy_drop": Bound(max=2.5)}
    assert (config.budget.n_trials, config.budget.timeout) == (7, 60.0)
    assert config.sampler.name == "random"
    assert config.seed == 3


def test_load_config_accepts_a_path_given_as_a_string(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("task: mnist1d\n")
    assert load_config(str(path)).task.name == "mnist1d"


def test_load_config_from_a_dict():
    config = load_config(quick_config())
    assert config.task.name == "digits"
    assert config.task.params == {"width": 8}
    assert config.budget.n_trials == 4
    assert config.constraints["accuracy_drop"].max == 5.0
    assert config.latency.batch_size == 64


def test_load_config_returns_a_run_config_unchanged():
    config = load_config({"task": "digits"})
    assert load_config(config) is config


def test_defaults_are_filled_in():
    config = load_config({"task": {"name": "digits"}})
    assert [(o.metric, o.direction) for o in config.objectives] == [
        ("accuracy", "maximize"), ("size_mb", "minimize"), ("latency_ms", "minimize")]
    assert config.search_space == "default"
    assert config.constraints == {}
    assert config.budget.n_trials == 30 and config.budget.timeout is None
    assert config.sampler.name == "tpe"
    assert config.seed == 0
    assert config.latency.runtime == "onnxruntime"
    assert config.execution.executor == "ray" and config.execution.address is None
    assert config.execution.storage is None and config.early_stopping.enabled
    assert config.keep_all_artifacts is False
    assert config.task.params == {}


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_an_objective_without_direction_gets_the_natural_direction(metric):
    config = load_config({"task": "digits", "objectives": [metric]})
    assert config.objectives[0].direction == METRICS[metric][0]


def test_an_explicit_direction_is_kept():
    config = load_config({"task": "digits", "objectives": [{"metric": "size_mb", "direction": "maximize"}]})
    assert config.objectives[0].direction == "maximize"


def test_task_shorthand_is_a_task_by_name():
    config = load_config({"task": "digits"})
    assert config.task.name == "digits"
    assert config.task.params == {}
    assert config == load_config({"task": {"name": "digits"}})


def test_a_constraint_may_give_one_or_both_bounds():
    config = load_config({"task": "digits", "constraints": {
        "accuracy": {"min": 0.9}, "size_mb": {"max": 0.5}, "latency_ms": {"min": 0.1, "max": 2}}})
    assert config.constraints["accuracy"] == Bound(min=0.9)
    assert config.constraints["size_mb"] == Bound(max=0.5)
    assert config.constraints["latency_ms"] == Bound(min=0.1, max=2.0)


# --- errors --------------------------------------------------------------------------------------

def test_config_error_is_a_usage_error_with_exit_code_2():
    with pytest.raises(UsageError) as info:
        load_config({"task": "digits", "budget": {"n_trals": 3}})
    assert info.value.exit_code == 2


@pytest.mark.parametrize("source, field", [
    ({"task": "digits", "budget": {"n_trals": 3}}, "budget.n_trals"),
    ({"task": "digits", "sampler": {"nmae": "tpe"}}, "sampler.nmae"),
    ({"task": "digits", "seeds": 1}, "seeds"),
    ({"task": {"name": "digits", "parms": {}}}, "task.parms"),
    ({"task": "digits", "constraints": {"accuracy": {"minimum": 0.9}}}, "constraints.accuracy.minimum"),
])
def test_an_unknown_key_is_a_config_error_naming_the_field(source, field):
    assert _error(source) == f"config: field '{field}': unknown key"


def test_an_unknown_key_in_a_file_names_the_file_and_the_field(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("task: digits\nbudget:\n  n_trals: 5\n")
    assert _error(path) == f"{path}: field 'budget.n_trals': unknown key"


def test_malformed_yaml_is_a_one_line_config_error_with_the_line_number(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("task: digits\nbudget:\n  n_trials: 5\n    seed: 1\n")
    message = _error(path)
    assert message.startswith(f"{path}: line 4: malformed YAML")
    assert "mapping values are not allowed here" in message


def test_a_tab_in_yaml_is_reported_with_its_line(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("task: digits\n\tseed: 1\n")
    message = _error(path)
    assert message.startswith(f"{path}: line 2: malformed YAML")


def test_a_missing_file_is_a_config_error(tmp_path):
    path = tmp_path / "nope.yaml"
    assert _error(path) == f"{path}: no such config file"


@pytest.mark.parametrize("text", ["- task\n- digits\n", "just a string\n", ""])
def test_a_file_that_is_not_a_mapping_is_a_config_error(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    assert _error(path) == f"{path}: expected a mapping of config fields at the top level"


def test_a_missing_task_is_a_config_error_naming_it():
    assert _error({"seed": 1}) == "config: field 'task': Field required"


def test_a_constraint_on_an_unknown_metric_names_it_and_lists_the_known_metrics():
    message = _error({"task": "digits", "constraints": {"acuracy": {"min": 0.9}}})
    assert message.startswith("config: field 'constraints': ")
    assert "'acuracy'" in message
    assert "did you mean 'accuracy'?" in message
    assert "known: " + ", ".join(sorted(METRICS)) in message


def test_an_objective_on_an_unknown_metric_names_it_and_its_position():
    message = _error({"task": "digits", "objectives": ["accuracy", "sise_mb"]})
    assert message.startswith("config: field 'objectives.1': unknown metric 'sise_mb'")
    assert "did you mean 'size_mb'?" in message


def test_a_constraint_with_min_above_max_is_a_config_error():
    message = _error({"task": "digits", "constraints": {"accuracy": {"min": 0.95, "max": 0.9}}})
    assert message == "config: field 'constraints.accuracy': min 0.95 is above max 0.9"


def test_a_constraint_with_neither_bound_is_a_config_error():
    message = _error({"task": "digits", "constraints": {"size_mb": {}}})
    assert message == "config: field 'constraints.size_mb': a constraint needs 'min', 'max' or both"


@pytest.mark.parametrize("n_trials", [0, -3])
def test_a_budget_of_no_trials_is_rejected(n_trials):
    message = _error({"task": "digits", "budget": {"n_trials": n_trials}})
    assert message.startswith("config: field 'budget.n_trials': ")
    assert "greater than 0" in message


def test_objectives_naming_a_metric_twice_are_rejected():
    message = _error({"task": "digits", "objectives": ["accuracy", "size_mb", {"metric": "accuracy"}]})
    assert "field 'objectives': a metric is named twice" in message
    assert "'accuracy', 'size_mb', 'accuracy'" in message


def test_no_objectives_at_all_are_rejected():
    message = _error({"task": "digits", "objectives": []})
    assert message.startswith("config: field 'objectives': ")


def test_an_unknown_sampler_is_a_config_error_listing_the_choices():
    message = _error({"task": "digits", "sampler": {"name": "cmaes"}})
    assert message.startswith("config: field 'sampler.name': ")
    assert "'tpe'" in message and "'nsga2'" in message and "'random'" in message


def test_several_mistakes_are_reported_together_on_one_line():
    message = _error({"task": "digits", "seed": "x", "budget": {"n_trials": 0}})
    assert "field 'seed'" in message
    assert "field 'budget.n_trials'" in message


# --- dump ----------------------------------------------------------------------------------------

def test_dump_config_round_trips(tmp_path):
    config = load_config(quick_config(objectives=["accuracy", {"metric": "gzip_mb", "direction": "minimize"}],
                                      constraints={"accuracy_drop": {"max": 5.0}, "latency_ms": {"min": 0.01}},
                                      sampler={"name": "nsga2", "population_size": 4}, seed=11,
                                      keep_all_artifacts=True))
    text = dump_config(config)
    assert RunConfig.model_validate(yaml.safe_load(text)) == config
    path = tmp_path / "resolved.yaml"
    path.write_text(text)
    again = load_config(path)
    assert again == config
    assert dump_config(again) == text


def test_dump_config_writes_every_default_explicitly():
    text = dump_config(load_config({"task": "digits"}))
    assert "direction: maximize" in text
    assert "n_trials: 30" in text
    assert "search_space: default" in text


@pytest.mark.parametrize("source, field", [({"seed": -1}, "seed"), ({"seed": 2**32}, "seed"),
                                           ({"sampler": {"seed": -3}}, "sampler.seed")])
def test_a_seed_numpy_cannot_take_is_refused_by_name(source, field):
    with pytest.raises(ConfigError, match=rf"{field}\b"):
        load_config({"task": "digits", **source})


@pytest.mark.parametrize("bound", [float("inf"), float("nan")])
def test_constraint_bounds_must_be_finite(bound):
    with pytest.raises(ConfigError, match="constraints.size_mb.max"):
        load_config({"task": "digits", "constraints": {"size_mb": {"max": bound}}})


def test_a_config_that_is_not_text_is_one_clear_error(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"\xff\xfe\x00task: digits")
    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        load_config(path)
