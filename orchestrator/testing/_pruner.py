"""The contract of a pruner: a smaller or sparser model that still runs, masks made permanent."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Mapping

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from orchestrator.context import TrialContext
from orchestrator.metrics.size import count_nonzero_params
from orchestrator.strategies import Scores, Strategy
from orchestrator.testing._base import Outcome, Bench, StrategyContract, outputs
from orchestrator.training import fit


def magnitude(model: nn.Module) -> Scores:
    """|w| for every parameter: the scores the suite hands a pruner that needs some."""
    return {n: p.detach().abs() for n, p in model.named_parameters()}


class PrunerContract(StrategyContract):
    """Tests for a :class:`~orchestrator.strategies.Pruner`; see :mod:`orchestrator.testing`."""

    family = "pruner"

    @pytest.fixture
    def prunes(self) -> bool:
        """Whether, with ``params``, the pruner removes at least one weight of the model."""
        return True

    def run(self, strategy: Strategy, model: nn.Module, ctx: TrialContext, params: Mapping[str, Any],
            bench: Bench, train_between: bool = False) -> Outcome:
        scores = None
        if strategy.needs_scores:  # as the pipeline does: magnitude stands in for the recipe's scorer
            scores = magnitude(model)
            ctx = dataclasses.replace(ctx, rescore=magnitude)
        model = strategy.prune(model, scores, ctx, params).eval()
        if train_between:
            after_prune = count_nonzero_params(model)
            fit(model, ctx.task, ctx.data, epochs=1, lr=1e-3, batch_size=64, seed=ctx.seed)
            model = strategy.finalize(model, ctx, params).eval()
            return Outcome(model=model, scores={"after_prune": after_prune})
        return Outcome(model=strategy.finalize(model, ctx, params).eval())

    def check_outcome(self, strategy: Strategy, outcome: Outcome, bench: Bench, before: nn.Module,
                      prunes: bool = False) -> None:
        model = outcome.model
        assert isinstance(model, nn.Module), f"prune() must return the pruned nn.Module, not {type(model).__name__}"
        x = bench.example(8)
        out, ref = outputs(model, x), outputs(before, x)
        assert out.shape == ref.shape, (f"the pruned {bench} gives outputs of shape {tuple(out.shape)}, "
                                        f"before pruning {tuple(ref.shape)}")
        assert torch.isfinite(out).all(), f"the pruned {bench} gives NaN or infinite outputs"
        masked = [n for n, m in model.named_modules() if parametrize.is_parametrized(m)]
        assert not masked, f"finalize() left parametrizations (masks) on {masked[:5]}: make them permanent"
        hooked = [n for n, m in model.named_modules() if m._forward_hooks or m._forward_pre_hooks]
        assert not hooked, f"hooks are left registered on {hooked[:5]}"
        numel = sum(p.numel() for p in model.parameters())
        numel_before = sum(p.numel() for p in before.parameters())
        assert numel <= numel_before, f"pruning grew the model from {numel_before:,} to {numel:,} parameters"
        nonzero, nonzero_before = count_nonzero_params(model), count_nonzero_params(before)
        assert nonzero <= nonzero_before, (f"pruning raised the non-zero parameters from {nonzero_before:,} "
                                           f"to {nonzero:,}")
        if prunes:
            assert nonzero < nonzero_before, (f"with these params '{strategy.name}' removed no weight of {bench} "
                                              "(override the `prunes` fixture if that is intended)")

    def assert_same(self, first: Outcome, second: Outcome) -> None:
        a, b = first.model.state_dict(), second.model.state_dict()
        assert list(a) == list(b), "the same seed pruned to different structures"
        differ = [k for k in a if a[k].shape != b[k].shape or not torch.equal(a[k], b[k])]
        assert not differ, f"the same seed gave different pruned weights in {differ[:5]}"

    def test_pruned_model_keeps_its_output_shape_with_no_more_weights(
            self, strategy: Strategy, params: Mapping[str, Any], bench: Bench, model: nn.Module, prunes: bool) -> None:
        before = copy.deepcopy(model)
        outcome = self.execute(strategy, model, bench.context(), params, bench)
        self.check_outcome(strategy, outcome, bench, before, prunes=prunes)

    def test_training_after_it_cannot_regrow_pruned_weights(
            self, strategy: Strategy, params: Mapping[str, Any], bench: Bench, model: nn.Module) -> None:
        """The train stage runs between ``prune`` and ``finalize``; the constraints checked before
        training count the weights ``prune`` left, so training must not add any back."""
        outcome = self.execute(strategy, model, bench.context(), params, bench, train_between=True)
        after_prune, final = outcome.scores["after_prune"], count_nonzero_params(outcome.model)
        assert final <= after_prune, (f"{after_prune:,} non-zero parameters after prune(), {final:,} after training "
                                      "and finalize(): training regrew pruned weights (keep masks until finalize)")
