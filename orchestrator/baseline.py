"""The baseline: the task's model trained once per (task, seed), cached, and used as the teacher."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from orchestrator.atomic import atomic_write_bytes
from orchestrator.task import Task, TaskData
from orchestrator.training import evaluate_module, fit

CACHE_ENV = "ORCHESTRATOR_CACHE_DIR"


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "compression-orchestrator"
    return Path(os.environ.get(CACHE_ENV, default))


@dataclass
class Baseline:
    model: nn.Module
    val_metric: float
    test_metric: float
    cached: bool
    #: weights early in the baseline's training (``rewind_epoch``), for lottery-ticket rewinding
    rewind_state: dict[str, torch.Tensor] | None = None


def rewind_epoch(epochs: int) -> int:
    """The early point of training weights are rewound to: about 10% in (Frankle et al., 2020)."""
    return max(1, round(0.1 * epochs))


def prepare_baseline(task: Task, data: TaskData, seed: int, log: Callable[[str], None] = print) -> Baseline:
    """Load the cached baseline for (task, seed), or train it and cache it."""
    path = cache_dir() / "baselines" / f"{task.name}-{task.fingerprint()}-seed{seed}.pt"
    rewind_path = path.with_name(path.stem + "-rewind.pt")
    torch.manual_seed(seed)
    model = task.build_model()
    if path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        model.eval()
        rewind = torch.load(rewind_path, weights_only=True) if rewind_path.is_file() else None
        return Baseline(model, evaluate_module(model, task, *data.val), evaluate_module(model, task, *data.test), True,
                        rewind)
    s = task.baseline_training
    log(f"training the {task.name} baseline ({s.epochs} epochs, seed {seed}); cached for later runs")
    baseline = train_baseline(task, data, seed, model=model)
    _save(rewind_path, baseline.rewind_state or {})
    _save(path, baseline.model.state_dict())  # last: its presence means the cache entry is complete
    return baseline


def train_baseline(task: Task, data: TaskData, seed: int, model: nn.Module | None = None) -> Baseline:
    """Train the task's model (``model``, else a fresh one built under ``seed``) with its
    ``baseline_training`` settings, keeping its early weights for rewinding; nothing is cached."""
    if model is None:
        torch.manual_seed(seed)
        model = task.build_model()
    s = task.baseline_training
    early: dict[str, torch.Tensor] = {}

    def keep_early(epoch: int, val: float) -> bool:
        if epoch == rewind_epoch(s.epochs):
            early.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        return False

    fit(model, task, data, epochs=s.epochs, lr=s.lr, batch_size=s.batch_size, seed=seed, weight_decay=s.weight_decay,
        on_epoch=keep_early)
    model.eval()
    return Baseline(model, evaluate_module(model, task, *data.val), evaluate_module(model, task, *data.test), False,
                    early or None)


def _save(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())
