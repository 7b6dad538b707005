"""``channel``: structured pruning that physically removes channels.

Torch-Pruning's dependency graph (Fang et al., "DepGraph: Towards Any Structural Pruning",
CVPR 2023) finds every layer coupled to a channel (the next layer's inputs, BatchNorm, residual
additions, concatenations) so they are removed together and the model stays valid. Channel
importance is the scorer's elementwise importance summed over each coupled group. The layers
that produce the model's outputs are never pruned.

Transformers: the residual stream (embedding width), ``nn.MultiheadAttention`` and BERT-style
self-attention blocks (modules with ``query``/``key``/``value`` linears and
``num_attention_heads``, as in Hugging Face's BERT) are pruned consistently; ``prune_heads``
removes whole attention heads instead of narrowing every head.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch_pruning as tp
from torch import nn
from torch_pruning.pruner import function

from orchestrator import hookimpl
from orchestrator.errors import InapplicableError
from orchestrator.params import Choice, Float, Param
from orchestrator.strategies import Pruner, Scores
from orchestrator.tracing import traced_forward

PRUNABLE = (nn.modules.conv._ConvNd, nn.Linear)


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
    out = traced_forward(model, example, [
        m.register_forward_hook(lambda mod, inp, out: produced.__setitem__(out.data_ptr(), mod))
        for m in model.modules() if isinstance(m, PRUNABLE)])
    outputs = out if isinstance(out, (tuple, list)) else [out]
    heads = [produced[o.data_ptr()] for o in outputs if o.data_ptr() in produced]
    if not heads:  # the head's output went through a copy; fall back to the last prunable layer
        heads = [m for m in model.modules() if isinstance(m, PRUNABLE)][-1:]
    return heads


#: Module types Torch-Pruning prunes itself; parameters held by any other module are "unwrapped".
_WRAPPED = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
            nn.Embedding, nn.MultiheadAttention, nn.PReLU, nn.LSTM)
_ROOTS = [nn.modules.conv._ConvNd, nn.Linear, nn.LSTM, nn.LayerNorm, nn.Embedding, nn.MultiheadAttention]


def _is_bert_attention(module: nn.Module) -> bool:
    return hasattr(module, "num_attention_heads") and all(
        isinstance(getattr(module, name, None), nn.Linear) for name in ("query", "key", "value"))


def attention_heads(model: nn.Module) -> dict[nn.Module, int]:
    """Torch-Pruning's ``num_heads``: every attention projection with its number of heads."""
    heads: dict[nn.Module, int] = {}
    for m in model.modules():
        if isinstance(m, nn.MultiheadAttention):
            heads[m] = m.num_heads
        elif _is_bert_attention(m):
            for name in ("query", "key", "value"):
                heads[getattr(m, name)] = m.num_attention_heads
    return heads


def _heads_can_go(heads: dict[nn.Module, int]) -> bool:
    """Whether whole heads can be removed: there are some, none of ``nn.MultiheadAttention`` (which
    ties its head width to the embedding width)."""
    return bool(heads) and not any(isinstance(m, nn.MultiheadAttention) for m in heads)


def _sync_bert_attention(model: nn.Module, num_heads: dict[nn.Module, int]) -> None:
    """BERT-style blocks keep their head count and width in attributes; match them to the new shapes."""
    for m in model.modules():
        if _is_bert_attention(m):
            m.num_attention_heads = num_heads.get(m.query, m.num_attention_heads)
            m.all_head_size = m.query.out_features
            m.attention_head_size = m.all_head_size // m.num_attention_heads


def unwrapped_parameters(model: nn.Module) -> list[tuple[nn.Parameter, int]]:
    """Parameters of custom modules (a learned positional embedding, a scale): pruned along their
    last non-singleton dimension, the channel dimension by convention."""
    found = []
    for m in model.modules():
        if isinstance(m, _WRAPPED):
            continue
        for p in m._parameters.values():
            if p is not None:
                dims = [d for d in range(p.dim()) if p.shape[d] > 1]
                found.append((p, dims[-1] if dims else p.dim() - 1))
    return found


