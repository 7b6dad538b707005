"""What every strategy family's contract shares: fixtures, the declared space, honest applicability,
determinism, export after the strategy and untouched inputs."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

import pytest
import torch
from torch import nn

from orchestrator.baseline import Baseline
from orchestrator.context import TrialContext
from orchestrator.errors import InapplicableError
from orchestrator.export import export_onnx, export_torch, load_runner
from orchestrator.params import Choice, Float, Int, default_value, describe, is_number
from orchestrator.strategies import FAMILIES, Strategy
from orchestrator.task import Task, TaskData
from orchestrator.testing._tasks import SHAPES, TinyTask, describe_shape, trained

#: A strategy's name appears in YAML, on the command line, in Optuna parameter names
#: (``<stage>.<strategy>.<param>``) and in file names: lowercase words joined by '-' or '_'.
NAME_PATTERN = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
#: The fixtures a test class may override; each is documented in ``orchestrator.testing``.
OVERRIDABLE = ("strategy", "params", "task", "seed", "model", "zoo_task", "prunes", "tolerance", "size_task",
               "exact_bytes")
#: Optuna stores categorical choices of these types (JSON in the journal storage).
_CHOICE_TYPES = (type(None), bool, int, float, str)


def default_params(strategy: Strategy) -> dict[str, Any]:
    """The parameters the search enqueues first: ``defaults``, and the middle of the range (or
    the first choice) for a parameter without one."""
    return {p: strategy.defaults.get(p, default_value(param)) for p, param in strategy.space.items()}


@dataclass
class Bench:
    """A task, its data and its trained baseline: what the strategies of one trial run on."""

    task: Task
    data: TaskData
    #: the cached baseline: never handed to a strategy, only copies of it
    baseline: Baseline
    seed: int
    workdir: Path

    def context(self, **overrides: Any) -> TrialContext:
        """A fresh TrialContext: the teacher, data and rewind state are copies, so a strategy that
        changes them is caught without spoiling the next test."""
        fields: dict[str, Any] = dict(task=self.task, data=copy.deepcopy(self.data),
                                      teacher=copy.deepcopy(self.baseline.model).eval(), seed=self.seed,
                                      workdir=self.workdir, rewind_state=copy.deepcopy(self.baseline.rewind_state))
        fields.update(overrides)
        return TrialContext(**fields)

    def model(self) -> nn.Module:
        return copy.deepcopy(self.baseline.model).eval()

    def example(self, batch_size: int = 8) -> torch.Tensor:
        return self.task.example_inputs(self.data, batch_size)

    def __str__(self) -> str:
        return f"the {describe_shape(self.task)} model"


@dataclass
class Outcome:
    """What one run of a strategy left: the model after it and the family's own results."""

    model: nn.Module
    scores: Mapping[str, Any] | None = None
    artifact: Path | None = None
    #: (epoch, value) pairs the strategy passed to ``ctx.report_epoch``
    reports: list[tuple[Any, Any]] = field(default_factory=list)
    #: what the strategy changed of an input it must leave alone (the family says which)
    input_changes: list[str] = field(default_factory=list)


class Snapshot:
    """A module's weights, buffers, gradient flags and hooks, to tell whether something changed them."""

    def __init__(self, module: nn.Module) -> None:
        self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        self.requires_grad = {n: p.requires_grad for n, p in module.named_parameters()}
        self.grads = {n for n, p in module.named_parameters() if p.grad is not None}
        self.hooks = _hook_count(module)

    def changes(self, module: nn.Module, what: str) -> list[str]:
        found = []
        state = module.state_dict()
        if set(state) != set(self.state):
            added, removed = sorted(set(state) - set(self.state)), sorted(set(self.state) - set(state))
            found.append(f"{what}: state_dict entries added {added[:5]} / removed {removed[:5]}")
        changed = [k for k in self.state if k in state and not _same(self.state[k], state[k])]
        if changed:
            found.append(f"{what}: {len(changed)} state_dict entries changed, e.g. {changed[:5]}")
        flags = {n: p.requires_grad for n, p in module.named_parameters()}
        flipped = [n for n in flags if flags[n] != self.requires_grad.get(n)]
        if flipped:
            found.append(f"{what}: requires_grad changed for {flipped[:5]}")
        grads = {n for n, p in module.named_parameters() if p.grad is not None} - self.grads
        if grads:
            found.append(f"{what}: gradients left in .grad of {sorted(grads)[:5]}")
        if _hook_count(module) != self.hooks:
            found.append(f"{what}: hooks left registered ({self.hooks} before, {_hook_count(module)} after)")
        return found


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b.detach()))


