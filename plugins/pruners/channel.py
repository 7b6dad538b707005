"""``channel``: structured pruning that physically removes channels.

Torch-Pruning's dependency graph (Fang et al., "DepGraph: Towards Any Structural Pruning",
CVPR 2023) finds every layer coupled to a channel (the next layer's inputs, BatchNorm, residual
additions, concatenations) so they are removed together and the model stays valid. Channel
importance is the scorer's elementwise importance summed over each coupled group. The layers
that produce the model's outputs are never pruned.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch_pruning as tp
from torch import nn
from torch_pruning.pruner import function

from orchestrator import hookimpl
from orchestrator.params import Choice, Float
from orchestrator.strategies import Pruner, Scores

_PRUNABLE = (nn.modules.conv._ConvNd, nn.Linear)


class ScoreImportance(tp.importance.GroupMagnitudeImportance):
    """Adapts elementwise scores to Torch-Pruning's group importance interface."""

    def __init__(self, model: nn.Module, scores: Scores) -> None:
        super().__init__(p=1, group_reduction="mean", normalizer="mean")
        self.by_param = {id(p): scores[n] for n, p in model.named_parameters() if n in scores}

    @torch.no_grad()
    def __call__(self, group):
        imps, idxs_all = [], []
        for i, (dep, idxs) in enumerate(group):
            layer, fn = dep.layer, dep.pruning_fn
            score = self.by_param.get(id(getattr(layer, "weight", None)))
            if score is None:
                continue
            if fn in (function.prune_conv_out_channels, function.prune_linear_out_channels):
                s = score.transpose(0, 1) if getattr(layer, "transposed", False) else score
                imp = s[idxs].flatten(1).sum(1)
            elif fn in (function.prune_conv_in_channels, function.prune_linear_in_channels):
                s = score if getattr(layer, "transposed", False) else score.transpose(0, 1)
                imp = s.flatten(1).sum(1)
                if isinstance(layer, nn.modules.conv._ConvNd) and layer.groups not in (1, layer.in_channels):
                    imp = imp.repeat(layer.groups)
                imp = imp[idxs]
            elif fn in (function.prune_batchnorm_out_channels, function.prune_layernorm_out_channels):
                imp = score[idxs]
            else:
                continue
            imps.append(imp)
            idxs_all.append(group[i].root_idxs)
        if not imps:
            return None
        return self._normalize(self._reduce(imps, idxs_all), self.normalizer)


def output_layers(model: nn.Module, example: torch.Tensor) -> list[nn.Module]:
    """The layers whose outputs are the model's outputs (the classifier head): never pruned."""
    produced: dict[int, nn.Module] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out: produced.__setitem__(out.data_ptr(), mod))
             for m in model.modules() if isinstance(m, _PRUNABLE)]
    try:
        with torch.no_grad():
            out = model(example)
    finally:
        for h in hooks:
            h.remove()
    outputs = out if isinstance(out, (tuple, list)) else [out]
    heads = [produced[o.data_ptr()] for o in outputs if o.data_ptr() in produced]
    if not heads:  # the head's output went through a copy; fall back to the last prunable layer
        heads = [m for m in model.modules() if isinstance(m, _PRUNABLE)][-1:]
    return heads


class ChannelPruner(Pruner):
    name = "channel"
    space = {"ratio": Float(0.05, 0.9), "global_pruning": Choice([False, True])}
    defaults = {"ratio": 0.5, "global_pruning": False}

    def applicable(self, model: nn.Module, ctx: Any) -> str | None:
        if not any(isinstance(m, _PRUNABLE) for m in model.modules()):
            return "the model has no convolution or linear layer"
        return None

    def prune(self, model: nn.Module, scores: Scores | None, ctx: Any, params: Mapping[str, Any]) -> nn.Module:
        ratio = float(params.get("ratio", 0.5))
        if ratio <= 0:
            return model
        example = ctx.example_inputs(2)
        pruner = tp.pruner.MetaPruner(
            model, example, importance=ScoreImportance(model, scores or {}), pruning_ratio=ratio,
            global_pruning=bool(params.get("global_pruning", False)), ignored_layers=output_layers(model, example))
        pruner.step()
        return model

    def describe(self, params: Mapping[str, Any]) -> str:
        scope = " global" if params.get("global_pruning") else ""
        return f"channel {float(params.get('ratio', 0)):.0%}{scope}"


@hookimpl
def orchestrator_register_pruners(register):
    register(ChannelPruner())