def build_metapruner(model: nn.Module, scores: Scores | None, example: torch.Tensor, ratio: float, *,
                     global_pruning: bool = False, round_to: int = 1, prune_heads: bool = False,
                     **options: Any) -> tp.pruner.MetaPruner:
    """A Torch-Pruning MetaPruner set up for any model shape: the output layers ignored, attention
    heads and custom parameters declared. ``options`` pass through (``iterative_steps``, ...);
    call :func:`sync_attention` after each ``step()``."""
    heads = attention_heads(model)
    by_heads = prune_heads and bool(heads)
    if by_heads and not _heads_can_go(heads):
        raise InapplicableError("nn.MultiheadAttention ties its head width to the embedding width, so whole "
                                "heads cannot be removed; use prune_heads: false to narrow every head")
    # Torch-Pruning removes ceil(ratio x heads) heads of each layer: cap the ratio so one stays
    head_ratio = max(0.0, min(ratio, min((n - 1) / n for n in heads.values()) - 1e-6)) if by_heads else 0.0
    return tp.pruner.MetaPruner(
        model, example, importance=ScoreImportance(model, scores or {}), pruning_ratio=ratio,
        global_pruning=global_pruning, ignored_layers=output_layers(model, example),
        round_to=round_to if round_to > 1 else None, num_heads=heads, prune_num_heads=by_heads,
        prune_head_dims=not by_heads, head_pruning_ratio=head_ratio,
        root_module_types=_ROOTS, unwrapped_parameters=unwrapped_parameters(model), **options)


def sync_attention(model: nn.Module, pruner: tp.pruner.MetaPruner) -> None:
    """Match attention modules to their pruned shapes; a layer left with no head is an error.

    Global head pruning ranks heads across layers and may take all of one layer's (the cap in
    :func:`build_metapruner` holds only layer by layer)."""
    emptied = [name for name, m in model.named_modules() if pruner.num_heads.get(m, 1) < 1]
    if emptied:
        raise InapplicableError(f"head pruning removed every attention head of {', '.join(emptied)}; "
                                "lower the ratio, or use global_pruning: false or prune_heads: false")
    _sync_bert_attention(model, pruner.num_heads)


class ChannelPruner(Pruner):
    name = "channel"
    space = {"ratio": Float(0.05, 0.9), "global_pruning": Choice([False, True]), "round_to": Choice([1, 4, 8]),
             "prune_heads": Choice([False, True])}
    # widths in multiples of 4: ONNX Runtime's CPU kernels run them far faster (MNIST-1D, 65 % pruned,
    # static int8: 0.30 ms at round 4 against 0.52 ms at round 1, docs/strategies.md)
    defaults = {"ratio": 0.5, "global_pruning": False, "round_to": 4, "prune_heads": False}
    strength = "ratio"

    def applicable(self, model: nn.Module, ctx: Any) -> str | None:
        if not any(isinstance(m, PRUNABLE) for m in model.modules()):
            return "the model has no convolution or linear layer"
        return None

    def space_for(self, model: nn.Module, space: Mapping[str, Param]) -> Mapping[str, Param]:
        # whole heads: nothing to remove on a model without any, and nn.MultiheadAttention's cannot go
        heads = space.get("prune_heads")
        if heads is not None and heads.contains(False) and not _heads_can_go(attention_heads(model)):
            return {**space, "prune_heads": Choice([False])}
        return space

    def defaults_for(self, model: nn.Module) -> Mapping[str, Any]:
        # Whole heads where they can go (BERT-style blocks of two heads or more; a one-head layer caps
        # every layer's head ratio at 0): ONNX Runtime runs a model with fewer heads far faster than one
        # that keeps every head, each narrowed, at the same parameter count. tiny-text, 65 % pruned,
        # 14 epochs of distillation, static int8 (2 cores, batch 256, one thread): 3.66 ms with whole
        # heads removed, 6.18 ms with every head narrowed (docs/strategies.md).
        heads = attention_heads(model)
        if _heads_can_go(heads) and min(heads.values()) > 1:
            return {"prune_heads": True}  # the other parameters keep their defaults
        return self.defaults

    def prune(self, model: nn.Module, scores: Scores | None, ctx: Any, params: Mapping[str, Any]) -> nn.Module:
        ratio = float(params.get("ratio", 0.5))
        if ratio <= 0:
            return model
        pruner = build_metapruner(model, scores, ctx.example_inputs(2), ratio,
                                  global_pruning=bool(params.get("global_pruning", False)),
                                  round_to=int(params.get("round_to", 1)),
                                  prune_heads=bool(params.get("prune_heads", False)))
        pruner.step()
        sync_attention(model, pruner)
        return model

    def describe(self, params: Mapping[str, Any]) -> str:
        extra = " global" if params.get("global_pruning") else ""
        extra += " heads" if params.get("prune_heads") else ""
        extra += f" round {params['round_to']}" if int(params.get("round_to", 1)) > 1 else ""
        return f"channel {float(params.get('ratio', 0)):.0%}{extra}"


@hookimpl
def orchestrator_register_pruners(register):
    register(ChannelPruner())