def _hook_count(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(getattr(m, "_backward_pre_hooks", ())) for m in module.modules())


def tensors_changed(before: Any, after: Any, what: str) -> list[str]:
    """Differences between two nests of tensors (the task's data, a rewind state)."""
    if isinstance(before, torch.Tensor):
        return [] if isinstance(after, torch.Tensor) and _same(before, after) else [f"{what} changed"]
    if isinstance(before, Mapping):
        if not isinstance(after, Mapping):
            return [f"{what} changed"]
        return [c for k in before for c in tensors_changed(before[k], after.get(k), f"{what}[{k!r}]")]
    if isinstance(before, (tuple, list)):
        return [c for i, (b, a) in enumerate(zip(before, after)) for c in tensors_changed(b, a, f"{what}[{i}]")]
    if dataclasses.is_dataclass(before):
        return [c for f in dataclasses.fields(before)
                for c in tensors_changed(getattr(before, f.name), getattr(after, f.name), f"{what}.{f.name}")]
    return [] if before == after else [f"{what} changed"]


def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, tolerance: float, what: str) -> None:
    """``actual`` is within ``tolerance`` times the largest magnitude of ``expected``."""
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
    assert torch.isfinite(actual).all(), f"{what}: outputs are not all finite"
    scale = max(float(expected.abs().max()), 1e-6)
    error = float((actual.float() - expected.float()).abs().max())
    assert error <= tolerance * scale, (f"{what}: outputs differ by up to {error:.3g}, more than tolerance "
                                        f"{tolerance:g} x {scale:.3g} (the largest float output)")


_EXPORTS: dict[str, bytes] = {}


def export_for(model: nn.Module, example: torch.Tensor, path: Path, runtime: str, input_name: str) -> Path:
    """The core's fp32 export for ``runtime`` (ONNX, or a ``torch.export`` program), written to
    ``path`` (its suffix follows the runtime). A model with the same class, structure and weights
    is exported once per process: exporting is the slow part of these suites."""
    digest = hashlib.sha256(f"{runtime}|{input_name}|{type(model).__qualname__}|{model!r}|"
                            f"{tuple(example.shape)}|{example.dtype}".encode())
    for k, v in model.state_dict().items():
        digest.update(k.encode())
        digest.update(v.detach().cpu().contiguous().numpy().tobytes())
    key = digest.hexdigest()
    path = path.with_suffix(".onnx" if runtime == "onnxruntime" else ".pt2")
    if key not in _EXPORTS:
        if runtime == "onnxruntime":
            export_onnx(model, example, path, input_name)
        else:
            export_torch(model, example, path)
        _EXPORTS[key] = path.read_bytes()
    else:
        path.write_bytes(_EXPORTS[key])
    return path


def _is_fixture(obj: Any) -> bool:
    return type(obj).__name__ == "FixtureFunctionDefinition" or hasattr(obj, "_pytestfixturefunction")


