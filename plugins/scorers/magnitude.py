"""``magnitude``: importance is the weight's magnitude, |w|^p.

Summed over a channel this is the L1 (p=1) or squared L2 (p=2) filter norm used by Li et al.,
"Pruning Filters for Efficient ConvNets" (ICLR 2017), and elementwise it is the criterion of
Han et al., "Learning both Weights and Connections" (NeurIPS 2015).
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from orchestrator import hookimpl
from orchestrator.params import Choice
from orchestrator.strategies import Scorer, Scores


class MagnitudeScorer(Scorer):
    name = "magnitude"
    space = {"p": Choice([1, 2])}
    defaults = {"p": 1}

    def score(self, model: nn.Module, ctx: Any, params: Mapping[str, Any]) -> Scores:
        p = int(params.get("p", 1))
        return {name: param.detach().abs().pow(p) for name, param in model.named_parameters()}


@hookimpl
def orchestrator_register_scorers(register):
    register(MagnitudeScorer())
