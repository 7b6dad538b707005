"""How much each searched parameter mattered to each objective: Optuna's fANOVA importance.

Computed over the completed trials and the parameters every one of them has (Optuna's rule for a
conditional space): the stage choices always, a strategy's own parameters when the search kept
to that strategy. Seeded, so the same study gives the same figures.
"""

from __future__ import annotations

import warnings
from typing import Callable

import optuna

from orchestrator.config import Objective


def param_importance(study: optuna.Study, objectives: list[Objective],
                     log: Callable[[str], None] = lambda msg: None) -> dict[str, dict[str, float]]:
    """objective metric -> parameter -> importance (summing to 1); {} when too few trials finished."""
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}
    out: dict[str, dict[str, float]] = {}
    for i, objective in enumerate(objectives):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                scores = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0),
                                               target=lambda t, i=i: t.values[i], normalize=True)
        except (RuntimeError, ValueError) as exc:  # e.g. no parameter varied across the completed trials
            log(f"parameter importance for {objective.metric} is not available: {exc}")
            continue
        out[objective.metric] = {name: float(v) for name, v in scores.items()}
    return out
