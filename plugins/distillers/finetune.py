"""``none``: no teacher; plain fine-tuning with the task's own loss (``epochs: 0`` trains nothing)."""

from __future__ import annotations

from orchestrator import hookimpl
from orchestrator.distillation import TrainingDistiller


class FineTune(TrainingDistiller):
    name = "none"

    def loss(self, student_logits, inputs, targets, ctx, params):
        return ctx.task.loss(student_logits, targets)

    def describe(self, params):
        return f"{int(params.get('epochs', 0))} epochs lr={float(params.get('lr', 0)):.2g}"


@hookimpl
def orchestrator_register_distillers(register):
    register(FineTune())
