"""``fpgm``: a filter's importance is its distance from the geometric median of its layer's filters.

He et al., "Filter Pruning via Geometric Median for Deep Convolutional Neural Networks
Acceleration" (CVPR 2019): filters near the geometric median of a layer are redundant, since the
other filters can represent them, whatever their norm. As in the paper's practical approximation,
a filter's importance is the sum of its Euclidean distances to all other filters of the layer, so
the filters nearest the median score lowest.

Channel-level: each convolution's and linear layer's filter (output channel) gets one value,
broadcast over the filter's weights and its bias. Other parameters (normalisation layers,
embeddings) are left out, so they are never pruned on their own.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from orchestrator import hookimpl
from orchestrator.strategies import Scorer, Scores

_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)


def filter_distances(weight: torch.Tensor, chunk_elements: int = 1 << 24) -> torch.Tensor:
    """Sum of Euclidean distances from each filter (row along dim 0) to every other filter.

    Computed a block of rows at a time so a wide layer never needs its whole n x n matrix."""
    flat = weight.detach().flatten(1).double()
    rows = max(1, chunk_elements // max(1, len(flat)))
    sums = [torch.cdist(flat[i : i + rows], flat).sum(1) for i in range(0, len(flat), rows)]
    return torch.cat(sums).to(torch.promote_types(weight.dtype, torch.float32))


def layer_weight(module: nn.Module, attr: str = "weight") -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The parameter holding ``module.<attr>`` and the weight's effective value: under a
    parametrization (a pruning mask) the parameter is its ``original``, the value the masked weight."""
    if parametrize.is_parametrized(module, attr):
        return module.parametrizations[attr].original, getattr(module, attr)
    weight = getattr(module, attr, None)
    return weight, weight


class FPGMScorer(Scorer):
    name = "fpgm"

    def applicable(self, model: nn.Module, ctx: Any) -> str | None:
        if not any(isinstance(m, _LAYERS) for m in model.modules()):
            return "the model has no convolution or linear layer"
        return None

    def score(self, model: nn.Module, ctx: Any, params: Mapping[str, Any]) -> Scores:
        names = {id(p): n for n, p in model.named_parameters()}
        scores: Scores = {}
        for module in model.modules():
            if not isinstance(module, _LAYERS):
                continue
            param, weight = layer_weight(module)
            if id(param) not in names or weight.shape != param.shape or weight.dim() < 2 \
                    or not weight.is_floating_point():
                continue
            transposed = bool(getattr(module, "transposed", False))
            if transposed and module.groups != 1:
                continue  # output channels interleave with groups along dim 1; no single filter axis
            filters = weight.transpose(0, 1) if transposed else weight  # output channels first
            value = filter_distances(filters)
            shape = (-1,) + (1,) * (filters.dim() - 1)
            full = value.view(shape).expand_as(filters)
            full = full.transpose(0, 1) if transposed else full
            scores[names[id(param)]] = full.contiguous()
            bias, _ = layer_weight(module, "bias")
            if id(bias) in names and bias.shape == value.shape:
                scores[names[id(bias)]] = value.clone()
        return scores


@hookimpl
def orchestrator_register_scorers(register):
    register(FPGMScorer())
