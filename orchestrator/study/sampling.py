"""From an Optuna trial to a Recipe, over the conditional space, and back (for enqueued recipes).

Parameter names are ``<stage>`` for the strategy and ``<stage>.<strategy>.<param>`` for its
hyper-parameters, so a strategy's parameters exist only in trials that chose it.
"""

from __future__ import annotations

from typing import Any

import optuna

from orchestrator.params import Choice, Float, Int, Param, default_value, nearest, step
from orchestrator.pluginmanager import Catalogue
from orchestrator.recipe import NONE, Recipe, StageChoice
from orchestrator.spaces import SearchSpace
from orchestrator.strategies import STAGES, Quantizer

#: The order stages are sampled in: the pruner decides whether a scorer is needed.
SAMPLE_ORDER = ("prune", "score", "train", "quantize")
#: the user attribute that marks the enqueued default recipes: early stopping leaves them to train to
#: the end, so the front always holds the answers a practitioner would have tried by hand
DEFAULT_RECIPE = "default_recipe"


def _suggest(trial: optuna.Trial, name: str, param: Param) -> Any:
    if isinstance(param, Choice):
        return trial.suggest_categorical(name, list(param.choices))
    if isinstance(param, Int):
        return trial.suggest_int(name, param.low, param.high, step=param.step, log=param.log)
    assert isinstance(param, Float)
    return trial.suggest_float(name, param.low, param.high, log=param.log, step=param.step)


def sample_recipe(trial: optuna.Trial, space: SearchSpace, catalogue: Catalogue) -> Recipe:
    chosen: dict[str, StageChoice] = {}
    for stage in SAMPLE_ORDER:
        if stage == "score":
            pruner = catalogue.family("pruner")[chosen["prune"].strategy]
            scorers = [s for s in space.strategies("score") if s != NONE]
            if not pruner.needs_scores or not scorers:
                chosen[stage] = StageChoice()
                continue
            options = scorers
        else:
            options = space.strategies(stage)
        name = trial.suggest_categorical(stage, options)
        params = {p: _suggest(trial, f"{stage}.{name}.{p}", param) for p, param in space.stages[stage][name].items()}
        chosen[stage] = StageChoice(strategy=name, params=params)
    return Recipe(**chosen)


def recipe_params(recipe: Recipe, space: SearchSpace, catalogue: Catalogue) -> dict[str, Any] | None:
    """The Optuna params that make ``sample_recipe`` return ``recipe``; None if the space excludes it."""
    pruner = catalogue.family("pruner").get(recipe.prune.strategy)
    wants_scorer = bool(pruner and pruner.needs_scores and [s for s in space.strategies("score") if s != NONE])
    if wants_scorer != (recipe.score.strategy != NONE):
        return None  # sample_recipe picks a scorer exactly when the pruner needs one
    params: dict[str, Any] = {}
    for stage, choice in recipe.stages():
        if stage == "score" and choice.strategy == NONE:
            continue
        if choice.strategy not in space.stages[stage]:
            return None
        declared = space.stages[stage][choice.strategy]
        if set(choice.params) != set(declared):
            return None
        params[stage] = choice.strategy
        for p, param in declared.items():
            if not param.contains(choice.params[p]):
                return None
            params[f"{stage}.{choice.strategy}.{p}"] = choice.params[p]
    return params


def _trains(catalogue: Catalogue, quantizer: str) -> bool:
    """Whether a quantizer trains with the model (QAT): it implements ``prepare_training``."""
    return type(catalogue.family("quantizer")[quantizer]).prepare_training is not Quantizer.prepare_training


def _chain(space: SearchSpace, catalogue: Catalogue, prune: tuple[StageChoice, StageChoice] | None) -> Recipe | None:
    """The default pruning, trained by the space's first distiller (else fine-tuned), then quantized by
    the first quantizer that needs no training of its own; None when the space offers no pruning or
    no such quantizer."""
    quantizers = [q for q in space.strategies("quantize") if q != NONE and not _trains(catalogue, q)]
    if prune is None or not quantizers:
        return None
    train = space.strategies("train")
    trainer = next((t for t in train if t != NONE), NONE)
    return Recipe(score=prune[0], prune=prune[1], train=_with_defaults(space, catalogue, "train", trainer),
                  quantize=_with_defaults(space, catalogue, "quantize", quantizers[0]))


def _with_defaults(space: SearchSpace, catalogue: Catalogue, stage: str, name: str, **fixed: Any) -> StageChoice:
    strategy = catalogue.family(STAGES[stage])[name]
    defaults = {**strategy.defaults, **space.defaults.get((stage, name), {})}  # for the model, once known
    params = {}
    for p, param in space.stages[stage][name].items():
        value = fixed.get(p, defaults.get(p))  # None: the strategy sets no default
        params[p] = default_value(param) if value is None else nearest(param, value)
    return StageChoice(strategy=name, params=params)


