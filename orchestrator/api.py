"""The Python API: run a search from a RunConfig, a dict or a YAML path; read a finished run.

    >>> import orchestrator
    >>> result = orchestrator.search("examples/mnist1d.yaml", out="runs/mnist1d")
    >>> best = result.pareto[0]
    >>> predict = result.load(best.number)        # runs the shipped artifact
    >>> result.export(best.number, "deploy/")      # model file + recipe.yaml + metrics.json

The CLI is a thin layer over this module.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from orchestrator.atomic import atomic_write_json, atomic_write_text
from orchestrator.config import RunConfig, dump_config, load_config
from orchestrator.errors import UsageError
from orchestrator.export import Runner, load_runner
from orchestrator.interrupts import stoppable
from orchestrator.recipe import Recipe
from orchestrator.results import TrialResult
from orchestrator.rundir import RunDir

if TYPE_CHECKING:
    from orchestrator.pluginmanager import PluginHost

@dataclass
class SearchResult:
    run_dir: Path
    config: RunConfig
    baseline: dict[str, float]
    trials: list[TrialResult]
    pareto: list[TrialResult]
    hypervolume: float
    interrupted: bool = False

    def trial(self, number: int) -> TrialResult:
        for t in self.trials:
            if t.number == number:
                return t
        raise UsageError(f"trial {number} is not in {self.run_dir}; trials: {[t.number for t in self.trials]}")

    def recipe(self, number: int) -> Recipe:
        return Recipe.model_validate(self.trial(number).recipe)

    def artifact(self, number: int) -> Path:
        t = self.trial(number)
        if not t.artifact:
            raise UsageError(f"trial {number} kept no artifact (only Pareto trials do unless keep_all_artifacts)")
        return self.run_dir / t.artifact

    def load(self, number: int, threads: int = 1) -> Runner:
        """A callable running trial ``number``'s shipped artifact on a batch of inputs."""
        return load_runner(self.artifact(number), threads=threads)

    def export(self, number: int, to: str | Path, format: str | None = None, *, float_model: bool = False,
               log: Callable[[str], None] | None = None) -> Path:
        """Write trial ``number``'s model with its recipe.yaml and metrics.json into folder ``to``.

        ``format``: ``onnx``, ``torchscript`` or ``pt`` (a ``torch.export`` program); default the
        shipped one. A quantized trial whose quantization the format cannot reproduce is refused
        unless ``float_model``, which exports the float model before quantization with its metrics
        measured again. The written file is checked on the validation split first (``log`` gets
        the line saying so); see :mod:`orchestrator.trial_export`.
        """
        from orchestrator.trial_export import export_trial

        exported = export_trial(self, number, to, format, float_model=float_model)
        if log is not None:
            log(exported.check)
        return exported.path

    @classmethod
    def open(cls, run_dir: str | Path) -> "SearchResult":
        """Read a finished run directory."""
        rd = RunDir(run_dir)
        if not rd.pareto_json.is_file():
            raise UsageError(f"{run_dir}: not a finished run directory (no pareto.json)")
        pareto = json.loads(rd.pareto_json.read_text())
        trials = rd.read_trials()
        by_number = {t.number: t for t in trials}
        return cls(run_dir=rd.root, config=load_config(rd.config), baseline=pareto["baseline"], trials=trials,
                   pareto=[by_number[p["number"]] for p in pareto["pareto"]], hypervolume=pareto["hypervolume"],
                   interrupted=bool(pareto.get("interrupted", False)))


