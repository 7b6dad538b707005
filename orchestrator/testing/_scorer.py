"""The contract of a scorer: importance per parameter, elementwise, without touching the model."""

from __future__ import annotations

import copy
from typing import Any, Mapping

import torch
from torch import nn

from orchestrator.context import TrialContext
from orchestrator.strategies import Strategy
from orchestrator.testing._base import Outcome, Bench, Snapshot, StrategyContract


class ScorerContract(StrategyContract):
    """Tests for a :class:`~orchestrator.strategies.Scorer`; see :mod:`orchestrator.testing`."""

    family = "scorer"

    def run(self, strategy: Strategy, model: nn.Module, ctx: TrialContext, params: Mapping[str, Any],
            bench: Bench) -> Outcome:
        snapshot = Snapshot(model)
        scores = strategy.score(model, ctx, params)
        return Outcome(model=model, scores=scores, input_changes=snapshot.changes(model, "the scored model"))

    def check_outcome(self, strategy: Strategy, outcome: Outcome, bench: Bench, before: nn.Module) -> None:
        scores = outcome.scores
        assert isinstance(scores, Mapping), f"score() must return a mapping, not {type(scores).__name__}"
        named = dict(before.named_parameters())
        assert scores, f"score() scored no parameter of {bench}, which it declared itself applicable to"
        unknown = sorted(set(scores) - set(named))
        assert not unknown, f"scores for names that are not parameters of the model: {unknown[:5]}"
        for name, s in scores.items():
            assert isinstance(s, torch.Tensor), f"scores['{name}'] is a {type(s).__name__}, not a tensor"
            assert s.is_floating_point(), f"scores['{name}'] has dtype {s.dtype}; importance is a real number"
            assert s.shape == named[name].shape, (f"scores['{name}'] has shape {tuple(s.shape)}, the parameter "
                                                  f"{tuple(named[name].shape)}")
            assert not s.requires_grad, f"scores['{name}'] is attached to an autograd graph: detach it"
            assert torch.isfinite(s).all(), f"scores['{name}'] holds NaN or infinite values"
            assert (s >= 0).all(), f"scores['{name}'] holds negative values; importance is non-negative"

    def assert_same(self, first: Outcome, second: Outcome) -> None:
        assert set(first.scores) == set(second.scores), "the same seed scored different parameters"
        differ = [n for n in first.scores if not torch.equal(first.scores[n], second.scores[n])]
        assert not differ, f"the same seed gave different scores for {differ[:5]}"

    def test_scores_are_non_negative_finite_and_shaped_like_their_parameters(
            self, strategy: Strategy, params: Mapping[str, Any], bench: Bench, model: nn.Module) -> None:
        before = copy.deepcopy(model)
        self.check_outcome(strategy, self.execute(strategy, model, bench.context(), params, bench), bench, before)