class StrategyContract:
    """The tests every family shares. Subclasses set ``family`` and implement :meth:`run`,
    :meth:`check_outcome` and :meth:`assert_same`."""

    family: ClassVar[str] = ""
    # --- fixtures ------------------------------------------------------------------------------
    @pytest.fixture
    def strategy(self) -> Strategy:
        pytest.fail(f"{type(self).__name__}: define a `strategy` fixture in the class, returning the "
                    f"{self.family} to test")

    @pytest.fixture
    def params(self, strategy: Strategy) -> dict[str, Any]:
        return default_params(strategy)

    @pytest.fixture
    def task(self) -> Task:
        return TinyTask("cnn")

    @pytest.fixture
    def seed(self) -> int:
        return 0

    @pytest.fixture
    def bench(self, task: Task, seed: int, tmp_path: Path) -> Bench:
        data, baseline = trained(task, seed)
        return Bench(task, data, baseline, seed, tmp_path / "trial")

    @pytest.fixture
    def model(self, bench: Bench) -> nn.Module:
        return self.prepare_model(bench)

    @pytest.fixture(params=SHAPES)
    def zoo_task(self, request: pytest.FixtureRequest) -> Task:
        return TinyTask(request.param)

    @pytest.fixture(autouse=True)
    def _overrides_live_in_the_class(self, request: pytest.FixtureRequest) -> None:
        """A fixture defined at module level is shadowed by the contract's own: say so."""
        for name in OVERRIDABLE:
            owner = next((c for c in type(self).__mro__ if name in vars(c)), None)
            if owner is not None and owner.__module__.startswith("orchestrator.testing") \
                    and _is_fixture(getattr(request.module, name, None)):
                pytest.fail(f"the fixture '{name}' is defined at module level, where the contract's own "
                            f"'{name}' shadows it: define it inside {type(self).__name__}")

    # --- the family's part ---------------------------------------------------------------------
    def prepare_model(self, bench: Bench) -> nn.Module:
        """The model the family's method receives in a trial (a copy of the baseline)."""
        return bench.model()

    def context(self, strategy: Strategy, bench: Bench, **overrides: Any) -> TrialContext:
        """The TrialContext the family's method receives."""
        return bench.context(**overrides)

    def run(self, strategy: Strategy, model: nn.Module, ctx: TrialContext, params: Mapping[str, Any],
            bench: Bench) -> Outcome:
        raise NotImplementedError

    def check_outcome(self, strategy: Strategy, outcome: Outcome, bench: Bench, before: nn.Module) -> None:
        """Assert the family's output contract; ``before`` is a copy of the model the strategy received."""
        raise NotImplementedError

    def assert_same(self, first: Outcome, second: Outcome) -> None:
        raise NotImplementedError

    def execute(self, strategy: Strategy, model: nn.Module, ctx: TrialContext, params: Mapping[str, Any],
                bench: Bench, **options: Any) -> Outcome:
        """Run the strategy as a trial does: only where it says it applies, the global RNG seeded with
        the trial's seed first."""
        reason = strategy.applicable(model, ctx)
        if reason:
            pytest.fail(f"{self.family} '{strategy.name}' does not apply to {bench}, so the suite cannot test it "
                        f"there: {reason} (override the `task` or `model` fixture with one it applies to)")
        torch.manual_seed(ctx.seed)
        return self.run(strategy, model, ctx, dict(params), bench, **options)

    # --- the declared space ---------------------------------------------------------------------
    def test_is_a_strategy_of_its_family(self, strategy: Strategy) -> None:
        base = FAMILIES[self.family]
        assert isinstance(strategy, base), f"{strategy!r} is not an orchestrator.strategies.{base.__name__}"
        assert strategy.family == self.family

    def test_name_is_a_valid_identifier_no_other_plugin_uses(self, strategy: Strategy) -> None:
        name = strategy.name
        assert isinstance(name, str) and NAME_PATTERN.fullmatch(name), (
            f"name {name!r}: use lowercase letters and digits, words joined by '-' or '_' (it appears in YAML, "
            "on the command line, in Optuna parameter names '<stage>.<strategy>.<param>' and in file names)")
        if self.family == "scorer":
            assert name != "none", "'none' means 'no scorer' in a recipe: a scorer of that name would never run"
        from orchestrator.pluginmanager import get_host

        other = get_host().catalogue.family(self.family).get(name)
        if other is not None:
            owner = get_host().catalogue.owners.get((self.family, name))
            assert type(other) is type(strategy), (
                f"{self.family} '{name}' is already registered by plugin '{owner}' ({type(other).__qualname__}); "
                "installing both is an error: choose another name")

    def test_space_builds_optuna_distributions(self, strategy: Strategy) -> None:
        assert isinstance(strategy.space, Mapping), "space must map parameter names to Float, Int or Choice"
        for pname, param in strategy.space.items():
            assert isinstance(pname, str) and pname.isidentifier(), (
                f"parameter name {pname!r} must be a Python identifier (no dots: Optuna names it "
                f"'<stage>.{strategy.name}.{pname}')")
            assert isinstance(param, (Float, Int, Choice)), (
                f"'{pname}': {param!r} is not an orchestrator.params Float, Int or Choice")
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # Optuna warns about choices its storage cannot keep
                try:
                    param.distribution()
                except Exception as exc:
                    pytest.fail(f"'{pname}' {describe(param)} is no valid Optuna distribution: "
                                f"{type(exc).__name__}: {exc}")
            if isinstance(param, Choice):
                bad = [c for c in param.choices if not isinstance(c, _CHOICE_TYPES)]
                assert not bad, f"'{pname}': choices {bad!r} are not None, bool, int, float or str"
                assert all(isinstance(c, float) and math.isfinite(c) or not isinstance(c, float)
                           for c in param.choices), f"'{pname}': a choice is not finite"

    def test_defaults_lie_inside_the_space(self, strategy: Strategy) -> None:
        assert isinstance(strategy.defaults, Mapping)
        for pname, value in strategy.defaults.items():
            assert pname in strategy.space, (f"defaults['{pname}'] names no declared parameter "
                                             f"(space: {sorted(strategy.space)})")
            assert strategy.space[pname].contains(value), (
                f"defaults['{pname}'] = {value!r} is outside the declared {describe(strategy.space[pname])}")

    def test_defaults_for_each_model_lie_inside_the_space_and_run(self, strategy: Strategy, params: Mapping[str, Any],
                                                                 zoo_task: Task, seed: int, tmp_path: Path) -> None:
        """On each zoo model the strategy applies to, as a run asks it of the baseline: what it sets
        apart from ``defaults`` is declared, inside the space, and runs on that model (on top of
        ``params``)."""
        data, baseline = trained(zoo_task, seed)
        bench = Bench(zoo_task, data, baseline, seed, tmp_path / "trial")
        model = self.prepare_model(bench)
        ctx = self.context(strategy, bench)
        if strategy.applicable(model, ctx) is not None:
            return  # a run leaves the strategy out before it asks
        defaults = strategy.defaults_for(copy.deepcopy(baseline.model))
        assert isinstance(defaults, Mapping), f"defaults_for() must return a mapping, not {type(defaults).__name__}"
        on = f"defaults_for() on the {zoo_task.params} model"
        # what it sets apart from ``defaults`` (those are test_defaults_lie_inside_the_space's)
        changed = {p: v for p, v in defaults.items() if p not in strategy.defaults or strategy.defaults[p] != v}
        for pname, value in changed.items():
            assert pname in strategy.space, (f"{on} names no declared parameter '{pname}' "
                                             f"(space: {sorted(strategy.space)})")
            assert strategy.space[pname].contains(value), (
                f"{on}: '{pname}' = {value!r} is outside the declared {describe(strategy.space[pname])}")
        if not changed:
            return
        before = copy.deepcopy(model)
        try:
            outcome = self.execute(strategy, model, ctx, {**params, **changed}, bench)
        except Exception as exc:
            raise AssertionError(f"{on} sets {changed}, and with it {self.family} '{strategy.name}' raised "
                                 f"{type(exc).__name__}: {exc}") from exc
        self.check_outcome(strategy, outcome, bench, before)

    def test_space_for_each_model_narrows_the_space_and_holds_its_defaults(self, strategy: Strategy,
                                                                          zoo_task: Task, seed: int,
                                                                          tmp_path: Path) -> None:
        """On each zoo model the strategy applies to, as a run asks it of the baseline: ``space_for``
        keeps every declared parameter, widens none, leaves the model as it was, and still holds
        what ``defaults_for`` sets for that model (the enqueued trials would otherwise take the
        nearest value it allows)."""
        from orchestrator.errors import ConfigError
        from orchestrator.spaces import narrowed_for

        try:
            for param in strategy.space.values():
                param.distribution()
        except Exception:
            return  # test_space_builds_optuna_distributions names that fault
        data, baseline = trained(zoo_task, seed)
        bench = Bench(zoo_task, data, baseline, seed, tmp_path / "trial")
        if strategy.applicable(self.prepare_model(bench), self.context(strategy, bench)) is not None:
            return  # a run leaves the strategy out before it asks
        model = copy.deepcopy(baseline.model)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        try:
            space = narrowed_for(strategy, model, dict(strategy.space))
        except ConfigError as exc:
            raise AssertionError(f"on the {zoo_task.params} model: {exc}") from None
        after = model.state_dict()
        assert set(after) == set(before) and all(torch.equal(before[k], after[k]) for k in before), (
            f"space_for() changed the {zoo_task.params} model; read it, never change it")
        for pname, value in {**strategy.defaults, **strategy.defaults_for(model)}.items():
            if pname in space:
                assert space[pname].contains(value), (
                    f"on the {zoo_task.params} model, defaults_for() sets '{pname}' = {value!r}, which "
                    f"space_for() leaves out: {describe(space[pname])}")

    def test_strength_names_a_numeric_parameter(self, strategy: Strategy) -> None:
        if strategy.strength is None:
            return
        param = strategy.space.get(strategy.strength)
        assert param is not None, (f"strength '{strategy.strength}' names no declared parameter "
                                   f"(space: {sorted(strategy.space)})")
        assert not isinstance(param, Choice) or all(is_number(c) for c in param.choices), (
            f"strength '{strategy.strength}' is not numeric: {describe(param)}")

    def test_params_lie_inside_the_space(self, strategy: Strategy, params: Mapping[str, Any]) -> None:
        """The params these tests run with are ones a search could choose."""
        assert set(params) == set(strategy.space), (
            f"params {sorted(params)} must set every declared parameter {sorted(strategy.space)}, as a trial does")
        for pname, value in params.items():
            assert strategy.space[pname].contains(value), (
                f"params['{pname}'] = {value!r} is outside the declared {describe(strategy.space[pname])}")

    def test_describes_its_params_in_words(self, strategy: Strategy, params: Mapping[str, Any]) -> None:
        text = strategy.describe(params)
        assert isinstance(text, str) and text.strip(), "describe(params) must return the strategy in words"

    def test_survives_the_trip_to_a_worker(self, strategy: Strategy, params: Mapping[str, Any]) -> None:
        """The catalogue goes to Ray workers through Ray's object store, pickled with cloudpickle."""
        from ray import cloudpickle

        try:
            copied = cloudpickle.loads(cloudpickle.dumps(strategy))
        except Exception as exc:
            pytest.fail(f"{self.family} '{strategy.name}' cannot be pickled for a Ray worker: "
                        f"{type(exc).__name__}: {exc}")
        assert type(copied).__qualname__ == type(strategy).__qualname__ and copied.name == strategy.name
        assert dict(copied.space) == dict(strategy.space) and dict(copied.defaults) == dict(strategy.defaults)
        assert copied.describe(params) == strategy.describe(params)

    # --- behaviour on models ----------------------------------------------------------------------
    def test_applicable_is_honest(self, strategy: Strategy, params: Mapping[str, Any], zoo_task: Task, seed: int,
                                  tmp_path: Path) -> None:
        """None or a reason; and when the answer is None, the strategy runs on that model."""
        data, baseline = trained(zoo_task, seed)
        bench = Bench(zoo_task, data, baseline, seed, tmp_path / "trial")
        model = self.prepare_model(bench)
        ctx = self.context(strategy, bench)
        reason = strategy.applicable(model, ctx)
        assert reason is None or (isinstance(reason, str) and reason.strip()), (
            f"applicable() must return None or the reason it cannot run, not {reason!r}")
        if reason is not None:
            return
        before = copy.deepcopy(model)
        try:
            outcome = self.execute(strategy, model, ctx, params, bench)
        except InapplicableError as exc:  # a parameter setting may be inapplicable; it must say why
            assert str(exc).strip(), f"an InapplicableError on {bench} must say why"
            return
        except Exception as exc:
            raise AssertionError(f"applicable() said {self.family} '{strategy.name}' runs on {bench}, but it raised "
                                 f"{type(exc).__name__}: {exc}") from exc
        self.check_outcome(strategy, outcome, bench, before)

    def test_same_seed_same_result(self, strategy: Strategy, params: Mapping[str, Any], bench: Bench,
                                   model: nn.Module) -> None:
        twin = copy.deepcopy(model)
        first = self.execute(strategy, model, self.context(strategy, bench), params, bench)
        second = self.execute(strategy, twin, self.context(strategy, bench), params, bench)
        self.assert_same(first, second)

    def test_model_runs_and_exports_to_onnx_after_it(self, strategy: Strategy, params: Mapping[str, Any],
                                                     bench: Bench, model: nn.Module, tmp_path: Path) -> None:
        hooks = _hook_count(model)
        outcome = self.execute(strategy, model, self.context(strategy, bench), params, bench)
        assert _hook_count(outcome.model) <= hooks, f"{strategy.name} left hooks registered on the model"
        x = bench.example(8)
        expected = outputs(bench.baseline.model, x)
        after = outputs(outcome.model, x)
        assert after.shape == expected.shape, (f"the model after {strategy.name} gives outputs of shape "
                                               f"{tuple(after.shape)}, the baseline {tuple(expected.shape)}")
        path = export_onnx(outcome.model, x, tmp_path / "after.onnx", bench.task.input_name)
        assert_close(load_runner(path)(x), after, 1e-4, f"the ONNX export of the model after {strategy.name}")

    def test_leaves_its_inputs_unchanged(self, strategy: Strategy, params: Mapping[str, Any], bench: Bench,
                                         model: nn.Module) -> None:
        """The teacher (the baseline every trial shares), the data and the rewind state; the model
        too where the family's method must not change it."""
        ctx = self.context(strategy, bench)
        teacher = Snapshot(ctx.teacher)
        outcome = self.execute(strategy, model, ctx, params, bench)
        changes = list(outcome.input_changes)
        changes += teacher.changes(ctx.teacher, "ctx.teacher (the baseline)")
        changes += tensors_changed(bench.data, ctx.data, "ctx.data")
        changes += tensors_changed(bench.baseline.rewind_state, ctx.rewind_state, "ctx.rewind_state")
        assert not changes, f"{self.family} '{strategy.name}' changed what it must leave alone: " + "; ".join(changes)
