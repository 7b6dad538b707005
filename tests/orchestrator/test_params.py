"""Hyper-parameters declared as data, their Optuna distributions, and search-space narrowing."""

from __future__ import annotations

import math

import optuna.distributions as od
import pytest
from pydantic import ValidationError

from orchestrator.errors import ConfigError
from orchestrator.params import (Choice, Float, Int, default_value, describe, halfway, narrow, nearest, step,
                                 within)

WHERE = "search space 'mine': stages.prune.channel.ratio"


# --- distributions -------------------------------------------------------------------------------

def test_float_becomes_an_optuna_float_distribution_with_its_scale():
    dist = Float(1e-4, 1e-2, log=True).distribution()
    assert dist == od.FloatDistribution(1e-4, 1e-2, log=True)
    assert Float(0.1, 0.9, step=0.1).distribution() == od.FloatDistribution(0.1, 0.9, step=0.1)


def test_int_becomes_an_optuna_int_distribution():
    assert Int(0, 30).distribution() == od.IntDistribution(0, 30)
    assert Int(2, 32, log=True).distribution() == od.IntDistribution(2, 32, log=True)


def test_choice_keeps_its_choices_in_order():
    param = Choice(["minmax", "entropy", "percentile"])
    assert param.choices == ("minmax", "entropy", "percentile")
    assert param.distribution() == od.CategoricalDistribution(("minmax", "entropy", "percentile"))


@pytest.mark.parametrize("param, inside, outside", [
    (Float(0.05, 0.9), [0.05, 0.5, 0.9], [0.0, 0.95, "half"]),
    (Int(0, 30), [0, 12, 30], [-1, 31]),
    (Choice(["minmax", "entropy"]), ["minmax", "entropy"], ["percentile", 3]),
])
def test_contains_is_true_exactly_inside_the_declared_space(param, inside, outside):
    assert all(param.contains(v) for v in inside)
    assert not any(param.contains(v) for v in outside)


def test_params_are_frozen_values():
    param = Float(0.1, 0.9)
    with pytest.raises(ValidationError, match="frozen"):
        param.low = 0.0  # type: ignore[misc]
    assert param == Float(0.1, 0.9)


def test_describe_shows_ranges_and_choices():
    assert describe(Float(0.05, 0.9)) == "[0.05, 0.9]"
    assert describe(Float(1e-4, 1e-2, log=True)) == "[0.0001, 0.01, log]"
    assert describe(Choice([1, 2])) == "{1, 2}"
    assert describe(Int(0, 20, step=2)) == "[0, 20, step 2]" and describe(Int(0, 20)) == "[0, 20]"


# --- narrowing -----------------------------------------------------------------------------------

def test_narrow_with_a_list_picks_choices_of_a_categorical():
    assert narrow(Choice(["minmax", "entropy", "percentile"]), ["minmax"], WHERE) == Choice(["minmax"])


def test_narrow_with_a_list_turns_a_range_into_choices():
    narrowed = narrow(Float(0.05, 0.9), [0.25, 0.5], WHERE)
    assert narrowed == Choice([0.25, 0.5])
    assert narrowed.distribution() == od.CategoricalDistribution((0.25, 0.5))


def test_narrow_with_a_range_keeps_type_and_scale():
    narrowed = narrow(Float(1e-4, 1e-2, log=True), {"low": 1e-3}, WHERE)
    assert narrowed == Float(1e-3, 1e-2, log=True)
    narrowed = narrow(Int(0, 30), {"low": 2, "high": 12}, WHERE)
    assert isinstance(narrowed, Int)
    assert (narrowed.low, narrowed.high) == (2, 12)


def test_narrow_with_a_range_may_set_a_step():
    narrowed = narrow(Float(0.05, 0.9), {"low": 0.1, "high": 0.8, "step": 0.1}, WHERE)
    assert narrowed == Float(0.1, 0.8, step=0.1)


def test_narrow_with_a_scalar_fixes_the_value():
    assert narrow(Float(0.05, 0.9), 0.5, WHERE) == Choice([0.5])
    assert narrow(Int(0, 30), 4, WHERE) == Choice([4])
    assert narrow(Choice([False, True]), False, WHERE) == Choice([False])


def test_narrowing_to_the_declared_range_itself_is_allowed():
    assert narrow(Float(0.05, 0.9), {"low": 0.05, "high": 0.9}, WHERE) == Float(0.05, 0.9)


@pytest.mark.parametrize("inner, outer, inside", [
    (Choice([False]), Choice([False, True]), True),
    (Choice([1]), Choice([True, False]), False),  # True == 1, but not the same choice
    (Choice([0.2, 0.4]), Float(0.1, 0.9), True),
    (Choice([0.95]), Float(0.1, 0.9), False),
    (Float(0.2, 0.5, log=True), Float(0.1, 0.9), True),
    (Float(0.0, 0.5), Float(0.1, 0.9), False),
    (Int(2, 4), Int(1, 8), True),
    (Int(2, 4), Int(0, 8, step=2), False),  # 3 is off the grid
    (Int(2, 6, step=4), Int(0, 8, step=2), True),
    (Int(2, 4), Float(1, 8), False),
    (Float(0.2, 0.5), Choice([0.2, 0.5]), False),
    (Choice([2.0]), Int(1, 8), False),  # a float never reaches an integer parameter
    (Float(0.5, 0.2), Float(0.1, 0.9), False),  # no valid range
    (Int(2, 7, step=2), Int(0, 9, step=2), True),  # Optuna samples 2 .. 6: inside, on the grid
])
def test_within_says_whether_a_narrowing_allows_nothing_new(inner, outer, inside):
    assert within(inner, outer) is inside
    if inside:  # every narrowing a search space may write is within its declared parameter
        assert within(outer, outer)


