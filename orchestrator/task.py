"""The Task interface: what a model to compress brings with it.

A task owns its model architecture, its data (train / validation / test splits held as tensors,
so they can be shared once through Ray's object store), its loss and its metric. The baseline is
the task's model trained with ``baseline_training``; it is trained once per (task, seed), cached,
and serves as the teacher for distillation.

Built-in tasks are registered through ``orchestrator_register_tasks``; a user's own task is
named in the config by import path, ``package.module:factory``, where ``factory(**params)``
returns a :class:`Task`.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn


@dataclass(frozen=True)
class TrainSettings:
    """How the baseline is trained (distillers choose their own epochs and learning rate)."""

    epochs: int = 20
    lr: float = 3e-3
    batch_size: int = 128
    weight_decay: float = 1e-4


@dataclass
class TaskData:
    """The three splits as (inputs, targets) tensor pairs. The search selects on validation (its
    ``accuracy``, the training curves); test is held out from every decision and only gives the
    reported ``test_accuracy``."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]


class Task(ABC):
    """A model to compress, its data, its loss and its metric.

    Subclasses set ``name`` and implement :meth:`build_model` and :meth:`load_data`; everything
    else has a sensible default for classification.
    """

    name: ClassVar[str] = "task"
    #: Name of the metric :meth:`metric` computes; reported as ``accuracy`` in the results.
    metric_name: ClassVar[str] = "accuracy"
    baseline_training: ClassVar[TrainSettings] = TrainSettings()
    #: Name of the model input in exported ONNX files.
    input_name: ClassVar[str] = "input"

    def __init__(self, **params: Any) -> None:
        self.params = params

    @abstractmethod
    def build_model(self) -> nn.Module:
        """A fresh, untrained instance of the task's model architecture."""

    @abstractmethod
    def load_data(self, seed: int) -> TaskData:
        """The task's data, generated or loaded locally (never downloaded at run time)."""

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, targets)

    def metric(self, logits: torch.Tensor, targets: torch.Tensor) -> float:
        """Top-1 accuracy in [0, 1]."""
        return float((logits.argmax(dim=1) == targets).float().mean())

    def example_inputs(self, data: TaskData, batch_size: int) -> torch.Tensor:
        """A batch of real inputs of the requested size (repeated if the test split is smaller)."""
        x = data.test[0]
        reps = -(-batch_size // len(x))
        # a copy: an exported program stores its example input, and a view would carry the whole split
        return x.repeat((reps,) + (1,) * (x.dim() - 1))[:batch_size].clone()

    def calibration_batches(self, data: TaskData, n_batches: int = 8, batch_size: int = 64) -> list[torch.Tensor]:
        """Training inputs for post-training quantization calibration: ``n_batches`` full batches, or
        as many as the training split holds (one of all of it when it is smaller than a batch).
        Every batch has the same shape: ONNX Runtime's histogram calibrators stack them."""
        x = data.train[0]
        if n_batches < 1:
            return []
        full = min(n_batches, len(x) // batch_size)
        if full == 0:
            return [x]
        return [x[i * batch_size : (i + 1) * batch_size] for i in range(full)]

    def fingerprint(self) -> str:
        """Identifies the baseline: the same fingerprint and seed reuse the cached baseline. It covers
        the class, the factory's parameters, the training settings and the architecture (every
        parameter's name and shape)."""
        shapes = {k: list(v.shape) for k, v in self.build_model().state_dict().items()}
        blob = json.dumps({"task": self.name, "params": self.params, "cls": type(self).__qualname__,
                           "train": self.baseline_training.__dict__, "architecture": shapes},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