def search(source: str | Path | dict | RunConfig, out: str | Path = "runs/latest", *, progress: bool = True,
           log: Callable[[str], None] | None = None, host: "PluginHost | None" = None) -> SearchResult:
    """Validate the config, prepare the baseline, search, and write the run directory.

    ``host`` replaces the process-wide plugin host (to run with plugins that are not installed).
    """
    from rich.console import Console

    from orchestrator.pluginmanager import get_host
    from orchestrator.spaces import resolve_space
    from orchestrator.tasks import resolve_task

    config = load_config(source)
    host = host or get_host()
    task = resolve_task(config.task, host.catalogue)
    # every check that needs no training runs before anything is written
    space = resolve_space(config.search_space, host.catalogue, runtime=config.latency.runtime)
    console = Console(stderr=True)
    log = log or (lambda msg: console.print(f"[dim]{msg}[/dim]"))

    rd = RunDir(out)
    if rd.root.exists() and not rd.root.is_dir():
        raise UsageError(f"--out {rd.root} is a file, not a run directory")
    if config.execution.storage is not None:
        from orchestrator.study.storage import make_storage

        make_storage(config.execution, rd)  # an unreachable database is reported before anything is written
    executor = make_executor(config)
    try:
        executor.connect()  # so is a Ray cluster that cannot be joined
        with rd.lock(), stoppable():
            return _search_locked(config, rd, host, task, space, log, console, progress, executor)
    finally:
        executor.shutdown()


def _search_locked(config: RunConfig, rd: RunDir, host: "PluginHost", task: Any, space: Any,
                   log: Callable[[str], None], console: Any, progress: bool, executor: Any) -> SearchResult:
    from orchestrator.baseline import prepare_baseline
    from orchestrator.executors import SharedState
    from orchestrator.progress import SearchProgress
    from orchestrator.study.driver import Driver
    from orchestrator.study.early_stopping import CurveBoard, accuracy_floor

    from orchestrator.report.live import LiveReport

    _check_same_config(rd, config)
    atomic_write_text(rd.config, dump_config(config))
    host.run_start(config, rd.root)
    live = LiveReport(config, rd, log)

    try:
        data = task.load_data(config.seed)
    except ImportError as exc:  # an optional dependency of the task (its extra) is not installed
        raise UsageError(f"task '{task.name}': {exc}") from None
    base = prepare_baseline(task, data, config.seed, log=log)
    log(f"baseline {task.name}: validation {base.val_metric:.4f}, test {base.test_metric:.4f}"
        f"{' (cached)' if base.cached else ''}")
    shared = SharedState(task=task, data=data, teacher=base.model, latency=config.latency, baseline_accuracy=None,
                         catalogue=host.catalogue, rewind_state=base.rewind_state, constraints=config.constraints,
                         meter=executor.meter)
    baseline_metrics, dropped = measure_baseline(rd, shared, space)
    for reason in dropped:
        log(f"left out of the search space, inapplicable to this model: {reason}")
    _check_same_space(rd, space)

    previous = rd.read_trials()
    board = CurveBoard(config.early_stopping, accuracy_floor(config, shared.baseline_accuracy),
                       [r.curve for r in previous if r.state == "COMPLETE"])
    executor.start(shared, board)
    log(f"running {executor.describe()}")
    if config.execution.executor == "local" and config.execution.trial_timeout:
        log("execution.trial_timeout is not enforced by the local executor (the ray executor enforces it)")
    with SearchProgress(config.budget.n_trials, config.objectives, console, enabled=progress) as bar:
        def on_result(results: list, done: int) -> None:
            bar.advance(results, done)
            live.refresh(driver, results, baseline_metrics)

        driver = Driver(config, rd, space, host, executor, baseline_metrics, on_result=on_result,
                        signature=_rung_signature(shared, rd, log))
        outcome = driver.run()
    return _finish(config, rd, driver, outcome, baseline_metrics, live, host, log)


def make_executor(config: RunConfig) -> Any:
    if config.execution.executor == "local":
        from orchestrator.executors import LocalExecutor

        return LocalExecutor(threads=max(1, int(config.execution.cpus_per_trial)))
    from orchestrator.executors.ray_executor import RayExecutor

    return RayExecutor(config.execution)


def _baseline_context(shared: Any, rd: RunDir) -> Any:
    from orchestrator.context import TrialContext

    return TrialContext(task=shared.task, data=shared.data, teacher=shared.teacher, seed=0,
                        workdir=rd.root / ".baseline", runtime=shared.latency.runtime,
                        rewind_state=shared.rewind_state)


