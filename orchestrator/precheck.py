"""Constraints that can be judged before training: a recipe that cannot fit is never trained.

After the prune stage the model's structure is final (the train stage cannot regrow a pruned
weight), so its non-zero parameter count is the ``params`` metric the trial would report. Its
file cannot be smaller than the weights of the layers the forward pass runs (convolutions, linear
layers, embeddings, attention projections) at the fewest bytes per weight the recipe's quantizer
stores (``Quantizer.min_bytes_per_weight``: 4 for fp32, 2 for fp16, 1 for int8): a lower bound on
``size_mb``. A quantizer that declares no such figure skips the size check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import torch
from torch import nn

from orchestrator.errors import TrialStopped
from orchestrator.metrics.size import MB, count_nonzero_params
from orchestrator.tracing import traced_forward

if TYPE_CHECKING:
    from orchestrator.config import Bound
    from orchestrator.strategies import Quantizer

HEAVY = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.Embedding, nn.MultiheadAttention)


def weights_in_use(model: nn.Module, example: torch.Tensor) -> int:
    """Elements of the weight tensors of the layers one forward pass runs, each tensor counted once."""
    seen: dict[int, int] = {}

    def record(module: nn.Module, *_: object) -> None:
        for name, p in module.named_parameters():
            # weights (a masked weight's original, attention's in/out projections), not biases
            if name.rsplit(".", 1)[-1].endswith("weight") or name.endswith("weight.original"):
                seen[id(p)] = p.numel()

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, HEAVY)]
    traced_forward(model, example, hooks)
    return sum(seen.values())


def check_before_training(model: nn.Module, example: torch.Tensor, quantizer: "Quantizer",
                          constraints: Mapping[str, "Bound"]) -> None:
    """Raise :class:`TrialStopped` when the pruned model cannot meet a params or size_mb constraint."""
    bound = constraints.get("params")
    if bound is not None:
        params = count_nonzero_params(model)
        if bound.max is not None and params > bound.max:
            raise TrialStopped(f"pre-check: {params:,} parameters after pruning, above the constraint's max "
                               f"{bound.max:,.0f}; not trained")
        if bound.min is not None and params < bound.min:
            raise TrialStopped(f"pre-check: {params:,} parameters after pruning, below the constraint's min "
                               f"{bound.min:,.0f}; not trained")
    bound = constraints.get("size_mb")
    per_weight = getattr(quantizer, "min_bytes_per_weight", None)
    if bound is not None and bound.max is not None and per_weight:
        least = weights_in_use(model, example) * per_weight / MB
        if least > bound.max:
            raise TrialStopped(f"pre-check: the file would hold at least {least:.4g} MB of weights "
                               f"({quantizer.name}), above the size_mb constraint's max {bound.max:g}; not trained")