@pytest.mark.parametrize("override", [{"low": 1, "high": 20, "step": 2}, {"low": 0.05, "high": 0.9, "step": 0.1}])
def test_a_range_narrowed_onto_a_grid_that_misses_its_high_is_within_itself(override):
    """Optuna moves such a bound down onto the grid, and says so as the space is read; the narrowed
    range is still the space's own."""
    declared = Int(0, 20) if isinstance(override["low"], int) else Float(0.0, 1.0)
    with pytest.warns(UserWarning, match="not divisible by `step`"):
        narrowed = narrow(declared, override, WHERE)
    assert within(narrowed, narrowed) and within(narrowed, declared)


@pytest.mark.parametrize("override, words", [
    ({"low": 0.01}, "widens the declared [0.05, 0.9]"),
    ({"high": 0.95}, "widens the declared [0.05, 0.9]"),
    ({"low": 0.0, "high": 1.0}, "range [0.0, 1.0] widens"),
])
def test_a_range_that_widens_is_a_config_error_naming_the_field(override, words):
    with pytest.raises(ConfigError) as info:
        narrow(Float(0.05, 0.9), override, WHERE)
    message = str(info.value)
    assert message.startswith(WHERE + ":")
    assert words in message
    assert "\n" not in message


@pytest.mark.parametrize("param, override, words", [
    (Float(0.05, 0.9), [0.5, 1.5], "1.5 is outside the declared space [0.05, 0.9]"),
    (Float(0.05, 0.9), 0.95, "0.95 is outside the declared space [0.05, 0.9]"),
    (Int(0, 30), 31, "31 is outside the declared space [0, 30]"),
    (Choice(["minmax", "entropy"]), ["histogram"], "'histogram' is outside the declared space {'minmax', 'entropy'}"),
    (Choice(["minmax", "entropy"]), "histogram", "'histogram' is outside"),
])
def test_a_value_outside_the_declared_space_is_a_config_error_naming_the_field(param, override, words):
    with pytest.raises(ConfigError) as info:
        narrow(param, override, WHERE)
    assert str(info.value).startswith(WHERE + ":")
    assert words in str(info.value)


def test_a_range_with_low_above_high_is_a_config_error():
    with pytest.raises(ConfigError, match=r"low 0\.6 is above high 0\.2") as info:
        narrow(Float(0.05, 0.9), {"low": 0.6, "high": 0.2}, WHERE)
    assert str(info.value).startswith(WHERE)


def test_an_empty_list_of_choices_is_a_config_error():
    with pytest.raises(ConfigError, match="an empty list of choices") as info:
        narrow(Choice([1, 2]), [], WHERE)
    assert str(info.value).startswith(WHERE)


def test_a_range_for_a_categorical_is_a_config_error():
    with pytest.raises(ConfigError, match="categorical parameter takes a list of choices") as info:
        narrow(Choice([1, 2]), {"low": 1, "high": 2}, WHERE)
    assert str(info.value).startswith(WHERE)


def test_an_unknown_range_key_is_a_config_error_listing_the_known_keys():
    with pytest.raises(ConfigError) as info:
        narrow(Float(0.05, 0.9), {"lo": 0.1}, WHERE)
    message = str(info.value)
    assert message.startswith(WHERE)
    assert "['lo']" in message
    assert "low, high, log, step" in message


def test_a_fractional_bound_on_an_int_is_a_config_error_naming_the_field():
    where = "search space 'mine': stages.train.none.epochs"
    with pytest.raises(ConfigError) as info:
        narrow(Int(0, 30), {"low": 0.5}, where)
    assert str(info.value).startswith(where)


def test_a_non_numeric_bound_is_a_config_error_naming_the_field():
    where = "search space 'mine': stages.train.kd.lr"
    with pytest.raises(ConfigError) as info:
        narrow(Float(1e-4, 1e-2, log=True), {"low": "one in a thousand"}, where)
    assert str(info.value).startswith(where)


def test_a_log_scale_on_a_range_that_starts_at_zero_is_a_config_error():
    where = "search space 'mine': stages.train.none.epochs"
    with pytest.raises(ConfigError) as info:
        narrow(Int(0, 30), {"log": True}, where)
    assert str(info.value).startswith(where)


# --- default values ------------------------------------------------------------------------------

def test_default_value_of_a_choice_is_the_first_choice():
    assert default_value(Choice(["minmax", "entropy"])) == "minmax"
    assert default_value(Choice([False, True])) is False


