"""The chain's ladder: after the chain's first three rungs (``sampling.chain_rungs``) are measured,
the driver adds rungs towards the strongest pruning that still meets the constraints the baseline
meets, as a practitioner pushes the ratio until accuracy breaks.

Neighbouring ratios often make the same model (widths are rounded to ``round_to`` channels, and a
narrow layer has few widths to give): a rung whose pruning makes a model already measured as a
rung is passed over, and counts as measured with that model's outcome, so the ladder moves on to a
model it has not measured. What a rung's pruning makes is seen without training
(:func:`pruned_signature`: the pruner run on the baseline in the driver's process); a pruner that
trains while it prunes (``Pruner.trains``) is not run there, and its rungs are all measured.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Hashable
from typing import Any

import optuna
import torch
from optuna.trial import TrialState
from torch import nn

from orchestrator.config import Bound
from orchestrator.metrics.slot import compute_step
from orchestrator.params import halfway, is_number
from orchestrator.pluginmanager import Catalogue
from orchestrator.recipe import Recipe
from orchestrator.spaces import SearchSpace
from orchestrator.study.pareto import constraint_violations
from orchestrator.study.repeats import REPEAT
from orchestrator.study.sampling import DEFAULT_RECIPE, recipe_params, stepped_rung

#: the user attribute that marks the rungs of the chain's ladder (``chain_rungs``, then ``next_rung``):
#: 0 on the first rungs, n on the n-th added as results came in
LADDER = "ladder_rung"
#: at most this many rungs are added to the ladder
LADDER_ADDED = 3
#: at most this many proposed rungs in a row are passed over for making a model already measured
PASSED_OVER = 8

#: what a rung's pruning makes of the baseline, comparable between rungs; None when unknown
Signature = Callable[[Recipe], Hashable | None]


def kept_constraints(baseline: dict[str, float], constraints: dict[str, Bound]) -> list[str]:
    """The constraints the baseline meets: compressing too hard is what breaks them (an accuracy
    floor), where one the baseline misses asks for more compression (a cap on size or latency)."""
    measurable = {name: bound for name, bound in constraints.items() if name in baseline}
    return [name for name, violation in constraint_violations(baseline, measurable).items() if violation <= 0]


def model_signature(model: nn.Module) -> tuple:
    """Every floating-point tensor of ``model``'s state, by name, with its shape and how many of its
    entries are not zero: two prunings that make the same widths (and, unstructured, zero as many
    weights) give the same signature."""
    return tuple((name, tuple(t.shape), int(torch.count_nonzero(t)))
                 for name, t in model.state_dict().items() if t.is_floating_point())


def pruned_signature(prune: Callable[[Recipe], nn.Module], catalogue: Catalogue,
                     log: Callable[[str], None] = lambda message: None) -> Signature:
    """A :data:`Signature` from ``prune`` (a recipe's scoring and pruning applied to a copy of the
    baseline, untrained: ``pipeline.pruned_model``), run on one thread and once per pruning.
    Unknown (None) for a pruner that trains while it prunes, and where pruning fails (``log`` says
    why; the rung is then measured as any other)."""
    seen: dict[str, Hashable | None] = {}

    def signature(recipe: Recipe) -> Hashable | None:
        pruner = catalogue.family("pruner").get(recipe.prune.strategy)
        if pruner is None or pruner.trains:
            return None
        key = json.dumps([recipe.score.model_dump(mode="json"), recipe.prune.model_dump(mode="json")],
                         sort_keys=True)
        if key not in seen:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # the workers go on training meanwhile
            try:
                with compute_step():  # and it waits while a file is timed, as training does
                    seen[key] = model_signature(prune(recipe))
            except Exception as exc:  # a rung the pruner cannot make fails as a trial, with its error
                log(f"the ladder could not see what '{recipe.prune.strategy}' makes of the baseline "
                    f"({type(exc).__name__}: {exc}); its rungs are measured even where they repeat a model")
                seen[key] = None
            finally:
                torch.set_num_threads(threads)
        return seen[key]

    return signature


def _proposed(space: SearchSpace, catalogue: Catalogue, measured: list[tuple[Recipe, bool]]) -> Recipe | None:
    strength = catalogue.family("pruner")[measured[0][0].prune.strategy].strength if measured else None
    if strength is None or not all(is_number(r.prune.params.get(strength)) for r, _ in measured):
        return None

    def level(rung: Recipe) -> float:
        return rung.prune.params[strength]

    kept = [r for r, ok in measured if ok]
    if not kept:
        return stepped_rung(space, catalogue, min((r for r, _ in measured), key=level), up=False)
    best = max(kept, key=level)
    broke = [r for r, ok in measured if not ok and level(r) > level(best)]
    if not broke:
        return stepped_rung(space, catalogue, best, up=True)
    above = min(broke, key=level)
    param = space.stages["prune"][best.prune.strategy][strength]
    middle = halfway(param, level(best), level(above))
    if middle is None:
        return None
    return above.model_copy(update={"prune": above.prune.model_copy(
        update={"params": {**above.prune.params, strength: middle}})})


def next_rung(space: SearchSpace, catalogue: Catalogue, measured: list[tuple[Recipe, bool]],
              signature: Signature | None = None) -> Recipe | None:
    """The chain's next rung, from its rungs measured so far, each with whether it kept what the
    baseline meets (the accuracy floor): towards the strongest pruning that still keeps it, where
    the smallest and fastest feasible models are. A rung that misses only a cap the baseline
    misses too (size, latency) is not too strong.

    While no rung stronger than the strongest one that kept has broken, a step stronger than it
    (``sampling.stepped_rung``); once one has, halfway between the two, trained as the stronger
    was; when every rung broke, a step lighter than the lightest. With a ``signature``, a rung that
    makes the same model as a measured rung is passed over as if measured with its outcome (kept,
    when any rung making that model kept). None when the space leaves no room that way, or no
    value strictly between the two, or no model not yet measured within :data:`PASSED_OVER` steps."""
    measured = list(measured)
    outcomes: dict[Hashable, bool] = {}
    if signature is not None:
        for recipe, ok in measured:
            made = signature(recipe)
            if made is not None:
                outcomes[made] = outcomes.get(made, False) or ok
    for _ in range(PASSED_OVER):
        rung = _proposed(space, catalogue, measured)
        made = None if rung is None or signature is None else signature(rung)
        if made is None or made not in outcomes:
            return rung
        measured.append((rung, outcomes[made]))
    return None


def extend_ladder(study: optuna.Study, space: SearchSpace, catalogue: Catalogue, kept: Collection[str],
                  signature: Signature | None = None) -> None:
    """Once every rung of the chain's ladder is measured, enqueue the next one (``next_rung``: towards
    the strongest pruning that still meets the ``kept`` constraints, ``kept_constraints``, passing
    over rungs whose pruning makes a model measured already when ``signature`` tells), as a default
    recipe, up to ``LADDER_ADDED`` rungs; nothing when no constraint is kept (the ladder would
    only climb to the end of the range). A rung that failed or was stopped tells nothing and is
    left out. Whatever was measured decides, so a resumed run goes on where it stopped."""
    rungs = [t for t in study.get_trials(deepcopy=False)
             if LADDER in t.user_attrs and not t.user_attrs.get("interrupted") and REPEAT not in t.user_attrs]
    if not kept or not rungs or not all(t.state.is_finished() for t in rungs):
        return
    added = max(t.user_attrs[LADDER] for t in rungs)
    if added >= LADDER_ADDED:
        return
    measured: list[tuple[Recipe, bool]] = []
    for t in rungs:
        if t.state == TrialState.COMPLETE and "recipe" in t.user_attrs:
            violations: dict[str, Any] = t.user_attrs.get("result", {}).get("constraints", {})
            measured.append((Recipe.model_validate(t.user_attrs["recipe"]),
                             all(violations.get(name, 0.0) <= 0 for name in kept)))
    rung = next_rung(space, catalogue, measured, signature)
    params = None if rung is None else recipe_params(rung, space, catalogue)
    if params is not None:
        study.enqueue_trial(params, user_attrs={DEFAULT_RECIPE: True, LADDER: added + 1}, skip_if_exists=True)