def _stepped(space: SearchSpace, catalogue: Catalogue, stage: str, choice: StageChoice, up: bool) -> StageChoice | None:
    """``choice`` a step stronger (``up``) or lighter along its strategy's ``strength``; None when the
    strategy declares none or the space leaves no room that way."""
    strength = catalogue.family(STAGES[stage])[choice.strategy].strength
    if strength is None or strength not in choice.params:
        return None
    value = step(space.stages[stage][choice.strategy][strength], choice.params[strength], up)
    return None if value is None else StageChoice(strategy=choice.strategy, params={**choice.params, strength: value})


def _pruning(space: SearchSpace, catalogue: Catalogue, pruner: str) -> tuple[StageChoice, StageChoice]:
    """A pruner's default pruning, with the space's first scorer at its defaults when it needs one."""
    scorers = [s for s in space.strategies("score") if s != NONE]
    needs = catalogue.family("pruner")[pruner].needs_scores
    score = _with_defaults(space, catalogue, "score", scorers[0]) if needs and scorers else StageChoice()
    return score, _with_defaults(space, catalogue, "prune", pruner)


def chain_rungs(space: SearchSpace, catalogue: Catalogue) -> list[Recipe]:
    """The chain (``_chain``, of the space's first pruner), then the chain a step lighter (less
    pruning, the same training) and a step stronger (more pruning, and more training to recover from
    it, where the space allows): the first rungs of its ladder (``orchestrator.study.ladder``).
    Empty when the space offers no chain."""
    pruners = [p for p in space.strategies("prune") if p != NONE]
    chain = _chain(space, catalogue, _pruning(space, catalogue, pruners[0]) if pruners else None)
    if chain is None:
        return []
    rungs = [chain]
    for up in (False, True):
        rung = stepped_rung(space, catalogue, chain, up)
        if rung is not None:
            rungs.append(rung)
    return rungs


def stepped_rung(space: SearchSpace, catalogue: Catalogue, rung: Recipe, up: bool) -> Recipe | None:
    """``rung`` a step stronger (more pruning, trained longer) or lighter (less pruning, the same
    training); None when the pruner's strength leaves no room that way."""
    prune = _stepped(space, catalogue, "prune", rung.prune, up)
    if prune is None:
        return None
    train = _stepped(space, catalogue, "train", rung.train, up) if up else None
    return rung.model_copy(update={"prune": prune, "train": train or rung.train})


def default_recipes(space: SearchSpace, catalogue: Catalogue) -> list[Recipe]:
    """The baseline and one sensible single-technique recipe per strategy, as a practitioner would
    try them, then the three chained, at three strengths.

    Every parameter takes its strategy's default (for the baseline, once the space was restricted
    to it: ``Strategy.defaults_for``), or the nearest value the space allows. Pruning is
    followed by default fine-tuning, distillation comes after the default pruning (distilling into
    an unchanged model changes nothing), quantization runs on the baseline. The chain is the classic
    pipeline: the default pruning, distilled from the baseline, then quantized; it is tried as is,
    a step lighter (less pruning: the model to fall back on when the default costs too much
    accuracy) and a step stronger (more pruning, trained longer: where the smallest, fastest
    models are), each step halfway from the default to the end of the pruner's ``strength`` range.
    The driver adds rungs as these are measured (``orchestrator.study.ladder.next_rung``).
    """
    recipes: list[Recipe] = []
    train = space.strategies("train")
    finetune = NONE if NONE in train else train[0]
    # the least training the space allows: none at all when plain fine-tuning may run 0 epochs
    rest = _with_defaults(space, catalogue, "train", finetune, epochs=0)
    if finetune == NONE:
        recipes.append(Recipe(train=rest))
    pruners = [p for p in space.strategies("prune") if p != NONE]
    first_prune = _pruning(space, catalogue, pruners[0]) if pruners else None
    for p in pruners:
        score, prune = _pruning(space, catalogue, p)
        recipes.append(Recipe(score=score, prune=prune, train=_with_defaults(space, catalogue, "train", finetune)))
    for d in train:
        if d != NONE and first_prune:
            recipes.append(Recipe(score=first_prune[0], prune=first_prune[1],
                                  train=_with_defaults(space, catalogue, "train", d)))
    for q in space.strategies("quantize"):
        if q != NONE:
            # a quantizer that trains with the model (QAT) gets the default fine-tuning to train in
            train_stage = _with_defaults(space, catalogue, "train", finetune) if _trains(catalogue, q) else rest
            recipes.append(Recipe(train=train_stage, quantize=_with_defaults(space, catalogue, "quantize", q)))
    recipes += chain_rungs(space, catalogue)
    unique: list[Recipe] = []
    for r in recipes:
        if r not in unique:
            unique.append(r)
    return unique
