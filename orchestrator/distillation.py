"""Base class for distillers that train the student with a loss of their own."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Mapping

import torch
from torch import nn

from orchestrator.context import TrialContext
from orchestrator.params import Float, Int, Param
from orchestrator.strategies import Distiller
from orchestrator.training import fit

#: Every training distiller searches its epochs and peak learning rate.
TRAINING_SPACE: dict[str, Param] = {"epochs": Int(0, 30), "lr": Float(1e-4, 1e-2, log=True)}


class TrainingDistiller(Distiller):
    """Trains the student for ``epochs`` at peak learning rate ``lr`` with :meth:`loss`.

    Subclasses add their own parameters to ``space`` (``TRAINING_SPACE | {...}``) and define the
    loss; batching, the optimizer, the schedule, validation curves and early stopping are shared.
    """

    space: ClassVar[Mapping[str, Param]] = TRAINING_SPACE
    defaults: ClassVar[Mapping[str, Any]] = {"epochs": 8, "lr": 3e-3}
    strength: ClassVar[str | None] = "epochs"
    batch_size: ClassVar[int] = 128

    @abstractmethod
    def loss(self, student_logits: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor,
             ctx: TrialContext, params: Mapping[str, Any]) -> torch.Tensor: ...

    def train(self, model: nn.Module, ctx: TrialContext, params: Mapping[str, Any]) -> nn.Module:
        fit(model, ctx.task, ctx.data, epochs=int(params.get("epochs", 0)), lr=float(params.get("lr", 1e-3)),
            batch_size=self.batch_size, seed=ctx.seed,
            loss_fn=lambda logits, x, y: self.loss(logits, x, y, ctx, params),
            on_epoch=ctx.report_epoch)
        return model
