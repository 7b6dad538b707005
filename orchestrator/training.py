"""One training loop for the baseline and for every distiller, so they differ only in the loss."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from orchestrator.metrics.slot import compute_step
from orchestrator.task import Task, TaskData

#: loss(student_logits, inputs, targets) -> scalar
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def fit(model: nn.Module, task: Task, data: TaskData, *, epochs: int, lr: float, batch_size: int,
        seed: int, loss_fn: LossFn | None = None, weight_decay: float = 0.0,
        on_epoch: Callable[[int, float], bool] | None = None,
        extra_params: list[nn.Parameter] | None = None) -> list[float]:
    """Train ``model`` in place with AdamW and a cosine schedule; return validation metric per epoch.

    ``on_epoch(epoch, val_metric)`` returning True stops training early.
    """
    if epochs <= 0:
        return []
    loss_fn = loss_fn or (lambda logits, x, y: task.loss(logits, y))
    params = list(model.parameters()) + list(extra_params or [])
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    x_train, y_train = data.train
    steps_per_epoch = max(1, -(-len(x_train) // batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch,
                                                pct_start=0.15)
    gen = torch.Generator().manual_seed(seed)
    curve: list[float] = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        for i in range(steps_per_epoch):
            idx = order[i * batch_size : (i + 1) * batch_size]
            with compute_step():  # pauses while a latency is measured on this machine
                opt.zero_grad(set_to_none=True)
                x = x_train[idx]
                loss = loss_fn(model(x), x, y_train[idx])
                loss.backward()
                opt.step()
                sched.step()
        with compute_step():
            val = evaluate_module(model, task, *data.val)
        curve.append(val)
        if on_epoch is not None and on_epoch(epoch + 1, val):
            break
    model.eval()
    return curve


@torch.inference_mode()
def predict_module(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def evaluate_module(model: nn.Module, task: Task, x: torch.Tensor, y: torch.Tensor) -> float:
    return task.metric(predict_module(model, x), y)
