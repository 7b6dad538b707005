"""Applies a Recipe to a copy of the baseline: score -> prune -> train -> quantize -> export -> measure."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from torch import nn

from orchestrator.errors import InapplicableError, TrialStopped
from orchestrator.export import FLOAT_MODEL, export_for_runtime, save_float_model
from orchestrator.metrics.measure import measure_candidate
from orchestrator.metrics.slot import compute_step
from orchestrator.recipe import NONE, Recipe
from orchestrator.strategies import STAGES, Scores, Strategy

if TYPE_CHECKING:
    from orchestrator.config import LatencyConfig
    from orchestrator.context import TrialContext
    from orchestrator.pluginmanager import Catalogue


@dataclass
class Candidate:
    model: nn.Module
    artifact: Path
    metrics: dict[str, float] = field(default_factory=dict)


#: the attribute naming, on an exception, the strategy that raised it
BLAME = "orchestrator_strategy"


@contextlib.contextmanager
def blame(strategy: Strategy) -> Iterator[None]:
    """Mark an exception escaping ``strategy``'s code with it, so the trial's error names the strategy
    and its plugin. The innermost strategy wins (a scorer re-run inside a pruner is blamed)."""
    try:
        yield
    except (TrialStopped, InapplicableError):
        raise
    except Exception as exc:
        if not hasattr(exc, BLAME):
            setattr(exc, BLAME, strategy)
        raise


def _strategies(recipe: Recipe, model: nn.Module, ctx: "TrialContext", catalogue: "Catalogue",
                stages: tuple[str, ...] = tuple(STAGES)) -> dict[str, Strategy]:
    """The recipe's strategy for each of ``stages`` (a scorer only where it names one), each found
    applicable to ``model``; InapplicableError naming the first that is missing or inapplicable."""
    strategies = {}
    for stage, choice in recipe.stages():
        if stage not in stages or (choice.strategy == NONE and stage == "score"):
            continue
        family = STAGES[stage]
        strategy = catalogue.family(family).get(choice.strategy)
        if strategy is None:
            raise InapplicableError(f"no plugin provides {family} '{choice.strategy}'")
        with blame(strategy):
            reason = strategy.applicable(model, ctx)
        if reason:
            raise InapplicableError(f"{family} '{choice.strategy}': {reason}")
        strategies[stage] = strategy
    return strategies


def _prune(recipe: Recipe, model: nn.Module, ctx: "TrialContext",
           strategies: dict[str, Strategy]) -> tuple[nn.Module, "TrialContext"]:
    """Score (where the pruner needs it) and prune ``model``; the context returned re-scores."""
    pruner = strategies["prune"]
    scores = None
    if pruner.needs_scores:
        if "score" not in strategies:
            raise InapplicableError(f"pruner '{pruner.name}' needs a scorer and the recipe names none")
        scorer = strategies["score"]

        def rescore(m: nn.Module) -> Scores:
            with blame(scorer), compute_step():
                return scorer.score(m, ctx, recipe.score.params)

        ctx = dataclasses.replace(ctx, rescore=rescore)
        scores = rescore(model)
    with blame(pruner):
        return pruner.prune(model, scores, ctx, recipe.prune.params).eval(), ctx


def pruned_model(recipe: Recipe, ctx: "TrialContext", catalogue: "Catalogue") -> nn.Module:
    """What the recipe's scoring and pruning alone make of a copy of ``ctx.teacher``, untrained and
    with its pruning made permanent: the widths (or zeros) its trial would train."""
    model = copy.deepcopy(ctx.teacher).eval()
    strategies = _strategies(recipe, model, ctx, catalogue, stages=("score", "prune"))
    model, ctx = _prune(recipe, model, ctx, strategies)
    with blame(strategies["prune"]):
        return strategies["prune"].finalize(model, ctx, recipe.prune.params).eval()


def compress(recipe: Recipe, ctx: "TrialContext", catalogue: "Catalogue") -> Candidate:
    """Run the recipe's stages on a copy of ``ctx.teacher`` and write the deployable artifact."""
    model = copy.deepcopy(ctx.teacher).eval()
    strategies = _strategies(recipe, model, ctx, catalogue)
    pruner = strategies["prune"]
    model, ctx = _prune(recipe, model, ctx, strategies)
    quantizer = strategies["quantize"]
    if ctx.precheck is not None:
        ctx.precheck(model, quantizer)
    with blame(quantizer):
        model = quantizer.prepare_training(model, ctx, recipe.quantize.params)
    with blame(strategies["train"]):
        model = strategies["train"].train(model, ctx, recipe.train.params).eval()
    reason = ctx.stop_reason()
    if reason:
        raise TrialStopped(reason)
    with blame(quantizer):
        model = quantizer.end_training(model, ctx, recipe.quantize.params)
    with blame(pruner):
        model = pruner.finalize(model, ctx, recipe.prune.params).eval()

    ctx.workdir.mkdir(parents=True, exist_ok=True)
    # kept for `orchestrator export` to other formats, and for exporting the float model of a quantized trial
    with compute_step():  # pauses while a latency is measured on this machine, as training does
        unsaved = save_float_model(model, ctx.workdir / FLOAT_MODEL)
        fp32 = export_for_runtime(model, ctx.example_inputs(8), ctx.workdir, ctx.runtime, ctx.task.input_name)
    if unsaved:
        ctx.log(f"the float model was not kept ({unsaved}): export in other formats will not be possible")
    if quantizer.name == NONE:
        artifact = fp32
    else:
        out = ctx.workdir / f"model-{quantizer.name}{fp32.suffix}"
        with blame(quantizer), compute_step():
            artifact = quantizer.quantize(model, fp32, out, ctx, recipe.quantize.params)
        if artifact != fp32:
            fp32.unlink(missing_ok=True)
    final = ctx.workdir / f"model{artifact.suffix}"
    artifact.replace(final)
    return Candidate(model=model, artifact=final)


def run_recipe(recipe: Recipe, ctx: "TrialContext", catalogue: "Catalogue", latency: "LatencyConfig",
               baseline_accuracy: float | None, meter: object = None) -> Candidate:
    """Compress, then measure the artifact (its latency timed by ``meter``, this process if None)."""
    candidate = compress(recipe, ctx, catalogue)
    candidate.metrics = measure_candidate(candidate.model, candidate.artifact, ctx, latency, baseline_accuracy,
                                          meter)  # type: ignore[arg-type]
    return candidate
