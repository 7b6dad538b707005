"""The contract of a quantizer: a file its runtime loads and runs, close to the float model."""

from __future__ import annotations

import copy
import dataclasses
import typing
from pathlib import Path
from typing import Any, Mapping

import pytest
import torch
from torch import nn

from orchestrator.config import LatencyConfig
from orchestrator.context import TrialContext
from orchestrator.export import load_runner
from orchestrator.precheck import weights_in_use
from orchestrator.strategies import Quantizer, Strategy
from orchestrator.task import Task
from orchestrator.testing._base import Outcome, Bench, Snapshot, StrategyContract, assert_close, export_for, outputs
from orchestrator.testing._tasks import TinyTask, trained
from orchestrator.training import fit

#: the deployment runtimes a run config can name
RUNTIMES: tuple[str, ...] = typing.get_args(LatencyConfig.model_fields["runtime"].annotation)


def trains_with_the_model(strategy: Strategy) -> bool:
    """Whether the quantizer inserts something for the train stage (quantization-aware training)."""
    return type(strategy).prepare_training is not Quantizer.prepare_training


class QuantizerContract(StrategyContract):
    """Tests for a :class:`~orchestrator.strategies.Quantizer`; see :mod:`orchestrator.testing`."""

    family = "quantizer"

    @pytest.fixture
    def tolerance(self) -> float:
        """How far the artifact's outputs may be from the float model's: a fraction of the largest
        float output (0.1: ten percent of the largest logit)."""
        return 0.1

    @pytest.fixture
    def size_task(self) -> Task:
        """The task whose model the size bound is checked on: one whose weights dominate its file."""
        return TinyTask("wide")

    @pytest.fixture
    def exact_bytes(self) -> bool:
        """Whether the same seed writes the very same file (else the same outputs are enough)."""
        return True

    def context(self, strategy: Strategy, bench: Bench, **overrides: Any) -> TrialContext:
        """The context of a run on the quantizer's first runtime."""
        return bench.context(**{"runtime": strategy.runtimes[0], **overrides})

    def run(self, strategy: Strategy, model: nn.Module, ctx: TrialContext, params: Mapping[str, Any],
            bench: Bench) -> Outcome:
        """prepare_training, a short train stage when it inserted something, end_training, the core's
        fp32 export for ``ctx.runtime``, then quantize: the order of a trial."""
        keys = list(model.state_dict())
        model = strategy.prepare_training(model, ctx, params)
        if trains_with_the_model(strategy):
            fit(model, ctx.task, ctx.data, epochs=1, lr=1e-3, batch_size=64, seed=ctx.seed)
        model = strategy.end_training(model, ctx, params).eval()
        assert list(model.state_dict()) == keys, (
            "end_training() must remove what prepare_training() inserted: the state_dict keys differ from the "
            "model's before prepare_training()")
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        fp32 = export_for(model, ctx.example_inputs(8), ctx.workdir / "model-fp32", ctx.runtime, ctx.task.input_name)
        out = ctx.workdir / f"model-{strategy.name}{fp32.suffix}"
        snapshot = Snapshot(model)
        artifact = strategy.quantize(model, fp32, out, ctx, params)
        changes = snapshot.changes(model, "the model given to quantize()")
        return Outcome(model=model, artifact=artifact, input_changes=changes)

    def check_outcome(self, strategy: Strategy, outcome: Outcome, bench: Bench, before: nn.Module) -> None:
        """The file exists with the fp32 file's suffix, and its runtime loads it and runs it."""
        artifact = outcome.artifact
        assert artifact is not None and artifact.is_file(), f"quantize() returned {artifact!r}, which is no file"
        assert artifact.suffix in (".onnx", ".pt2"), f"the artifact {artifact.name} has an unknown suffix"
        x = bench.example(8)
        out = load_runner(artifact)(x)
        ref = outputs(before, x)
        assert out.shape == ref.shape, (f"the artifact for {bench} gives outputs of shape {tuple(out.shape)}, "
                                        f"the float model {tuple(ref.shape)}")
        assert torch.isfinite(out).all(), f"the artifact for {bench} gives NaN or infinite outputs"

    def assert_same(self, first: Outcome, second: Outcome) -> None:
        a, b = first.model.state_dict(), second.model.state_dict()
        differ = [k for k in a if not torch.equal(a[k], b[k])]
        assert not differ, f"the same seed gave a different float model after end_training() in {differ[:5]}"

    def _run_on(self, runtime: str, strategy: Strategy, params: Mapping[str, Any], bench: Bench,
                model: nn.Module) -> tuple[Outcome, TrialContext]:
        ctx = self.context(strategy, bench, runtime=runtime, workdir=bench.workdir / runtime)
        return self.execute(strategy, model, ctx, params, bench), ctx

    def test_runtimes_are_known_and_others_are_refused(self, strategy: Strategy, bench: Bench) -> None:
        assert strategy.runtimes and set(strategy.runtimes) <= set(RUNTIMES), (
            f"runtimes {strategy.runtimes!r} must name one or more of {', '.join(RUNTIMES)}")
        for runtime in set(RUNTIMES) - set(strategy.runtimes):
            reason = strategy.applicable(bench.model(), bench.context(runtime=runtime))
            assert isinstance(reason, str) and reason.strip(), (
                f"applicable() accepts runtime '{runtime}', which is not in runtimes {strategy.runtimes!r} "
                "(call super().applicable() first)")

    def test_artifact_loads_runs_and_stays_close_to_the_float_model(
            self, strategy: Strategy, params: Mapping[str, Any], bench: Bench, model: nn.Module,
            tolerance: float) -> None:
        for runtime in strategy.runtimes:
            outcome, ctx = self._run_on(runtime, strategy, params, bench, copy.deepcopy(model))
            self.check_outcome(strategy, outcome, bench, outcome.model)
            fp32_suffix = ".onnx" if runtime == "onnxruntime" else ".pt2"
            assert outcome.artifact.suffix == fp32_suffix, (
                f"runtime '{runtime}': the artifact {outcome.artifact.name} must keep the fp32 file's suffix "
                f"{fp32_suffix}, which says how to load it")
            x = bench.data.test[0]
            assert_close(load_runner(outcome.artifact)(x), outputs(outcome.model, x), tolerance,
                         f"runtime '{runtime}': the artifact")

    def test_file_holds_at_least_min_bytes_per_weight(self, strategy: Strategy, params: Mapping[str, Any],
                                                      size_task: Task, seed: int, tmp_path: Path) -> None:
        """``min_bytes_per_weight`` lets a size constraint reject a recipe before training: it must
        be a lower bound on the file, or feasible recipes are thrown away."""
        if strategy.min_bytes_per_weight is None:
            pytest.skip(f"'{strategy.name}' declares no min_bytes_per_weight")
        data, baseline = trained(size_task, seed)
        bench = Bench(size_task, data, baseline, seed, tmp_path / "trial")
        reason = strategy.applicable(bench.model(), self.context(strategy, bench))
        if reason:
            pytest.skip(f"'{strategy.name}' does not apply to the size_task's model: {reason}")
        for runtime in strategy.runtimes:
            outcome, ctx = self._run_on(runtime, strategy, params, bench, bench.model())
            least = weights_in_use(outcome.model, ctx.example_inputs(1)) * strategy.min_bytes_per_weight
            size = outcome.artifact.stat().st_size
            assert size >= least, (f"runtime '{runtime}': the file has {size:,} bytes, fewer than the "
                                   f"{least:,.0f} that min_bytes_per_weight={strategy.min_bytes_per_weight} promises")

    def test_torch_equivalent_stays_close_to_the_float_model(
            self, strategy: Strategy, params: Mapping[str, Any], bench: Bench, model: nn.Module,
            tolerance: float) -> None:
        """What ``orchestrator export --format torchscript|pt`` ships instead of the artifact."""
        snapshot = Snapshot(model)
        equivalent = strategy.torch_equivalent(model, params)
        assert not snapshot.changes(model, "model"), "torch_equivalent() changed the model it was given"
        if equivalent is None:
            pytest.skip(f"'{strategy.name}' has no torch equivalent")
        assert isinstance(equivalent, nn.Module)
        x = bench.data.test[0]
        assert_close(outputs(equivalent, x), outputs(model, x), tolerance, "torch_equivalent()")

    def test_same_seed_same_result(self, strategy: Strategy, params: Mapping[str, Any], bench: Bench,
                                   model: nn.Module, exact_bytes: bool) -> None:
        for runtime in strategy.runtimes:
            first, _ = self._run_on(runtime, strategy, params, bench, copy.deepcopy(model))
            moved = first.artifact.with_name("first" + first.artifact.suffix)
            first = dataclasses.replace(first, artifact=first.artifact.replace(moved))
            second, _ = self._run_on(runtime, strategy, params, bench, copy.deepcopy(model))
            self.assert_same(first, second)
            if exact_bytes:
                assert first.artifact.read_bytes() == second.artifact.read_bytes(), (
                    f"runtime '{runtime}': the same seed wrote different files (override `exact_bytes` if the "
                    "runtime cannot write the same bytes twice)")
            else:
                x = bench.data.test[0]
                assert torch.equal(load_runner(first.artifact)(x), load_runner(second.artifact)(x)), (
                    f"runtime '{runtime}': the same seed wrote files giving different outputs")
