"""``iterative``: gradual pruning in ``steps`` increments with fine-tuning in between.

Zhu & Gupta, "To prune, or not to prune: exploring the efficacy of pruning for model
compression" (2017): after step t of n the pruned fraction is

    s_t = s_f + (s_i - s_f) * (1 - t/n)^3,   s_i = 0        (``cubic``)
    s_t = s_f * t/n                                          (``linear``)

so the network loses many redundant weights early, while it is still easy to recover, and few
near the end. Between two steps the model is fine-tuned for ``epochs_per_step`` epochs with the
task's loss (the shared training loop; the last step is followed by the recipe's train stage).

``granularity: unstructured`` masks weights element-wise (as the ``unstructured`` pruner) up to
the final ``sparsity``; the masks stay until ``finalize``, so neither the fine-tuning in between
nor the train stage regrows a pruned weight. ``granularity: channel`` physically removes whole
channels up to the final channel ``ratio``, with the ``channel`` pruner's machinery (Torch-
Pruning's dependency graph, its importance adapter, its protected output layers) in Torch-
Pruning's iterative mode: each step removes the fraction of the remaining channels that brings
the cumulative fraction, relative to the width before the first step, to the schedule's value
(layer by layer, or over the whole model with ``scope: global``), so rounding does not
accumulate and the last step ends where the ``channel`` pruner with the same ``ratio`` does.
Attention blocks are pruned as the ``channel`` pruner prunes them with ``prune_heads: false``.

Importance between steps: the first step uses the recipe scorer's scores. The pruner receives
those only once, computed on the unpruned weights, so later steps re-score the current
(fine-tuned) weights. If the context offers ``ctx.rescore(model) -> Scores`` (the recipe's
scorer bound to its parameters) it is used; otherwise importance is the weight magnitude |w|
(elementwise; summed over each channel group for ``channel``).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from torch import nn

from orchestrator import hookimpl
from orchestrator.params import Choice, Float, Int
from orchestrator.strategies import Pruner, Scores
from orchestrator.training import fit
from orchestrator_plugins.pruners.channel import ScoreImportance, build_metapruner, sync_attention
from orchestrator_plugins.pruners.unstructured import (SCOPES, UnstructuredPruner, apply_masks, compute_masks,
                                                       make_permanent, prunable_targets, scores_for)

SCHEDULES = ("cubic", "linear")
GRANULARITIES = ("unstructured", "channel")
#: fine-tuning between steps uses the distillers' batch size
BATCH_SIZE = 128


def schedule(kind: str, final: float, steps: int, initial: float = 0.0) -> list[float]:
    """The cumulative pruned fraction after each of ``steps`` steps (the last is ``final``)."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, not {steps}")
    if kind == "cubic":
        return [final + (initial - final) * (1 - t / steps) ** 3 for t in range(1, steps + 1)]
    if kind == "linear":
        return [initial + (final - initial) * t / steps for t in range(1, steps + 1)]
    raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {kind!r}")


def _magnitude(model: nn.Module) -> Scores:
    return {n: p.detach().abs() for n, p in model.named_parameters()}


def rescorer(ctx: Any) -> Callable[[nn.Module], Scores]:
    """The context's ``rescore(model)`` if it has one, else weight magnitude."""
    fn = getattr(ctx, "rescore", None)
    return fn if callable(fn) else _magnitude


class IterativePruner(Pruner):
    name = "iterative"
    trains = True  # fine-tunes between steps
    space = {
        "granularity": Choice(GRANULARITIES),
        "sparsity": Float(0.05, 0.95),
        "ratio": Float(0.05, 0.9),
        "scope": Choice(SCOPES),
        "steps": Int(2, 10),
        "schedule": Choice(SCHEDULES),
        "epochs_per_step": Int(1, 10),
        "lr": Float(1e-4, 1e-2, log=True),
    }
    defaults = {"granularity": "unstructured", "sparsity": 0.7, "ratio": 0.5, "scope": "per-layer", "steps": 4,
                "schedule": "cubic", "epochs_per_step": 2, "lr": 3e-3}

    def applicable(self, model: nn.Module, ctx: Any) -> str | None:
        # either granularity needs a conv / linear weight outside the output layer
        return UnstructuredPruner().applicable(model, ctx)

    def prune(self, model: nn.Module, scores: Scores | None, ctx: Any, params: Mapping[str, Any]) -> nn.Module:
        granularity = str(params.get("granularity", "unstructured"))
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, not {granularity!r}")
        final = float(params.get("ratio" if granularity == "channel" else "sparsity", 0.5))
        if final <= 0:
            return model
        steps = int(params.get("steps", 4))
        plan = schedule(str(params.get("schedule", "cubic")), final, steps)
        scope = str(params.get("scope", "per-layer"))
        epochs, lr = int(params.get("epochs_per_step", 2)), float(params.get("lr", 3e-3))
        rescore = rescorer(ctx)

        def fine_tune(step: int) -> None:
            fit(model, ctx.task, ctx.data, epochs=epochs, lr=lr, batch_size=BATCH_SIZE, seed=ctx.seed + step)

        example = ctx.example_inputs(2)
        if granularity == "unstructured":
            targets = prunable_targets(model, example)
            for t, target in enumerate(plan):
                if t > 0:
                    fine_tune(t)
                    scores = rescore(model)
                apply_masks(targets, compute_masks(targets, scores_for(targets, scores), target, scope))
                ctx.log(f"iterative: step {t + 1}/{steps}, sparsity {target:.1%}")
        else:
            # Torch-Pruning's iterative mode: step t keeps, in each ranking scope (a layer, or the
            # whole model when global), round-down((1 - plan[t]) * the channels it had before step 1)
            pruner = build_metapruner(
                model, scores if scores is not None else _magnitude(model), example, final,
                global_pruning=scope == "global", iterative_steps=steps,
                iterative_pruning_ratio_scheduler=lambda ratio, n: [ratio * c / final for c in [0.0] + plan])
            for t, target in enumerate(plan):
                if t > 0:
                    fine_tune(t)
                    pruner.importance = ScoreImportance(model, rescore(model))
                pruner.step()
                sync_attention(model, pruner)
                ctx.log(f"iterative: step {t + 1}/{steps}, channel ratio {target:.1%}")
        return model

    def finalize(self, model: nn.Module, ctx: Any, params: Mapping[str, Any]) -> nn.Module:
        return make_permanent(model)

    def describe(self, params: Mapping[str, Any]) -> str:
        granularity = params.get("granularity", "unstructured")
        amount = params.get("ratio" if granularity == "channel" else "sparsity", 0)
        scope = " global" if params.get("scope") == "global" else ""
        return (f"iterative {granularity} {float(amount):.0%}{scope} in {int(params.get('steps', 0))} "
                f"{params.get('schedule', 'cubic')} steps, {int(params.get('epochs_per_step', 0))} epochs each "
                f"lr={float(params.get('lr', 0)):.2g}")


@hookimpl
def orchestrator_register_pruners(register):
    register(IterativePruner())
