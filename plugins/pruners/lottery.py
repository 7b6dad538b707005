"""``lottery``: iterative magnitude pruning with weight rewinding (a "winning ticket").

Frankle & Carbin, "The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks"
(ICLR 2019), with rewinding to an early point of training rather than to initialization as in
Frankle, Dziugaite, Roy & Carbin, "Linear Mode Connectivity and the Lottery Ticket Hypothesis"
(ICML 2020). Each of ``rounds`` rounds

1. trains the network with the current mask (round 1's training is the baseline's own dense
   training: the model handed to the pruner is the trained baseline; later rounds train
   ``epochs_per_round`` epochs from the rewound weights, like the baseline: same batch size and
   weight decay, peak learning rate ``lr``),
2. prunes the smallest-magnitude weights, the same fraction ``1 - (1 - sparsity)^(1/rounds)`` of
   the remaining ones every round, so the model is at ``sparsity`` after the last round,
3. rewinds the whole network (surviving weights, biases, normalization parameters and running
   statistics) to ``ctx.rewind_state``, the baseline's weights about 10% into its training.

The model returned holds the rewound, masked weights; the recipe's train stage then trains that
sparse network, the masks staying in place (the pruned weights cannot regrow) until
``finalize`` makes them permanent zeros. Pruning is element-wise over the weights the
``unstructured`` pruner prunes, ranked per layer or globally (``scope``). The criterion is
magnitude by definition, so no scorer is needed.
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from orchestrator import hookimpl
from orchestrator.params import Choice, Float, Int
from orchestrator.strategies import Pruner, Scores
from orchestrator.training import fit
from orchestrator_plugins.pruners.unstructured import (SCOPES, UnstructuredPruner, apply_masks, compute_masks,
                                                       magnitude_scores, make_permanent, prunable_targets, rewind,
                                                       rewind_mismatch)


def round_sparsities(sparsity: float, rounds: int) -> list[float]:
    """The cumulative sparsity after each round: the same fraction of the remaining weights each time."""
    return [1 - (1 - sparsity) ** (r / rounds) for r in range(1, rounds + 1)]


class LotteryPruner(Pruner):
    name = "lottery"
    needs_scores = False
    trains = True  # retrains from the rewind point each round
    space = {"sparsity": Float(0.05, 0.95), "rounds": Int(1, 5), "epochs_per_round": Int(1, 30),
             "lr": Float(1e-4, 1e-2, log=True), "scope": Choice(SCOPES)}
    defaults = {"sparsity": 0.8, "rounds": 3, "epochs_per_round": 8, "lr": 3e-3, "scope": "per-layer"}
    strength = "sparsity"

    def applicable(self, model: nn.Module, ctx: Any) -> str | None:
        if ctx.rewind_state is None:
            return ("needs the baseline's early weights to rewind to (ctx.rewind_state), and this baseline has "
                    "none: it was cached before they were recorded; delete the cached baseline to retrain it")
        mismatch = rewind_mismatch(model, ctx.rewind_state)
        if mismatch:
            return f"cannot rewind: {mismatch}"
        return UnstructuredPruner().applicable(model, ctx)

    def prune(self, model: nn.Module, scores: Scores | None, ctx: Any, params: Mapping[str, Any]) -> nn.Module:
        if ctx.rewind_state is None:
            raise ValueError("pruner 'lottery' needs ctx.rewind_state")
        sparsity = max(0.0, float(params.get("sparsity", 0.8)))
        rounds = int(params.get("rounds", 3))
        scope = str(params.get("scope", "per-layer"))
        settings = ctx.task.baseline_training
        targets = prunable_targets(model, ctx.example_inputs(2))
        for r, target in enumerate(round_sparsities(sparsity, rounds)):
            if r > 0:  # round 1 prunes the trained baseline; later rounds retrain from the rewind point
                fit(model, ctx.task, ctx.data, epochs=int(params.get("epochs_per_round", 8)),
                    lr=float(params.get("lr", 3e-3)), batch_size=settings.batch_size, seed=ctx.seed + r,
                    weight_decay=settings.weight_decay)
            apply_masks(targets, compute_masks(targets, magnitude_scores(targets), target, scope))
            rewind(model, ctx.rewind_state)
            ctx.log(f"lottery: round {r + 1}/{rounds}, sparsity {target:.1%}, rewound")
        return model.eval()

    def finalize(self, model: nn.Module, ctx: Any, params: Mapping[str, Any]) -> nn.Module:
        return make_permanent(model)

    def describe(self, params: Mapping[str, Any]) -> str:
        scope = " global" if params.get("scope") == "global" else ""
        return (f"lottery {float(params.get('sparsity', 0)):.0%}{scope} in {int(params.get('rounds', 0))} rounds "
                f"of {int(params.get('epochs_per_round', 0))} epochs lr={float(params.get('lr', 0)):.2g}")


@hookimpl
def orchestrator_register_pruners(register):
    register(LotteryPruner())
