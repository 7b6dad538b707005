"""``kd``: logit distillation from the baseline teacher.

Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network" (2015): the student
matches the teacher's temperature-softened distribution (weight ``alpha``, scaled by T^2 so the
gradient magnitude does not depend on T) and the true labels (weight ``1 - alpha``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from orchestrator import hookimpl
from orchestrator.distillation import TRAINING_SPACE, TrainingDistiller
from orchestrator.params import Float


class LogitDistiller(TrainingDistiller):
    name = "kd"
    space = TRAINING_SPACE | {"temperature": Float(1.0, 10.0), "alpha": Float(0.1, 0.95)}
    defaults = {"epochs": 8, "lr": 3e-3, "temperature": 4.0, "alpha": 0.7}

    def loss(self, student_logits, inputs, targets, ctx, params):
        t = float(params.get("temperature", 4.0))
        alpha = float(params.get("alpha", 0.7))
        with torch.no_grad():
            teacher_logits = ctx.teacher(inputs)
        soft = F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                        reduction="batchmean", log_target=True) * (t * t)
        return alpha * soft + (1.0 - alpha) * ctx.task.loss(student_logits, targets)

    def describe(self, params):
        return (f"kd T={float(params.get('temperature', 4)):.2g} alpha={float(params.get('alpha', 0.7)):.2g} "
                f"{int(params.get('epochs', 0))} epochs")


@hookimpl
def orchestrator_register_distillers(register):
    register(LogitDistiller())
