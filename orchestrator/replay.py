"""Replaying a recipe on a task's baseline: the model file a trial shipped, made again.

A recipe is plain data; replayed on the same baseline (the task's, trained once per seed and
cached) with the same seeds and the same torch threads as a trial, it computes the same model:
the replay runs the trial's own code (:func:`~orchestrator.executors.trial.execute_trial`) with
the recipe's seed and ``cpus_per_trial`` threads, as a Ray worker does. What the replay is
compared with, when a ``metrics.json`` lies beside the recipe: accuracy on the validation and test
splits (equal) and the file's bytes (equal); latency is measured again on this machine.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from orchestrator.atomic import atomic_write_json, atomic_write_text, move_into, staging_folder
from orchestrator.config import RunConfig, load_config
from orchestrator.errors import ConfigError, UsageError
from orchestrator.recipe import Recipe

#: metrics a replay must reproduce exactly: accuracy on both splits, and the file's size to the byte
REPRODUCED = ("accuracy", "test_accuracy", "size_mb")


@dataclass
class Replayed:
    path: Path
    metrics: dict[str, float]
    config: RunConfig
    threads: int
    #: metric -> (replayed, recorded) for the metrics.json beside the recipe; empty when there is none
    compared: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: where the recorded metrics came from
    recorded_from: Path | None = None
    #: the model file of the same name beside the recipe, to compare bytes with
    same_file_as: Path | None = None

    @property
    def identical(self) -> bool | None:
        """Whether the written file has the bytes of the one beside the recipe; None without one."""
        if self.same_file_as is None:
            return None
        return self.same_file_as.read_bytes() == self.path.read_bytes()

    @property
    def reproduced(self) -> bool | None:
        """True when every compared metric is equal; None when there was nothing to compare with."""
        if not self.compared:
            return None
        return all(a == b for a, b in self.compared.values())


def resolve_source(recipe_path: Path, source: str | None) -> RunConfig:
    """The run config to replay under: ``source`` is a config YAML, a run directory, or a task name
    (built-in, or ``package.module:factory``, with default settings). Without it, the config of the
    run directory the recipe lies in (``DIR/artifacts/trial-N/recipe.yaml``)."""
    if source is None:
        folder = recipe_path.resolve().parent
        run_config = folder.parent.parent / "config.yaml"
        if folder.parent.name == "artifacts" and run_config.is_file():
            return load_config(run_config)
        raise UsageError(f"{recipe_path} lies in no run directory: name the task with --task (a task name, "
                         "a run config YAML or a run directory)")
    path = Path(source)
    if path.is_dir():
        if not (path / "config.yaml").is_file():
            raise UsageError(f"--task {source}: a folder without config.yaml, not a run directory")
        return load_config(path / "config.yaml")
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return load_config(path)
    return load_config({"task": {"name": source}})


def replay(recipe_path: str | Path, out: str | Path, source: str | None = None, *, threads: int | None = None,
           log: Callable[[str], None] = lambda msg: None) -> Replayed:
    """Replay the recipe at ``recipe_path`` and write its model file, recipe.yaml and metrics.json into ``out``."""
    from orchestrator.baseline import prepare_baseline
    from orchestrator.executors import SharedState
    from orchestrator.executors.base import TrialJob
    from orchestrator.executors.trial import execute_trial
    from orchestrator.metrics.meter import torch_threads
    from orchestrator.pluginmanager import get_host
    from orchestrator.tasks import resolve_task

    recipe_path = Path(recipe_path)
    recipe = Recipe.load(recipe_path)
    config = resolve_source(recipe_path, source)
    host = get_host()
    recipe.check(host.catalogue, where=str(recipe_path))
    quantizer = host.catalogue.family("quantizer")[recipe.quantize.strategy]
    if config.latency.runtime not in quantizer.runtimes:
        raise ConfigError(f"{recipe_path}: field 'quantize.strategy': '{quantizer.name}' targets "
                          f"{', '.join(quantizer.runtimes)}, not the config's runtime '{config.latency.runtime}'")
    task = resolve_task(config.task, host.catalogue)
    try:
        data = task.load_data(config.seed)
    except ImportError as exc:
        raise UsageError(f"task '{task.name}': {exc}") from None
    base = prepare_baseline(task, data, config.seed, log=log)
    threads = threads or max(1, int(config.execution.cpus_per_trial))
    log(f"replaying '{recipe.describe(host.catalogue)}' on the {task.name} baseline (seed {config.seed}, recipe "
        f"seed {recipe.seed}, {threads} thread{'s' * (threads != 1)})")
    with torch_threads(threads), staging_folder(Path(out)) as tmp:
        shared = SharedState(task=task, data=data, teacher=base.model, latency=config.latency,
                             baseline_accuracy=None, catalogue=host.catalogue, rewind_state=base.rewind_state,
                             constraints=config.constraints)
        shared.baseline_accuracy = _baseline_accuracy(shared, tmp / "baseline")
        work = tmp / "work"
        result = execute_trial(TrialJob(number=-1, recipe=recipe.model_dump(), workdir=str(work)), shared)
        if result.state != "COMPLETE":
            raise UsageError(f"{recipe_path}: the replay did not complete: {result.error}")
        artifact = Path(result.artifact or "")
        path = tmp / artifact.name
        artifact.replace(path)
        shutil.rmtree(work)
        atomic_write_text(tmp / "recipe.yaml", recipe.to_yaml())
        atomic_write_json(tmp / "metrics.json", result.metrics)
        replayed = Replayed(path=Path(out) / path.name, metrics=result.metrics, config=config, threads=threads)
        _compare(replayed, recipe_path.parent / "metrics.json")
        move_into(tmp, Path(out))
    return replayed


def _baseline_accuracy(shared: Any, workdir: Path) -> float:
    """The baseline's validation accuracy measured as a run measures it (on its exported file), for
    ``accuracy_drop``; its latency is not needed."""
    from orchestrator.context import TrialContext
    from orchestrator.export import export_for_runtime, load_runner
    from orchestrator.metrics.measure import score_runner

    workdir.mkdir(parents=True)
    ctx = TrialContext(task=shared.task, data=shared.data, teacher=shared.teacher, seed=0, workdir=workdir,
                       runtime=shared.latency.runtime)
    path = export_for_runtime(shared.teacher.eval(), ctx.example_inputs(8), workdir, ctx.runtime,
                              shared.task.input_name)
    accuracy = score_runner(load_runner(path, threads=shared.latency.threads), shared.task, *shared.data.val)
    shutil.rmtree(workdir)
    return accuracy


def _compare(replayed: Replayed, recorded_path: Path) -> None:
    if not recorded_path.is_file():
        return
    try:
        recorded = json.loads(recorded_path.read_text())
    except (OSError, ValueError):
        return
    # an export in another format records its own file's metrics beside those of the trial's shipped one
    recorded = recorded.get("trial_metrics", recorded) if isinstance(recorded, dict) else {}
    replayed.recorded_from = recorded_path
    replayed.compared = {m: (replayed.metrics[m], recorded[m]) for m in REPRODUCED
                         if m in recorded and m in replayed.metrics}
    beside = recorded_path.parent / replayed.path.name
    if beside.is_file():
        replayed.same_file_as = beside
