"""``feature``: hint-based distillation of intermediate features, optionally with logit KD.

Romero et al., "FitNets: Hints for Thin Deep Nets" (ICLR 2015): the student's intermediate
features are regressed onto the teacher's (mean squared error) through learned projections — a
1x1 convolution for convolutional features, a linear map for the rest — which absorb the width
difference after channel pruning. ``kd_alpha`` > 0 adds Hinton's logit distillation on top.
The hint layers are the last ``layers`` convolution/linear layers the teacher executes before its
output layer, hooked by name in the student; the projections are trained with the student and
discarded afterwards.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from orchestrator import hookimpl
from orchestrator.distillation import TRAINING_SPACE, TrainingDistiller
from orchestrator.params import Float, Int
from orchestrator.strategies import Distiller
from orchestrator.tracing import traced_forward
from orchestrator.training import fit

_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)


def executed_layers(model: nn.Module, example: torch.Tensor) -> list[str]:
    """Names of the convolution/linear layers in the order a forward pass runs them."""
    names = {m: n for n, m in model.named_modules()}
    order: list[str] = []
    traced_forward(model, example, [m.register_forward_hook(lambda mod, i, o: order.append(names[mod]))
                                    for m in model.modules() if isinstance(m, _LAYERS)])
    return list(dict.fromkeys(order))


def _projection(layer: nn.Module, student: torch.Tensor, teacher: torch.Tensor) -> nn.Module:
    """Maps student features to the teacher's width: over dim 1 after a convolution, else the last dim."""
    if isinstance(layer, nn.modules.conv._ConvNd):
        conv = {3: nn.Conv1d, 4: nn.Conv2d, 5: nn.Conv3d}[student.dim()]
        proj: nn.Module = conv(student.shape[1], teacher.shape[1], kernel_size=1, bias=False)
    else:
        proj = nn.Linear(student.shape[-1], teacher.shape[-1], bias=False)
    if proj.weight.shape[0] == proj.weight.shape[1]:  # an unpruned layer starts from the identity
        with torch.no_grad():
            proj.weight.copy_(torch.eye(proj.weight.shape[0]).view_as(proj.weight))
    return proj


class FeatureDistiller(Distiller):
    name = "feature"
    space = TRAINING_SPACE | {"beta": Float(0.1, 10.0, log=True), "layers": Int(1, 3),
                              "kd_alpha": Float(0.0, 0.9), "temperature": Float(1.0, 10.0)}
    defaults = {"epochs": 8, "lr": 3e-3, "beta": 1.0, "layers": 2, "kd_alpha": 0.5, "temperature": 4.0}
    strength = "epochs"

    def applicable(self, model: nn.Module, ctx: Any) -> str | None:
        if len([m for m in model.modules() if isinstance(m, _LAYERS)]) < 2:
            return "the model has no intermediate convolution or linear layer to take hints from"
        return None

    def train(self, model: nn.Module, ctx: Any, params: Mapping[str, Any]) -> nn.Module:
        epochs = int(params.get("epochs", 0))
        if epochs <= 0:
            return model
        from orchestrator_plugins.pruners.channel import output_layers

        # Hint layers are chosen on the teacher and hooked by name in the student, whatever wraps them
        # there (quantization-aware training replaces a layer by a fake-quantizing module of its name).
        example = ctx.example_inputs(2)
        teacher = ctx.teacher
        heads = {n for n, m in teacher.named_modules() if m in output_layers(teacher, example)}
        hints = [n for n in executed_layers(teacher, example) if n not in heads][-int(params.get("layers", 2)):]
        teacher_modules, student_modules = dict(teacher.named_modules()), dict(model.named_modules())
        hints = [n for n in hints if n in student_modules]
        feats: dict[tuple[str, str], torch.Tensor] = {}
        hooks = []
        for side, modules in (("s", student_modules), ("t", teacher_modules)):
            for n in hints:
                hooks.append(modules[n].register_forward_hook(
                    lambda mod, i, o, key=(side, n): feats.__setitem__(key, o)))
        try:
            with torch.no_grad():
                ctx.teacher(example)
                model.eval()(example)
            projections = nn.ModuleDict({n.replace(".", "/"): _projection(teacher_modules[n], feats[("s", n)],
                                                                          feats[("t", n)]) for n in hints})
            beta, alpha = float(params.get("beta", 1.0)), float(params.get("kd_alpha", 0.5))
            t = float(params.get("temperature", 4.0))

            def loss(student_logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                with torch.no_grad():
                    teacher_logits = ctx.teacher(x)
                hint = sum(F.mse_loss(projections[n.replace(".", "/")](feats[("s", n)]), feats[("t", n)])
                           for n in hints) / max(1, len(hints))
                total = (1.0 - alpha) * ctx.task.loss(student_logits, y) + beta * hint
                if alpha > 0:
                    total = total + alpha * t * t * F.kl_div(F.log_softmax(student_logits / t, dim=1),
                                                             F.log_softmax(teacher_logits / t, dim=1),
                                                             reduction="batchmean", log_target=True)
                return total

            fit(model, ctx.task, ctx.data, epochs=epochs, lr=float(params.get("lr", 1e-3)),
                batch_size=TrainingDistiller.batch_size, seed=ctx.seed, loss_fn=loss, on_epoch=ctx.report_epoch,
                extra_params=list(projections.parameters()))
        finally:
            for h in hooks:
                h.remove()
        return model

    def describe(self, params: Mapping[str, Any]) -> str:
        kd = f" + kd {float(params.get('kd_alpha', 0)):.2g}" if float(params.get("kd_alpha", 0)) > 0 else ""
        return (f"feature x{int(params.get('layers', 2))} beta={float(params.get('beta', 1)):.2g}{kd} "
                f"{int(params.get('epochs', 0))} epochs")


@hookimpl
def orchestrator_register_distillers(register):
    register(FeatureDistiller())
