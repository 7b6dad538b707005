"""The baseline: the task's model trained once per (task, seed), cached, and used as the teacher."""

from __future__ import annotations

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


def prepare_baseline(task: Task, data: TaskData, seed: int, log: Callable[[str], None] = print) -> Baseline:
    """Load the cached baseline for (task, seed), or train it and cache it."""
    path = cache_dir() / "baselines" / f"{task.name}-{task.fingerprint()}-seed{seed}.pt"
    torch.manual_seed(seed)
    model = task.build_model()
    if path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        model.eval()
        return Baseline(model, evaluate_module(model, task, *data.val), evaluate_module(model, task, *data.test), True)
    s = task.baseline_training
    log(f"training the {task.name} baseline ({s.epochs} epochs, seed {seed}); cached for later runs")
    fit(model, task, data, epochs=s.epochs, lr=s.lr, batch_size=s.batch_size, seed=seed, weight_decay=s.weight_decay)
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    import io

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    atomic_write_bytes(path, buf.getvalue())
    return Baseline(model, evaluate_module(model, task, *data.val), evaluate_module(model, task, *data.test), False)
