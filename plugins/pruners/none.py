"""``none``: leaves the model's weights as they are."""

from __future__ import annotations

from orchestrator import hookimpl
from orchestrator.strategies import Pruner


class NoPruner(Pruner):
    name = "none"
    needs_scores = False

    def prune(self, model, scores, ctx, params):
        return model


@hookimpl
def orchestrator_register_pruners(register):
    register(NoPruner())
