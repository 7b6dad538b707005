"""The contract of a distiller (the train stage): a trained student, its curve reported, stopping when told."""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, Mapping

import torch
from torch import nn

from orchestrator.context import TrialContext
from orchestrator.strategies import Strategy
from orchestrator.testing._base import Outcome, Bench, StrategyContract, outputs

#: the fraction of channels removed from the baseline to make the student
STUDENT_RATIO = 0.5


class DistillerContract(StrategyContract):
    """Tests for a :class:`~orchestrator.strategies.Distiller`; see :mod:`orchestrator.testing`."""

    family = "distiller"

    def prepare_model(self, bench: Bench) -> nn.Module:
        """The student a trial trains: the baseline with half its channels removed by the built-in
        ``channel`` pruner (so it is narrower than the teacher), or the baseline when that fails."""
        from orchestrator_plugins.pruners.channel import ChannelPruner

        model = bench.model()
        try:
            return ChannelPruner().prune(model, {n: p.detach().abs() for n, p in model.named_parameters()},
                                         bench.context(), {"ratio": STUDENT_RATIO}).eval()
        except Exception:
            return bench.model()

    def run(self, strategy: Strategy, model: nn.Module, ctx: TrialContext, params: Mapping[str, Any],
            bench: Bench, stop_after: int | None = None) -> Outcome:
        reports: list[tuple[Any, Any]] = []

        def report_epoch(epoch: int, val_metric: float) -> bool:
            reports.append((epoch, val_metric))
            return stop_after is not None and len(reports) >= stop_after

        ctx = dataclasses.replace(ctx, report_epoch=report_epoch)
        trained = strategy.train(model, ctx, params)
        assert isinstance(trained, nn.Module), (f"train() must return the trained nn.Module, "
                                                f"not {type(trained).__name__}")
        return Outcome(model=trained.eval(), reports=reports)

    def check_outcome(self, strategy: Strategy, outcome: Outcome, bench: Bench, before: nn.Module) -> None:
        x = bench.example(8)
        out, ref = outputs(outcome.model, x), outputs(before, x)
        assert out.shape == ref.shape, (f"the trained {bench} gives outputs of shape {tuple(out.shape)}, "
                                        f"before training {tuple(ref.shape)}")
        assert torch.isfinite(out).all(), f"the trained {bench} gives NaN or infinite outputs"

    def assert_same(self, first: Outcome, second: Outcome) -> None:
        a, b = first.model.state_dict(), second.model.state_dict()
        assert list(a) == list(b)
        differ = [k for k in a if not torch.equal(a[k], b[k])]
        assert not differ, f"the same seed trained different weights in {differ[:5]}"
        assert first.reports == second.reports, "the same seed gave a different validation curve"

    def test_trained_model_keeps_its_output_shape_and_its_curve_is_reported(
            self, strategy: Strategy, params: Mapping[str, Any], bench: Bench, model: nn.Module) -> None:
        before = copy.deepcopy(model)
        outcome = self.execute(strategy, model, bench.context(), params, bench)
        self.check_outcome(strategy, outcome, bench, before)
        assert outcome.reports, ("train() reported no epoch through ctx.report_epoch(epoch, val_metric); "
                                 "(if these params train nothing, override the `params` fixture)")
        epochs = [e for e, _ in outcome.reports]
        assert epochs == list(range(1, len(epochs) + 1)), f"epochs reported {epochs}, expected 1, 2, 3, ..."
        for epoch, value in outcome.reports:
            assert isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value), (
                f"epoch {epoch}: the reported validation metric {value!r} is not a finite number")

    def test_stops_when_report_epoch_says_so(self, strategy: Strategy, params: Mapping[str, Any], bench: Bench,
                                             model: nn.Module) -> None:
        """``ctx.report_epoch`` returning True means the trial is hopeless: train() returns at once."""
        outcome = self.execute(strategy, model, bench.context(), params, bench, stop_after=1)
        assert len(outcome.reports) <= 1, (f"ctx.report_epoch returned True after epoch 1 and train() went on to "
                                           f"report {len(outcome.reports)} epochs")
