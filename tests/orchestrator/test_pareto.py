"""The feasible Pareto front, constraint violations, and the normalised hypervolume."""

from __future__ import annotations

import pytest

from orchestrator.config import Bound, Objective
from orchestrator.results import TrialResult
from orchestrator.study.pareto import constraint_violations, hypervolume, pareto_front, reference

ACC_SIZE = [Objective(metric="accuracy"), Objective(metric="size_mb")]


def _trial(number: int, accuracy: float, size_mb: float, state: str = "COMPLETE", feasible: bool = True,
           **metrics: float) -> TrialResult:
    return TrialResult(number=number, state=state, recipe={}, feasible=feasible,
                       metrics={"accuracy": accuracy, "size_mb": size_mb, **metrics})


def _numbers(front: list[TrialResult]) -> list[int]:
    return [r.number for r in front]


# --- the front -----------------------------------------------------------------------------------

def test_dominated_trials_are_dropped_and_the_front_is_best_first():
    trials = [_trial(0, 0.90, 1.0),   # baseline-like: most accurate, largest
              _trial(1, 0.85, 0.3),   # a trade-off
              _trial(2, 0.80, 0.5),   # dominated by 1
              _trial(3, 0.89, 0.6),   # a trade-off
              _trial(4, 0.85, 0.4)]   # dominated by 1 (same accuracy, larger)
    front = pareto_front(trials, ACC_SIZE)
    assert _numbers(front) == [0, 3, 1]


def test_an_infeasible_trial_never_enters_the_front_even_if_it_dominates():
    trials = [_trial(0, 0.90, 1.0), _trial(1, 0.85, 0.3),
              _trial(2, 0.99, 0.1, feasible=False)]  # dominates everything, violates a constraint
    assert _numbers(pareto_front(trials, ACC_SIZE)) == [0, 1]


@pytest.mark.parametrize("state", ["PRUNED", "FAIL"])
def test_a_trial_that_did_not_complete_never_enters_the_front(state):
    trials = [_trial(0, 0.90, 1.0), _trial(1, 0.99, 0.1, state=state, feasible=True)]
    assert _numbers(pareto_front(trials, ACC_SIZE)) == [0]


def test_the_front_is_empty_when_nothing_is_feasible():
    trials = [_trial(0, 0.90, 1.0, feasible=False), _trial(1, 0.80, 0.5, state="FAIL")]
    assert pareto_front(trials, ACC_SIZE) == []
    assert pareto_front([], ACC_SIZE) == []


def test_ties_keep_the_earliest_trial():
    trials = [_trial(5, 0.85, 0.3), _trial(2, 0.85, 0.3), _trial(7, 0.85, 0.3)]
    assert _numbers(pareto_front(trials, ACC_SIZE)) == [2]


def test_the_front_follows_the_objective_directions():
    # with size maximised instead, the largest model dominates
    objectives = [Objective(metric="accuracy"), Objective(metric="size_mb", direction="maximize")]
    trials = [_trial(0, 0.90, 1.0), _trial(1, 0.85, 0.3)]
    assert _numbers(pareto_front(trials, objectives)) == [0]


def test_a_single_objective_front_is_the_best_trial():
    trials = [_trial(0, 0.90, 1.0), _trial(1, 0.93, 0.3), _trial(2, 0.91, 0.1)]
    assert _numbers(pareto_front(trials, [Objective(metric="accuracy")])) == [1]


# --- constraints ---------------------------------------------------------------------------------

def test_a_max_bound_is_satisfied_at_or_below_it():
    constraints = {"accuracy_drop": Bound(max=2.0)}
    assert constraint_violations({"accuracy_drop": 1.0}, constraints) == {"accuracy_drop": pytest.approx(-0.5)}
    assert constraint_violations({"accuracy_drop": 2.0}, constraints) == {"accuracy_drop": 0.0}
    assert constraint_violations({"accuracy_drop": 3.0}, constraints) == {"accuracy_drop": pytest.approx(0.5)}


def test_a_min_bound_is_satisfied_at_or_above_it():
    constraints = {"accuracy": Bound(min=0.8)}
    assert constraint_violations({"accuracy": 0.9}, constraints)["accuracy"] == pytest.approx(-0.125)
    assert constraint_violations({"accuracy": 0.8}, constraints)["accuracy"] == 0.0
    assert constraint_violations({"accuracy": 0.6}, constraints)["accuracy"] == pytest.approx(0.25)


