"""``bn-scale``: a channel's importance is |gamma|, the scale of the BatchNorm that follows it.

Liu et al., "Learning Efficient Convolutional Networks through Network Slimming" (ICCV 2017):
BatchNorm multiplies each normalised channel by gamma, so a channel with a small |gamma| adds
little to the next layer. (The paper also trains with an L1 penalty on gamma to push
unimportant scales towards zero; this scorer only reads the scales.)

Channel-level: |gamma| scores the BatchNorm's weight and bias, and the filters (output channels)
and bias of the convolution or linear layer that produces the BatchNorm's input. The producer is
found by tracing the model on example inputs: the layer whose output the BatchNorm reads, or,
through Torch-Pruning's dependency graph, the layer before element-wise operations such as
activations. A BatchNorm fed by a sum (a residual addition) has no single producer, and only its
own parameters are scored. Every other parameter is left out, so it is never pruned.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch_pruning as tp
from torch import nn
from torch.nn.utils import parametrize

from orchestrator import hookimpl
from orchestrator.strategies import Scorer, Scores
from orchestrator.tracing import traced_forward

_BN = nn.modules.batchnorm._BatchNorm
_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)
_PRODUCERS = (tp.ops.OPTYPE.CONV, tp.ops.OPTYPE.DEPTHWISE_CONV, tp.ops.OPTYPE.LINEAR)


def _param(module: nn.Module, attr: str) -> torch.Tensor | None:
    """The parameter holding ``module.<attr>``: a parametrization's ``original`` (a pruning mask) or the attribute."""
    if parametrize.is_parametrized(module, attr):
        return module.parametrizations[attr].original
    return getattr(module, attr, None)


def _scaled_norms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, _BN) and isinstance(m.weight, torch.Tensor)]


def _out_channels(layer: nn.Module) -> int | None:
    """The number of output channels of a conv or linear layer, None if it has no single filter axis."""
    if isinstance(layer, nn.Linear):
        return layer.out_features
    if getattr(layer, "transposed", False) and layer.groups != 1:
        return None
    return layer.out_channels


def _trace_producers(model: nn.Module, example: torch.Tensor, norms: list[nn.Module]) -> dict[nn.Module, nn.Module]:
    """BatchNorm -> the conv/linear layer producing its input, through the dependency graph."""
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    producers = {}
    for bn in norms:
        node = graph.module2node.get(bn)
        seen = set()
        while node is not None and id(node) not in seen:
            seen.add(id(node))
            if len(node.inputs) != 1:
                break
            node = node.inputs[0]
            if node.type in _PRODUCERS:
                producers[bn] = node.module
                break
            if node.type != tp.ops.OPTYPE.ELEMENTWISE:
                break
    return producers


def _hook_producers(model: nn.Module, example: torch.Tensor, norms: list[nn.Module]) -> dict[nn.Module, nn.Module]:
    """Fallback when the graph cannot be traced: a BatchNorm whose input is a layer's very output."""
    outputs: list[tuple[torch.Tensor, nn.Module]] = []  # references keep the memory from being reused
    inputs: dict[nn.Module, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out: outputs.append((out, mod)))
             for m in model.modules() if isinstance(m, _LAYERS)]
    hooks += [bn.register_forward_pre_hook(lambda mod, inp: inputs.setdefault(mod, inp[0])) for bn in norms]
    traced_forward(model, example, hooks)
    producers = {}
    for bn, x in inputs.items():
        for out, layer in outputs:
            if isinstance(out, torch.Tensor) and out.data_ptr() == x.data_ptr() \
                    and out.shape == x.shape and out.stride() == x.stride():
                producers[bn] = layer
    return producers


def batchnorm_producers(model: nn.Module, example: torch.Tensor, log=lambda msg: None) -> dict[nn.Module, nn.Module]:
    """Each scaled BatchNorm of ``model`` -> the conv/linear layer whose output channels it normalises."""
    norms = _scaled_norms(model)
    if not norms:
        return {}
    was_training = model.training
    model.eval()
    try:
        found = _hook_producers(model, example, norms)
        try:
            with torch.enable_grad():
                found.update(_trace_producers(model, example, norms))
        except Exception as exc:  # a model Torch-Pruning cannot trace still has its direct conv -> BN pairs
            log(f"bn-scale: the dependency graph failed ({type(exc).__name__}: {exc}); "
                "only BatchNorms fed directly by a layer's output are matched")
    finally:
        model.train(was_training)
    return {bn: layer for bn, layer in found.items() if _out_channels(layer) == bn.num_features}


def _broadcast(value: torch.Tensor, weight: torch.Tensor, transposed: bool) -> torch.Tensor:
    axis = 1 if transposed else 0
    shape = [1] * weight.dim()
    shape[axis] = -1
    return value.view(shape).expand_as(weight).contiguous()


class BNScaleScorer(Scorer):
    name = "bn-scale"

    def applicable(self, model: nn.Module, ctx: Any) -> str | None:
        norms = [m for m in model.modules() if isinstance(m, _BN)]
        if not norms:
            return "the model has no BatchNorm layer, so there is no scale (gamma) to rank channels by"
        if not _scaled_norms(model):
            return "no BatchNorm layer of the model has a learnable scale (all are affine=False)"
        return None

    def score(self, model: nn.Module, ctx: Any, params: Mapping[str, Any]) -> Scores:
        names = {id(p): n for n, p in model.named_parameters()}
        scores: Scores = {}

        def put(param: torch.Tensor | None, value: torch.Tensor) -> None:
            name = names.get(id(param))
            if name is not None:  # a layer shared by several norms keeps the largest scale
                scores[name] = torch.maximum(scores[name], value) if name in scores else value

        for bn in _scaled_norms(model):
            gamma = bn.weight.detach().abs().float()
            put(_param(bn, "weight"), gamma.clone())
            put(_param(bn, "bias"), gamma.clone())
        log = getattr(ctx, "log", lambda msg: None)
        for bn, layer in batchnorm_producers(model, ctx.example_inputs(2), log).items():
            weight = _param(layer, "weight")
            if not isinstance(weight, torch.Tensor) or weight.dim() < 2:
                continue
            gamma = bn.weight.detach().abs().float().to(weight.device)
            put(weight, _broadcast(gamma, weight, bool(getattr(layer, "transposed", False))))
            put(_param(layer, "bias"), gamma.clone())
        return scores


@hookimpl
def orchestrator_register_scorers(register):
    register(BNScaleScorer())