def test_default_value_of_a_float_range_is_its_middle():
    value = default_value(Float(0.1, 0.5))
    assert isinstance(value, float)
    assert value == pytest.approx(0.3)


def test_default_value_of_a_log_range_is_its_geometric_middle():
    assert default_value(Float(1e-4, 1e-2, log=True)) == pytest.approx(1e-3)
    value = default_value(Int(2, 32, log=True))
    assert value == 8 and isinstance(value, int)


def test_default_value_of_an_int_range_is_an_int_in_the_range():
    value = default_value(Int(0, 12))
    assert value == 6 and isinstance(value, int)
    for param in (Int(0, 3), Int(1, 3), Int(0, 5), Int(7, 7)):
        assert param.contains(default_value(param))


@pytest.mark.parametrize("param", [Int(1, 3, step=2), Float(0.0, 1.5, step=0.5)])
def test_default_value_of_a_stepped_range_lies_on_the_grid(param):
    assert param.contains(default_value(param))


def test_default_values_are_finite_numbers_inside_the_builtin_declared_spaces(host):
    for family in ("scorer", "pruner", "distiller", "quantizer"):
        for name, strategy in host.catalogue.family(family).items():
            for pname, param in strategy.space.items():
                value = default_value(param)
                assert param.contains(value), (family, name, pname, value)
                if not isinstance(param, Choice):
                    assert math.isfinite(value)


# --- the nearest allowed value, and a step along a range -----------------------------------------

@pytest.mark.parametrize("param, value, expected", [
    (Float(0.1, 0.8), 0.5, 0.5),           # allowed: itself
    (Int(1, 3), 8, 3),                     # above a narrowed range: its top, not its middle
    (Int(4, 30), 1, 4),
    (Float(0.0, 1.5, step=0.5), 0.7, 0.5),  # on the grid the range samples from
    (Choice([1, 3]), 8, 3),                # the closest numeric choice
    (Choice([0.25, 0.5, 0.75]), 0.6, 0.5),
    (Choice(["minmax", "entropy"]), "percentile", "minmax"),  # not a number: the first choice
    (Choice([False, True]), 1, False),     # a bool is not a number here
])
def test_nearest_is_the_allowed_value_closest_to_a_default_the_space_excludes(param, value, expected):
    got = nearest(param, value)
    assert got == expected and type(got) is type(expected)
    assert param.contains(got)


@pytest.mark.parametrize("param, value, up, expected", [
    (Float(0.1, 0.8), 0.5, True, 0.65),    # halfway to the top
    (Float(0.1, 0.8), 0.5, False, 0.3),    # halfway to the bottom
    (Int(2, 20), 8, True, 14),
    (Int(2, 20), 8, False, 5),
    (Float(1e-4, 1e-2, log=True), 1e-3, True, 10 ** -2.5),  # geometric on a log scale
    (Choice([0.25, 0.5, 0.75]), 0.5, True, 0.75),  # the next choice
    (Choice([0.75, 0.25, 0.5]), 0.5, False, 0.25),
    (Int(1, 3), 3, True, None),            # at the top: no room
    (Choice([0.5]), 0.5, False, None),
    (Int(7, 8), 7, True, 8),
    (Choice(["a", "b"]), "a", True, None),  # not a number
])
def test_step_moves_halfway_to_the_end_of_the_range_or_to_the_next_choice(param, value, up, expected):
    got = step(param, value, up)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected) and param.contains(got)


@pytest.mark.parametrize("param, low, high, expected", [
    (Float(0.1, 0.8), 0.5, 0.65, 0.575),
    (Float(0.0, 1.0, step=0.1), 0.5, 0.9, 0.7),  # on the grid
    (Float(0.0, 1.0, step=0.1), 0.5, 0.6, None),  # the grid has no value between
    (Float(0.0, 1.0, step=0.1), 0.6, 0.7, None),  # 0.65 snaps onto 0.6000000000000001: an end
    (Float(1e-4, 1e-2, log=True), 1e-4, 1e-2, 1e-3),  # geometric on a log scale
    (Int(2, 20), 14, 17, 16),  # 15.5, rounded
    (Int(2, 20), 14, 15, None),  # no integer between
    (Choice([0.25, 0.5, 0.6, 0.75]), 0.5, 0.75, 0.6),
    (Choice([0.25, 0.5, 0.75]), 0.5, 0.75, None),  # neighbouring choices
    (Choice(["a", "b"]), "a", "b", None),  # not numbers
])
def test_halfway_is_the_allowed_value_strictly_between_nearest_the_middle(param, low, high, expected):
    got = halfway(param, low, high)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected) and param.contains(got) and low < got < high


def test_a_bound_yaml_reads_as_a_string_is_taken_as_the_number_it_spells():
    assert narrow(Float(1e-4, 1e-2, log=True), {"low": "1e-3"}, "w") == Float(1e-3, 1e-2, log=True)


def test_a_choice_matches_in_type_as_well_as_value():
    assert not Choice([1, 2]).contains(True)
    assert not Choice([False, True]).contains(0)
    assert Choice([False, True]).contains(False)
