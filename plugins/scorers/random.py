"""``random``: uniform random importance, the baseline every pruning criterion is compared with.

Random pruning is the control a pruning criterion has to beat; Blalock et al., "What is the State
of Neural Network Pruning?" (MLSys 2020) use it as a baseline in their comparison of criteria.
Scores are drawn uniformly from [0, 1) by a ``torch.Generator`` seeded with the trial's seed, so a
trial is reproducible.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from orchestrator import hookimpl
from orchestrator.strategies import Scorer, Scores


class RandomScorer(Scorer):
    name = "random"

    def score(self, model: nn.Module, ctx: Any, params: Mapping[str, Any]) -> Scores:
        gen = torch.Generator().manual_seed(int(ctx.seed))
        # drawn on the CPU, in named_parameters() order, so the scores depend on the seed alone
        return {name: torch.rand(param.shape, generator=gen).to(param.device)
                for name, param in model.named_parameters()}


@hookimpl
def orchestrator_register_scorers(register):
    register(RandomScorer())