def _rung_signature(shared: Any, rd: RunDir, log: Callable[[str], None]) -> Any:
    """What a rung of the chain's ladder prunes the baseline to, seen in this process without training."""
    from orchestrator.pipeline import pruned_model
    from orchestrator.study.ladder import pruned_signature

    ctx = _baseline_context(shared, rd)
    return pruned_signature(lambda recipe: pruned_model(recipe, ctx, shared.catalogue), shared.catalogue, log)


def _check_same_space(rd: RunDir, space: Any) -> None:
    """Optuna cannot change a parameter's choices mid-study: a resumed run must search the same space."""
    resolved = {stage: {name: {p: param.model_dump(mode="json") for p, param in params.items()}
                        for name, params in strategies.items()} for stage, strategies in space.stages.items()}
    path = rd.root / "space.json"
    if path.is_file() and json.loads(path.read_text()) != resolved:
        raise UsageError(f"the search space '{space.name}' changed since {rd.root} was started (edited, "
                         "a plugin added, removed or upgraded, or a strategy now narrows a parameter "
                         "differently for this model); choose another --out")
    atomic_write_json(path, resolved)


def _check_same_config(rd: RunDir, config: RunConfig) -> None:
    if rd.config.is_file():
        previous = load_config(rd.config)

        def searched(c: RunConfig) -> dict:
            """What a resumed session must keep: the budget, workers, stopping rules and report may change."""
            data = c.model_dump(exclude={"budget", "early_stopping", "report"})
            data["execution"] = {k: data["execution"][k] for k in ("storage", "study_name")}
            return data

        if searched(previous) != searched(config):
            raise UsageError(f"{rd.root} holds a run with a different config; choose another --out")


def measure_baseline(rd: RunDir, shared: Any, space: Any) -> tuple[dict[str, float], list[str]]:
    """As a run starts, before its first trial: the baseline's file measured (``rd.baseline_json``,
    kept for a resumed session) and ``shared.baseline_accuracy`` set from it; then ``space``
    restricted to the baseline (``SearchSpace.restrict_to``). Returns the baseline's metrics and the
    strategies left out, with the reasons."""
    metrics = _measure_baseline(rd, shared)
    shared.baseline_accuracy = metrics["accuracy"]
    return metrics, space.restrict_to(shared.teacher, _baseline_context(shared, rd), shared.catalogue)


def _measure_baseline(rd: RunDir, shared: Any) -> dict[str, float]:
    from orchestrator.executors.trial import execute_trial
    from orchestrator.executors.base import TrialJob

    if rd.baseline_json.is_file():
        return json.loads(rd.baseline_json.read_text())
    # the baseline is measured whatever the constraints say: they are judged against it
    result = execute_trial(TrialJob(number=-1, recipe=Recipe().model_dump(),
                                    workdir=str((rd.root / ".baseline").resolve())),
                           dataclasses.replace(shared, constraints={}), board=None)
    shutil.rmtree(rd.root / ".baseline", ignore_errors=True)
    if result.state != "COMPLETE":
        raise UsageError(f"the baseline could not be exported or measured: {result.error}")
    metrics = dict(result.metrics, accuracy_drop=0.0)
    atomic_write_json(rd.baseline_json, metrics)
    return metrics


def _finish(config: RunConfig, rd: RunDir, driver: Any, outcome: Any, baseline: dict[str, float],
            live: Any, host: Any, log: Callable[[str], None]) -> SearchResult:
    from orchestrator.report.importance import param_importance
    from orchestrator.report.write import write_reports

    results = sorted(outcome.results, key=lambda r: r.number)
    view = live.view(driver, results, baseline, in_progress=False, interrupted=outcome.interrupted)
    rd.keep_artifacts(view.front, results, {r.number: Recipe.model_validate(r.recipe).to_yaml() for r in view.front},
                      config.keep_all_artifacts)
    rd.write_trials(results)
    if config.report.importance and driver.study is not None:
        view.importance = param_importance(driver.study, config.objectives, log)
    write_reports(rd, view, log=log)
    host.run_end(config, rd.root, view.front)
    return SearchResult(run_dir=rd.root, config=config, baseline=baseline, trials=results, pareto=view.front,
                        hypervolume=view.hypervolume, interrupted=outcome.interrupted)
