"""``unstructured``: element-wise pruning of the least important weights to a target sparsity.

Han et al., "Learning both Weights and Connections for Efficient Neural Networks" (NeurIPS
2015): the weights with the lowest importance (the scorer's, elementwise; |w| for ``magnitude``)
are set to zero, either per layer (every layer at the target) or by one global ranking over
every prunable weight (layers end up at different sparsities).

Prunable are the weights of convolutions and linear layers, and the projection weights of
``nn.MultiheadAttention``; never biases, normalization layers or the layers producing the
model's outputs (:func:`~orchestrator_plugins.pruners.channel.output_layers`).

Masks live as a parametrization (``torch.nn.utils.parametrize``) from ``prune`` until
``finalize``: the weight is recomputed as ``original * mask`` on every access, so fine-tuning in
the train stage cannot regrow a pruned weight (and the pruned entries of ``original`` are zeroed
too). ``finalize`` removes the parametrization, leaving plain ``weight`` Parameters that hold
real zeros. The shapes do not change: the artifact stores the zeros densely, so the file is as
large as before but compresses far better (``gzip_mb``); speed-ups need a sparse runtime.

The helpers here (:func:`prunable_targets`, :func:`compute_masks`, :func:`apply_masks`,
:func:`make_permanent`) are shared by the ``iterative`` and ``lottery`` pruners.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from orchestrator import hookimpl
from orchestrator.params import Choice, Float
from orchestrator.strategies import Pruner, Scores
from orchestrator_plugins.pruners.channel import PRUNABLE, output_layers

SCOPES = ("per-layer", "global")
#: the projection weights of ``nn.MultiheadAttention`` (its ``out_proj`` is an ``nn.Linear``)
_ATTENTION_WEIGHTS = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")
_ORIGINAL = re.compile(r"^(.*?)parametrizations\.([^.]+)\.original$")
_MASK_BUFFER = re.compile(r"parametrizations\.[^.]+\.\d+\.mask$")


class WeightMask(nn.Module):
    """The parametrization ``weight = original * mask``; ``mask`` is a boolean buffer."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.detach().to(torch.bool).clone())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask


@dataclass(eq=False)
class Target:
    """One prunable weight: ``getattr(module, attr)``, named ``name`` in ``model.named_parameters()``
    of the unpruned model."""

    module: nn.Module
    attr: str
    name: str

    @property
    def weight(self) -> torch.Tensor:
        """The effective (masked) weight."""
        return getattr(self.module, self.attr)

    @property
    def original(self) -> nn.Parameter:
        """The trainable tensor: the weight itself, or the parametrization's ``original``."""
        if self.mask_module is not None:
            return self.module.parametrizations[self.attr].original
        return getattr(self.module, self.attr)

    @property
    def mask_module(self) -> WeightMask | None:
        if not parametrize.is_parametrized(self.module, self.attr):
            return None
        return next((p for p in self.module.parametrizations[self.attr] if isinstance(p, WeightMask)), None)

    @property
    def mask(self) -> torch.Tensor | None:
        m = self.mask_module
        return None if m is None else m.mask


def prunable_targets(model: nn.Module, example: torch.Tensor) -> list[Target]:
    """Conv / linear weights and attention projections, except the layers producing the outputs."""
    heads = {id(m) for m in output_layers(model, example)}
    targets = []
    for mname, module in model.named_modules():
        if id(module) in heads:
            continue
        prefix = f"{mname}." if mname else ""
        if isinstance(module, PRUNABLE):
            attrs = ["weight"]
        elif isinstance(module, nn.MultiheadAttention):
            attrs = [a for a in _ATTENTION_WEIGHTS if getattr(module, a, None) is not None]
        else:
            continue
        targets.extend(Target(module, a, prefix + a) for a in attrs)
    return targets


def magnitude_scores(targets: Sequence[Target]) -> list[torch.Tensor]:
    """|w| of the current (masked) weights: the ranking of |w|^p for every p."""
    with torch.no_grad():
        return [t.weight.detach().abs() for t in targets]


def scores_for(targets: Sequence[Target], scores: Scores | None) -> list[torch.Tensor | None]:
    """Each target's scores, by its plain name or the name of its parametrization's ``original``.

    ``None`` scores mean weight magnitude; a target missing from ``scores`` gets None (never pruned).
    """
    if scores is None:
        return list(magnitude_scores(targets))
    out: list[torch.Tensor | None] = []
    for t in targets:
        prefix, _, attr = t.name.rpartition(".")
        alt = f"{prefix}.parametrizations.{attr}.original" if prefix else f"parametrizations.{attr}.original"
        s = scores.get(t.name, scores.get(alt))
        out.append(None if s is None else s.detach())
    return out


