"""The four strategy families and their contracts.

A strategy is a small object with a ``name``, a hyper-parameter ``space`` declared as data
(see :mod:`orchestrator.params`), ``defaults`` (the sensible single-technique setting that is
enqueued first; ``defaults_for`` may adapt it to the model; ``space_for`` fixes what cannot
matter on it), an applicability check and one method that does the work. Strategies are
contributed by plugins through the ``orchestrator_register_*`` hooks.

Every method receives a fresh copy of the model (the baseline is never mutated) and the
:class:`TrialContext`; ``params`` holds one value per declared parameter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import torch
from torch import nn

from orchestrator.params import Param

if TYPE_CHECKING:
    from orchestrator.context import TrialContext

Scores = dict[str, torch.Tensor]


class Strategy(ABC):
    family: ClassVar[str]
    name: ClassVar[str]
    space: ClassVar[Mapping[str, Param]] = {}
    defaults: ClassVar[Mapping[str, Any]] = {}
    #: The numeric parameter that sets how hard the strategy works (a pruner's fraction removed, a
    #: distiller's epochs), or None. The driver's default recipes try the chained pipeline a step
    #: lighter and a step stronger along it (``orchestrator.study.sampling.default_recipes``), then
    #: move along it towards the constraints' edge (``orchestrator.study.ladder.next_rung``).
    strength: ClassVar[str | None] = None

    def applicable(self, model: nn.Module, ctx: "TrialContext") -> str | None:
        """Return None when the strategy can run on ``model``, else the reason it cannot."""
        return None

    def defaults_for(self, model: nn.Module) -> Mapping[str, Any]:
        """The sensible setting for ``model``, enqueued in the first trials: ``defaults`` unless the
        model's layout calls for another (whole attention heads removed from a transformer, say);
        keys left out keep their ``defaults``. Called once per run on the baseline itself, as
        ``applicable`` is, and only when that said the strategy applies: read it, never change it."""
        return self.defaults

    def space_for(self, model: nn.Module, space: Mapping[str, Param]) -> Mapping[str, Param]:
        """``space`` (the strategy's parameters as the run's search space narrowed them) narrowed to
        what can make a difference on ``model``: a parameter that does nothing on it, or only fails,
        fixed to one value, so the sampler spends no trials on it (whole attention heads on a model
        without any, say). Every key stays; a value may only narrow. Called once per run on the
        baseline, as ``defaults_for`` is: read the model, never change it."""
        return space

    def describe(self, params: Mapping[str, Any]) -> str:
        """The strategy with its parameters in words, for tables and reports."""
        if not params:
            return self.name
        return self.name + " " + " ".join(f"{k}={_fmt(v)}" for k, v in params.items())


class Scorer(Strategy):
    """Importance of each parameter, elementwise.

    ``score`` returns a mapping from parameter name (as in ``model.named_parameters()``) to a
    non-negative tensor of the parameter's shape; higher means more important. Channel-level
    scorers broadcast one value over the channel. Parameters left out are never pruned.
    """

    family: ClassVar[str] = "scorer"

    @abstractmethod
    def score(self, model: nn.Module, ctx: "TrialContext", params: Mapping[str, Any]) -> Scores: ...


class Pruner(Strategy):
    """Removes weights (unstructured) or whole channels (structured) by the scorer's importance.

    ``prune`` returns the pruned model (it may modify and return ``model``): smaller tensors, or
    zeroed weights whose masks may stay in place through the train stage. ``finalize`` then makes
    them permanent. Pruners that prune in steps can re-score with ``ctx.rescore(model)``.
    """

    family: ClassVar[str] = "pruner"
    #: Whether a scorer must run first. The ``none`` pruner needs none.
    needs_scores: ClassVar[bool] = True
    #: Whether ``prune`` trains the model (between pruning steps, or rounds rewound to early
    #: training). Such a pruner is not run outside a trial: the chain's ladder measures each of its rungs,
    #: where for the others it first sees, untrained, whether a rung makes a model already measured.
    trains: ClassVar[bool] = False

    @abstractmethod
    def prune(self, model: nn.Module, scores: Scores | None, ctx: "TrialContext",
              params: Mapping[str, Any]) -> nn.Module: ...

    def finalize(self, model: nn.Module, ctx: "TrialContext", params: Mapping[str, Any]) -> nn.Module:
        """Called after the train stage: make masks permanent (zeros in the weights, no mask
        buffers or hooks left). Masks kept until here stop training from regrowing pruned weights."""
        return model


class Distiller(Strategy):
    """The train stage: fine-tunes the compressed student, optionally guided by the teacher
    (``ctx.teacher``, the baseline). Reports per-epoch validation accuracy through
    ``ctx.report_epoch`` and stops when it returns True."""

    family: ClassVar[str] = "distiller"

    @abstractmethod
    def train(self, model: nn.Module, ctx: "TrialContext", params: Mapping[str, Any]) -> nn.Module: ...


class Quantizer(Strategy):
    """Turns the trained model into the deployable artifact for ``ctx.runtime``.

    ``quantize`` receives the fp32 artifact the core exported (``fp32_path``) and writes its own
    artifact to ``out_path`` (same suffix), returning the path of the file to ship. Quantizers
    that train with the model (QAT) also implement ``prepare_training`` and ``end_training``.
    """

    family: ClassVar[str] = "quantizer"
    #: The deployment runtimes this quantizer produces artifacts for.
    runtimes: ClassVar[tuple[str, ...]] = ("onnxruntime",)
    #: The fewest bytes the artifact stores per weight (4 fp32, 2 fp16, 1 int8): lets a size_mb
    #: constraint reject a recipe before training. None: unknown, no such check.
    min_bytes_per_weight: ClassVar[float | None] = None

    def applicable(self, model: nn.Module, ctx: "TrialContext") -> str | None:
        if ctx.runtime not in self.runtimes:
            return f"quantizer '{self.name}' targets {', '.join(self.runtimes)}, not runtime '{ctx.runtime}'"
        return None

    def prepare_training(self, model: nn.Module, ctx: "TrialContext", params: Mapping[str, Any]) -> nn.Module:
        """Called before the train stage; quantization-aware training inserts fake quantization here."""
        return model

    def end_training(self, model: nn.Module, ctx: "TrialContext", params: Mapping[str, Any]) -> nn.Module:
        """Called after the train stage, before export: remove what ``prepare_training`` inserted."""
        return model

    @abstractmethod
    def quantize(self, model: nn.Module, fp32_path: Path, out_path: Path, ctx: "TrialContext",
                 params: Mapping[str, Any]) -> Path: ...

    def torch_equivalent(self, model: nn.Module, params: Mapping[str, Any]) -> nn.Module | None:
        """A torch module computing what this quantizer's artifact computes from the float
        ``model``, for exporting a trial to a torch format (TorchScript, ``torch.export``); None
        when torch cannot reproduce it (int8 kernels of ONNX Runtime), the default."""
        return None


FAMILIES: dict[str, type[Strategy]] = {
    "scorer": Scorer, "pruner": Pruner, "distiller": Distiller, "quantizer": Quantizer,
}
#: Recipe stage -> strategy family, in the canonical order.
STAGES: dict[str, str] = {"score": "scorer", "prune": "pruner", "train": "distiller", "quantize": "quantizer"}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)
