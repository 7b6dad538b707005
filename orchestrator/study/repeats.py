"""A recipe is measured once. When the sampler proposes one that is already measured or on its way,
the proposal is set aside and a recipe is drawn at random instead.

A recipe's identity is its Optuna params: the same params make the same recipe (only the seed
differs), so training it again would spend a trial to measure the same thing with other noise.
On a space of categorical choices a model-based sampler keeps proposing the recipes it believes
best (on the tabular benchmark TPE visited 48-64 distinct recipes in 256 evaluations).

The proposal set aside is told to Optuna as failed, with the user attribute ``repeat`` naming the
trial it repeats: samplers learn nothing from a failed trial, and it counts neither against the
budget nor in the results. Its replacement comes from a random sampler seeded from the sampler's
seed and the trial number, so a run stays reproducible. After ``MAX_REDRAWS`` proposals in a row
were set aside, the space is as good as exhausted and the next draw runs as it is, repeat or not.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from orchestrator.pluginmanager import Catalogue
from orchestrator.recipe import Recipe
from orchestrator.spaces import SearchSpace
from orchestrator.study.samplers import derived_seed
from orchestrator.study.sampling import sample_recipe

#: The user attribute of a proposal set aside: the number of the trial it repeats.
REPEAT = "repeat"
#: Proposals set aside in a row before the next draw runs as it is.
MAX_REDRAWS = 20
_MEASURED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def _key(params: dict[str, Any]) -> tuple:
    return tuple(sorted(params.items()))


def tried(study: optuna.Study) -> dict[tuple, int]:
    """Params of the recipes measured or being measured (complete, stopped or running), to the
    first trial that has them. Failed trials are left out: a failure may not happen again."""
    out: dict[tuple, int] = {}
    for t in study.get_trials(deepcopy=False, states=_MEASURED):
        if not t.user_attrs.get("interrupted"):
            out.setdefault(_key(t.params), t.number)
    return out


def ask_recipe(study: optuna.Study, space: SearchSpace, catalogue: Catalogue, seed: int,
               skip_repeats: bool = True) -> tuple[optuna.Trial, Recipe]:
    """``study.ask()`` and the recipe its params make; a repeat is set aside and redrawn at random."""
    trial = study.ask()
    recipe = sample_recipe(trial, space, catalogue)
    if not skip_repeats:
        return trial, recipe
    seen = tried(study)
    sampler = study.sampler
    try:
        for _ in range(MAX_REDRAWS):
            earlier = seen.get(_key(trial.params))
            if earlier is None or earlier == trial.number:
                break
            trial.set_user_attr(REPEAT, earlier)
            study.tell(trial, state=TrialState.FAIL)
            study.sampler = optuna.samplers.RandomSampler(seed=derived_seed(seed, trial.number))
            trial = study.ask()
            recipe = sample_recipe(trial, space, catalogue)
    finally:
        study.sampler = sampler
    return trial, recipe
