"""``taylor``: first-order Taylor importance, |w · dL/dw|, accumulated over training batches.

Molchanov et al., "Importance Estimation for Neural Network Pruning" (CVPR 2019): the loss change
of removing a weight is estimated to first order by ``w · dL/dw``. Its magnitude is summed over
``batches`` batches of 64 training samples (drawn with the trial's seed) and over a channel's
elements when a structured pruner sums the scores of a group.

Gradients are taken with the model in eval mode, so BatchNorm running statistics and dropout are
left alone and the importance is that of the model as it is deployed. The weights are not
changed, no ``.grad`` is left behind and the model is returned in eval mode.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from orchestrator import hookimpl
from orchestrator.params import Int
from orchestrator.strategies import Scorer, Scores

BATCH_SIZE = 64


class TaylorScorer(Scorer):
    name = "taylor"
    space = {"batches": Int(1, 32, log=True)}
    defaults = {"batches": 8}

    def applicable(self, model: nn.Module, ctx: Any) -> str | None:
        if len(ctx.data.train[0]) == 0:
            return "the task has no training data to take gradients on"
        return None

    def score(self, model: nn.Module, ctx: Any, params: Mapping[str, Any]) -> Scores:
        n_batches = max(1, int(params.get("batches", 8)))
        named = [(n, p) for n, p in model.named_parameters() if p.is_floating_point()]
        if not named:
            return {}
        device = named[0][1].device
        x_train, y_train = ctx.data.train
        gen = torch.Generator().manual_seed(int(ctx.seed))
        need = n_batches * BATCH_SIZE
        order = torch.cat([torch.randperm(len(x_train), generator=gen)
                           for _ in range(-(-need // len(x_train)))])[:need]

        requires = [p.requires_grad for _, p in named]
        model.eval()
        scores = {n: torch.zeros_like(p, requires_grad=False) for n, p in named}
        try:
            for _, p in named:
                p.requires_grad_(True)
            params_ = [p for _, p in named]
            for b in range(n_batches):
                idx = order[b * BATCH_SIZE : (b + 1) * BATCH_SIZE]
                x, y = x_train[idx].to(device), y_train[idx].to(device)
                with torch.enable_grad():
                    loss = ctx.task.loss(model(x), y)
                    # autograd.grad leaves every parameter's .grad untouched
                    grads = torch.autograd.grad(loss, params_, allow_unused=True)
                with torch.no_grad():
                    for (n, p), g in zip(named, grads):
                        if g is not None:
                            scores[n].add_((p * g).abs())
        finally:
            for (_, p), r in zip(named, requires):
                p.requires_grad_(r)
            model.eval()
        return scores


@hookimpl
def orchestrator_register_scorers(register):
    register(TaylorScorer())