def test_both_bounds_report_the_worse_side():
    constraints = {"latency_ms": Bound(min=1.0, max=4.0)}
    assert constraint_violations({"latency_ms": 2.0}, constraints)["latency_ms"] == pytest.approx(-0.5)
    assert constraint_violations({"latency_ms": 0.5}, constraints)["latency_ms"] == pytest.approx(0.5)
    assert constraint_violations({"latency_ms": 6.0}, constraints)["latency_ms"] == pytest.approx(0.5)


def test_violations_are_scaled_by_the_bound_so_units_compare():
    small = constraint_violations({"size_mb": 0.011}, {"size_mb": Bound(max=0.01)})["size_mb"]
    large = constraint_violations({"params": 11000.0}, {"params": Bound(max=10000.0)})["params"]
    assert small == pytest.approx(large) == pytest.approx(0.1)


def test_a_zero_bound_still_gives_the_right_sign():
    assert constraint_violations({"accuracy_drop": 0.5}, {"accuracy_drop": Bound(max=0.0)})["accuracy_drop"] > 0
    assert constraint_violations({"accuracy_drop": -0.5}, {"accuracy_drop": Bound(max=0.0)})["accuracy_drop"] < 0


def test_every_constraint_gets_a_violation_and_no_others():
    metrics = {"accuracy": 0.9, "size_mb": 0.2, "latency_ms": 1.0}
    out = constraint_violations(metrics, {"accuracy": Bound(min=0.95), "size_mb": Bound(max=1.0)})
    assert set(out) == {"accuracy", "size_mb"}
    assert out["accuracy"] > 0 and out["size_mb"] < 0
    assert constraint_violations(metrics, {}) == {}


# --- reference point and hypervolume -------------------------------------------------------------

def test_reference_point_from_the_baseline():
    ideal, ref = reference({"accuracy": 0.9, "size_mb": 2.0}, ACC_SIZE)
    assert ideal == {"accuracy": 1.0, "size_mb": 0.0}
    assert ref == {"accuracy": pytest.approx(0.8), "size_mb": pytest.approx(2.2)}


def test_reference_point_for_a_maximised_metric_above_one():
    ideal, ref = reference({"accuracy": 50.0}, [Objective(metric="accuracy")])
    assert ideal["accuracy"] == 100.0
    assert ref["accuracy"] == pytest.approx(40.0)


def test_hypervolume_of_a_known_front():
    ideal, ref = reference({"accuracy": 0.9, "size_mb": 1.0}, ACC_SIZE)  # ref: accuracy 0.8, size 1.1
    # normalised losses: A -> (0.5, 0.5), B -> (0.75, 0.2); against (1, 1):
    # 0.5 * 0.5 + 0.25 * 0.8 - 0.25 * 0.5 = 0.325
    front = [_trial(0, 0.90, 0.55), _trial(1, 0.85, 0.22)]
    assert hypervolume(front, ACC_SIZE, ideal, ref) == pytest.approx(0.325)


def test_hypervolume_of_a_single_point_is_its_box():
    ideal, ref = reference({"accuracy": 0.9, "size_mb": 1.0}, ACC_SIZE)
    assert hypervolume([_trial(0, 0.90, 0.55)], ACC_SIZE, ideal, ref) == pytest.approx(0.25)


def test_points_beyond_the_reference_add_nothing():
    ideal, ref = reference({"accuracy": 0.9, "size_mb": 1.0}, ACC_SIZE)
    front = [_trial(0, 0.90, 0.55), _trial(1, 0.75, 0.01), _trial(2, 0.99, 1.5)]  # 1 and 2 beyond ref
    assert hypervolume(front, ACC_SIZE, ideal, ref) == pytest.approx(0.25)


def test_hypervolume_of_an_empty_front_is_zero():
    ideal, ref = reference({"accuracy": 0.9, "size_mb": 1.0}, ACC_SIZE)
    assert hypervolume([], ACC_SIZE, ideal, ref) == 0.0


def test_hypervolume_grows_when_the_front_improves():
    ideal, ref = reference({"accuracy": 0.9, "size_mb": 1.0}, ACC_SIZE)
    before = hypervolume([_trial(0, 0.90, 0.55)], ACC_SIZE, ideal, ref)
    after = hypervolume([_trial(0, 0.90, 0.55), _trial(1, 0.85, 0.22)], ACC_SIZE, ideal, ref)
    assert after > before