def compute_masks(targets: Sequence[Target], scores: Sequence[torch.Tensor | None], sparsity: float,
                  scope: str) -> list[torch.Tensor]:
    """Boolean keep-masks pruning the lowest-scored ``sparsity`` of the weights (per layer or globally).

    Weights already masked stay pruned and count towards the target, so repeated calls with a
    rising sparsity prune monotonically. Targets without scores are kept whole (and, in global
    scope, do not count towards the target).
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    ranked = []
    for t, s in zip(targets, scores):
        if s is None:
            ranked.append(None)
            continue
        if s.shape != t.original.shape:
            raise ValueError(f"scores for '{t.name}' have shape {tuple(s.shape)}, the weight {tuple(t.original.shape)}")
        s = s.detach().to(torch.float32).flatten().clone()
        old = t.mask
        if old is not None:
            s[~old.flatten()] = -1.0  # scores are non-negative: the pruned go first
        ranked.append(s)

    def prune_lowest(flat: torch.Tensor) -> torch.Tensor:
        keep = torch.ones_like(flat, dtype=torch.bool)
        k = int(round(sparsity * flat.numel()))
        if k > 0:
            keep[torch.argsort(flat, stable=True)[:k]] = False
        return keep

    masks: list[torch.Tensor | None] = [None] * len(targets)
    if scope == "per-layer":
        for i, s in enumerate(ranked):
            if s is not None:
                masks[i] = prune_lowest(s)
    else:
        scored = [i for i, s in enumerate(ranked) if s is not None]
        if scored:
            keep = prune_lowest(torch.cat([ranked[i] for i in scored]))
            for i, part in zip(scored, keep.split([ranked[i].numel() for i in scored])):
                masks[i] = part
    out = []
    for t, m in zip(targets, masks):
        w = t.original
        m = torch.ones(w.shape, dtype=torch.bool, device=w.device) if m is None else m.view(w.shape).to(w.device)
        old = t.mask
        out.append(m if old is None else m & old)
    return out


def apply_masks(targets: Sequence[Target], masks: Sequence[torch.Tensor]) -> None:
    """Install (or tighten) each mask and zero the pruned entries of the trainable tensor."""
    with torch.no_grad():
        for t, mask in zip(targets, masks):
            mask = mask.to(device=t.original.device, dtype=torch.bool)
            existing = t.mask_module
            if existing is None:
                if bool(mask.all()):
                    continue  # nothing pruned here: leave the layer plain
                parametrize.register_parametrization(t.module, t.attr, WeightMask(mask))
            else:
                existing.mask.copy_(existing.mask & mask)
            t.original.mul_(t.mask)


def make_permanent(model: nn.Module) -> nn.Module:
    """Bake every :class:`WeightMask` into its weight: plain Parameters holding zeros, no buffers left."""
    for module in list(model.modules()):
        if not parametrize.is_parametrized(module):
            continue
        for attr in list(module.parametrizations.keys()):
            plist = module.parametrizations[attr]
            if all(isinstance(p, WeightMask) for p in plist):
                parametrize.remove_parametrizations(module, attr, leave_parametrized=True)
    return model


def _rewindable(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Parameters and persistent buffers (what a state_dict holds), masks excluded."""
    saved = set(model.state_dict())
    return [(n, t) for n, t in list(model.named_parameters()) + list(model.named_buffers())
            if n in saved and not _MASK_BUFFER.search(n)]


def rewind(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Load ``state`` (a plain ``state_dict`` of the unpruned model) into the masked model, keep the masks."""
    with torch.no_grad():
        for name, tensor in _rewindable(model):
            m = _ORIGINAL.match(name)
            key = m.group(1) + m.group(2) if m else name
            if key not in state:
                raise KeyError(f"the rewind state has no entry for '{key}'")
            tensor.copy_(state[key])
        for module in model.modules():
            if parametrize.is_parametrized(module):
                for attr in module.parametrizations.keys():
                    plist = module.parametrizations[attr]
                    for p in plist:
                        if isinstance(p, WeightMask):
                            plist.original.mul_(p.mask)


def rewind_mismatch(model: nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """Why ``state`` cannot be rewound into ``model`` (unpruned), or None."""
    for name, tensor in _rewindable(model):
        m = _ORIGINAL.match(name)
        key = m.group(1) + m.group(2) if m else name
        if key not in state:
            return f"the rewind state has no '{key}'"
        if tuple(state[key].shape) != tuple(tensor.shape):
            return (f"the rewind state's '{key}' has shape {tuple(state[key].shape)}, "
                    f"the model's {tuple(tensor.shape)}")
    return None


class UnstructuredPruner(Pruner):
    name = "unstructured"
    space = {"sparsity": Float(0.05, 0.95), "scope": Choice(SCOPES)}
    defaults = {"sparsity": 0.5, "scope": "per-layer"}
    strength = "sparsity"

    def applicable(self, model: nn.Module, ctx: Any) -> str | None:
        if not prunable_targets(model, ctx.example_inputs(2)):
            return "the model has no convolution, linear or attention weight outside its output layer"
        return None

    def prune(self, model: nn.Module, scores: Scores | None, ctx: Any, params: Mapping[str, Any]) -> nn.Module:
        sparsity = float(params.get("sparsity", 0.5))
        if sparsity <= 0:
            return model
        targets = prunable_targets(model, ctx.example_inputs(2))
        masks = compute_masks(targets, scores_for(targets, scores), sparsity, str(params.get("scope", "per-layer")))
        apply_masks(targets, masks)
        return model

    def finalize(self, model: nn.Module, ctx: Any, params: Mapping[str, Any]) -> nn.Module:
        return make_permanent(model)

    def describe(self, params: Mapping[str, Any]) -> str:
        scope = " global" if params.get("scope") == "global" else ""
        return f"unstructured {float(params.get('sparsity', 0)):.0%}{scope}"


@hookimpl
def orchestrator_register_pruners(register):
    register(UnstructuredPruner())
