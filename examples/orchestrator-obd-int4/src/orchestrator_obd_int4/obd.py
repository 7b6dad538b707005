"""``obd``: Optimal Brain Damage saliency, ½ · F_ii · w_i², the Hessian's diagonal taken as the empirical Fisher's.

LeCun, Denker and Solla, "Optimal Brain Damage" (NeurIPS 1989). Expand the loss to second order
around the trained weights: at a minimum the gradient term vanishes, and if the Hessian is taken
as diagonal, setting weight w_i to zero raises the loss by s_i = ½ · H_ii · w_i², its saliency.
The paper computes H_ii with a second backward pass (a Gauss-Newton approximation); here it is
the diagonal of the empirical Fisher, F_ii = (1/N) Σ_n (∂ℓ_n/∂w_i)², the mean over N training
samples of the *per-sample* squared gradient. (For a log-likelihood loss the Fisher is the
Gauss-Newton matrix; the empirical Fisher, with the data's labels instead of labels drawn from
the model, is the approximation used by Theis et al. 2018 "Faster gaze prediction with dense
networks and Fisher pruning" and by WoodFisher, Singh & Alistarh, NeurIPS 2020.)

Per-sample, not per-batch: the mean gradient of a batch is near zero at a minimum, which is what
makes a first-order criterion such as ``taylor`` (|w · Σ g|) blind there; the mean of squared
per-sample gradients is not. Per-sample gradients come from ``torch.func`` (``vmap`` over
``grad``) in chunks that bound the memory; a model ``vmap`` cannot trace falls back to one
backward pass per sample, which gives the same numbers more slowly.

Gradients are taken with the model in eval mode (BatchNorm statistics and dropout left alone);
the weights are not changed, no ``.grad`` is left behind and the model is returned in eval mode.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping

import torch
from torch import nn

from orchestrator.params import Int
from orchestrator.strategies import Scorer, Scores

BATCH_SIZE = 64
#: per-sample gradients held at once: about 256 MB of float32 whatever the model's size
_CHUNK_ELEMENTS = 1 << 26


class OBDScorer(Scorer):
    name = "obd"
    space = {"batches": Int(1, 32, log=True)}
    defaults = {"batches": 4}

    def applicable(self, model: nn.Module, ctx: Any) -> str | None:
        if len(ctx.data.train[0]) == 0:
            return "the task has no training data to estimate the Fisher information on"
        return None

    def score(self, model: nn.Module, ctx: Any, params: Mapping[str, Any]) -> Scores:
        named = [(n, p) for n, p in model.named_parameters() if p.is_floating_point()]
        if not named:
            return {}
        x, y = self._samples(ctx, max(1, int(params.get("batches", self.defaults["batches"]))))
        device = named[0][1].device
        x, y = x.to(device), y.to(device)
        model.eval()
        try:
            squares = per_sample_squared_gradients(model, named, x, y, ctx.task.loss)
        except Exception as exc:  # noqa: BLE001 - any model vmap cannot trace; the loop gives the same numbers
            ctx.log(f"obd: torch.func could not vectorise the per-sample gradients ({type(exc).__name__}: {exc}); "
                    "taking them one sample at a time")
            squares = per_sample_squared_gradients_loop(model, named, x, y, ctx.task.loss)
        finally:
            model.eval()
        with torch.no_grad():
            return {n: 0.5 * (squares[n] / len(x)) * p.detach().pow(2) for n, p in named}

    @staticmethod
    def _samples(ctx: Any, n_batches: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n_batches`` × 64 training samples, drawn with the trial's seed (the split repeats if short)."""
        x_train, y_train = ctx.data.train
        need = n_batches * BATCH_SIZE
        gen = torch.Generator().manual_seed(int(ctx.seed))
        order = torch.cat([torch.randperm(len(x_train), generator=gen)
                           for _ in range(-(-need // len(x_train)))])[:need]
        return x_train[order], y_train[order]


Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def per_sample_squared_gradients(model: nn.Module, named: list[tuple[str, nn.Parameter]], x: torch.Tensor,
                                 y: torch.Tensor, loss: Loss) -> dict[str, torch.Tensor]:
    """Σ_n (∂ℓ_n/∂p)² for each named parameter, vectorised over samples with ``torch.func``."""
    from torch.func import functional_call, grad, vmap

    weights = {n: p.detach() for n, p in named}
    buffers = dict(model.named_buffers())

    def sample_loss(weights: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return loss(functional_call(model, (weights, buffers), (xi.unsqueeze(0),)), yi.unsqueeze(0))

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    chunk = max(1, min(len(x), _CHUNK_ELEMENTS // max(1, sum(p.numel() for _, p in named))))
    squares = {n: torch.zeros_like(p, requires_grad=False) for n, p in named}
    with torch.no_grad(), warnings.catch_warnings():
        # ops without a batching rule (attention kernels) run sample by sample inside vmap: correct, slower
        warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet implemented")
        for start in range(0, len(x), chunk):
            grads = per_sample(weights, x[start : start + chunk], y[start : start + chunk])
            for n in squares:
                squares[n].add_(grads[n].pow(2).sum(dim=0))
    return squares


def per_sample_squared_gradients_loop(model: nn.Module, named: list[tuple[str, nn.Parameter]], x: torch.Tensor,
                                      y: torch.Tensor, loss: Loss) -> dict[str, torch.Tensor]:
    """The same sums as :func:`per_sample_squared_gradients`, one backward pass per sample."""
    requires = [p.requires_grad for _, p in named]
    squares = {n: torch.zeros_like(p, requires_grad=False) for n, p in named}
    try:
        for _, p in named:
            p.requires_grad_(True)
        params = [p for _, p in named]
        for i in range(len(x)):
            with torch.enable_grad():
                # autograd.grad leaves every parameter's .grad untouched
                grads = torch.autograd.grad(loss(model(x[i : i + 1]), y[i : i + 1]), params, allow_unused=True)
            with torch.no_grad():
                for (n, _), g in zip(named, grads):
                    if g is not None:
                        squares[n].add_(g.pow(2))
    finally:
        for (_, p), r in zip(named, requires):
            p.requires_grad_(r)
    return squares
