"""The tabular benchmark's table: a discrete recipe space evaluated completely, once.

build: benchmarks/tabular_space.yaml is a search space in the orchestrator's own format with every
parameter a list of choices or pinned: 256 recipes. Every recipe is enumerated over the conditional
space as ``sample_recipe`` builds recipes (a scorer only for a pruner that needs one) and evaluated
once by the executor a run uses (``make_executor``: a private local Ray, one trial per CPU, the
latency timed by the node's meter in the measuring slot), which runs the worker's trial code
(``execute_trial``) on the task's cached baseline. Early stopping is off, so every recipe runs to
its end; every recipe has seed 0 (a real run seeds trial N with seed + N). The baseline is measured
and inapplicable strategies are left out as a run does it. Latency is timed lightly, since the
table is reused: ONNX Runtime, batch 256, one thread, 3 sessions of 10 runs after 0.2 s of warm-up.
Writes benchmarks/results/tabular_<task>_table.json: one row per recipe (the recipe as data, its
Optuna params and their key, state, metrics).

Run through ``python benchmarks/tabular.py build``; ``samplers`` (in tabular.py) replays samplers
against the table this module loads (:class:`Table`: a recipe's row by its Optuna params, and the
true Pareto front).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import tempfile
import time
from itertools import product
from pathlib import Path
from typing import Any, Iterator

from common import ROOT, header

SPACE = ROOT / "benchmarks" / "tabular_space.yaml"
OBJECTIVES = ["accuracy", "size_mb", "latency_ms"]
CONSTRAINTS = {"accuracy_drop": {"max": 1.0}}
LATENCY = {"runtime": "onnxruntime", "batch_size": 256, "threads": 1, "warmup": 3, "warmup_s": 0.2, "repeats": 10,
           "sessions": 3}
KEPT_METRICS = ("accuracy", "accuracy_drop", "size_mb", "latency_ms", "test_accuracy", "gzip_mb", "latency_iqr_ms")

SMOKE_SPACE = """\
description: A 6-recipe space for the tabular benchmark's smoke run.
stages:
  score:
    magnitude: {p: 1}
  prune:
    none: {}
    channel: {ratio: [0.25], global_pruning: false, round_to: 1, prune_heads: false}
  train:
    none: {epochs: [0], lr: 0.003}
  quantize:
    none: {}
    static-int8: {calibration: minmax, per_channel: true, calibration_batches: 8}
    fp16: {}
"""


# ---------------------------------------------------------------------------------------- shared


def run_config(task: str, space: Path, executor: str = "ray", workers: int | None = None) -> Any:
    """A run's config for the table: early stopping off (every recipe runs to its end)."""
    from orchestrator.config import load_config

    return load_config({"task": task, "search_space": str(space), "objectives": OBJECTIVES,
                        "constraints": CONSTRAINTS, "latency": LATENCY, "seed": 0,
                        "execution": {"executor": executor, "workers": workers},
                        "early_stopping": {"enabled": False}})


def table_path(results: Path, task: str) -> Path:
    return results / f"tabular_{task}_table.json"


def params_key(params: dict[str, Any]) -> str:
    """The Optuna params of a recipe as one string: the table's key."""
    return json.dumps(params, sort_keys=True)


def resolved_stages(space: Any) -> dict:
    """The space as data (every strategy and parameter resolved), to tell a stale table."""
    return {stage: {name: {p: param.model_dump(mode="json") for p, param in params.items()}
                    for name, params in strategies.items()} for stage, strategies in space.stages.items()}


def shown(path: Path) -> str:
    """A path as the JSON records it: relative to the repository when inside it."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def write_json(path: Path, record: dict) -> None:
    """Indented, with lists of numbers (visited rows, fractions per seed) kept on one line."""
    text = json.dumps(record, indent=2)
    text = re.sub(r"\[\s+([-+\d.eE,\s]+?)\s+\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")

# ------------------------------------------------------------------------------ the space, in full


def stage_options(space: Any, stage: str) -> Iterator[Any]:
    """Every (strategy, params) a stage of a discrete space offers."""
    from orchestrator.params import Choice
    from orchestrator.recipe import NONE, StageChoice

    for name, params in space.stages[stage].items():
        if stage == "score" and name == NONE:
            continue  # sample_recipe never chooses 'none' as a scorer
        for p, param in params.items():
            if not isinstance(param, Choice):
                raise SystemExit(f"search space '{space.name}': stages.{stage}.{name}.{p} is a range; "
                                 "a table needs every parameter as a list of choices or pinned")
        names = list(params)
        for values in product(*(params[p].choices for p in names)):
            yield StageChoice(strategy=name, params=dict(zip(names, values)))


def enumerate_recipes(space: Any, catalogue: Any) -> list[Any]:
    """Every recipe ``sample_recipe`` can return in ``space``: a scorer only with a pruner that needs one."""
    from orchestrator.recipe import Recipe, StageChoice

    scorers = list(stage_options(space, "score"))
    trains, quantizers = list(stage_options(space, "train")), list(stage_options(space, "quantize"))
    recipes = []
    for prune in stage_options(space, "prune"):
        needs = catalogue.family("pruner")[prune.strategy].needs_scores and scorers
        for score, train, quantize in product(scorers if needs else [StageChoice()], trains, quantizers):
            recipes.append(Recipe(score=score, prune=prune, train=train, quantize=quantize))
    return recipes


def recipe_row_key(recipe: Any, space: Any, catalogue: Any) -> tuple[dict, str]:
    from orchestrator.study.sampling import recipe_params

    params = recipe_params(recipe, space, catalogue)
    if params is None:
        raise SystemExit(f"'{recipe.describe(catalogue)}' is outside the space: the enumeration is wrong")
    return params, params_key(params)

# ------------------------------------------------------------------------------------------ build


def evaluate_all(recipes: list[Any], executor: Any, workdir: Path, space: Any, catalogue: Any) -> list[dict]:
    """Every recipe once through the executor, as many at a time as it runs; rows in recipe order."""
    from orchestrator.executors.base import TrialJob

    rows: dict[int, dict] = {}
    queue = list(enumerate(recipes))
    running = 0
    while queue or running:
        while queue and running < executor.capacity:
            number, recipe = queue.pop(0)
            job = TrialJob(number=number, recipe=recipe.model_dump(), workdir=str(workdir / f"trial-{number}"))
            executor.submit(job)
            running += 1
        for result in executor.wait():
            running -= 1
            shutil.rmtree(workdir / f"trial-{result.number}", ignore_errors=True)
            rows[result.number] = table_row(result, recipes[result.number], space, catalogue)
            print(describe_row(rows[result.number], len(rows), len(recipes)), flush=True)
    return [rows[number] for number in range(len(recipes))]


def table_row(result: Any, recipe: Any, space: Any, catalogue: Any) -> dict:
    params, key = recipe_row_key(recipe, space, catalogue)
    return {"number": result.number, "key": key, "params": params, "recipe": recipe.model_dump(mode="json"),
            "description": result.description, "state": result.state,
            "metrics": {m: result.metrics[m] for m in KEPT_METRICS if m in result.metrics},
            "error": result.error, "duration_s": round(result.duration_s, 3)}


def describe_row(row: dict, done: int, total: int) -> str:
    m = row["metrics"]
    if row["state"] != "COMPLETE":
        return f"[{done:>3}/{total}] {row['duration_s']:5.1f} s  {row['state']:<8} {row['description']}: {row['error']}"
    return (f"[{done:>3}/{total}] {row['duration_s']:5.1f} s  acc {m['accuracy']:.4f} drop {m['accuracy_drop']:+5.2f} "
            f"{m['size_mb']:.4f} MB {m['latency_ms']:6.3f} ms  {row['description']}")


def smoke_space(results: Path) -> Path:
    path = results / "tabular_space_smoke.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SMOKE_SPACE)
    return path


def measure_baseline(shared: Any, space: Any, workdir: Path) -> tuple[dict, dict, list[str]]:
    """As a run starts: the baseline's metrics, and the space without what cannot apply to it
    (the strategies left out, by stage, and why)."""
    from orchestrator.api import measure_baseline as measure
    from orchestrator.rundir import RunDir

    whole = resolved_stages(space)
    baseline, reasons = measure(RunDir(workdir), shared, space)
    left_out = {stage: sorted(set(whole[stage]) - set(space.stages[stage])) for stage in whole}
    return baseline, left_out, reasons


def build(args: argparse.Namespace) -> int:
    from orchestrator.api import make_executor
    from orchestrator.baseline import prepare_baseline
    from orchestrator.executors.base import SharedState
    from orchestrator.pluginmanager import get_host
    from orchestrator.spaces import resolve_space
    from orchestrator.study.early_stopping import CurveBoard
    from orchestrator.tasks import resolve_task

    space_path = smoke_space(args.results) if args.smoke else args.space
    config = run_config(args.task, space_path, args.executor, args.workers)
    catalogue = get_host().catalogue
    space = resolve_space(str(space_path), catalogue, runtime=config.latency.runtime)
    task = resolve_task(config.task, catalogue)
    data = task.load_data(config.seed)
    base = prepare_baseline(task, data, config.seed, log=print)
    start = time.time()
    executor = make_executor(config)
    try:
        executor.connect()
        with tempfile.TemporaryDirectory(prefix="tabular-") as tmp:
            shared = SharedState(task=task, data=data, teacher=base.model, latency=config.latency,
                                 baseline_accuracy=None, catalogue=catalogue, rewind_state=base.rewind_state,
                                 constraints=config.constraints, meter=executor.meter)
            baseline, left_out, reasons = measure_baseline(shared, space, Path(tmp))
            for reason in reasons:
                print(f"left out of the space, inapplicable to the {task.name} baseline: {reason}")
            recipes = enumerate_recipes(space, catalogue)
            chosen = sorted(random.Random(0).sample(range(len(recipes)), min(args.sample, len(recipes))))
            executor.start(shared, CurveBoard(config.early_stopping, None))
            print(f"{len(chosen) or len(recipes)} recipes of {shown(space_path)} on {executor.describe()}; baseline "
                  f"acc {baseline['accuracy']:.4f}, {baseline['size_mb']:.4f} MB, {baseline['latency_ms']:.3f} ms")
            evaluating = time.time()
            rows = evaluate_all([recipes[i] for i in chosen] or recipes, executor, Path(tmp), space, catalogue)
            capacity = executor.capacity
    finally:
        executor.shutdown()
    end = time.time()
    if args.sample:
        each = (end - evaluating) / len(rows)
        print(f"{len(rows)} of {len(recipes)} recipes in {end - start:.0f} s, {each:.2f} s each after the set-up: "
              f"the whole table would take about {(evaluating - start + each * len(recipes)) / 60:.1f} min; "
              "nothing written")
        return 0
    keys = [r["key"] for r in rows]
    assert len(set(keys)) == len(keys), "two recipes of the enumeration share a key"
    record = {**header("tabular_table"), "smoke": args.smoke, "task": task.name, "space_path": shown(space_path),
              "space_yaml": space_path.read_text(), "space": resolved_stages(space),
              "left_out": {"strategies": left_out, "reasons": reasons},
              "executor": {"name": config.execution.executor, "parallel_trials": capacity},
              "latency": config.latency.model_dump(), "objectives": OBJECTIVES, "constraints": CONSTRAINTS,
              "recipe_seed": 0, "baseline": {k: baseline[k] for k in KEPT_METRICS if k in baseline},
              "wall_s": round(end - start, 1),
              "states": {s: sum(r["state"] == s for r in rows) for s in ("COMPLETE", "PRUNED", "FAIL")},
              "rows": rows}
    dest = table_path(args.results, task.name)
    write_json(dest, record)
    feasible = sum(r["state"] == "COMPLETE" and r["metrics"]["accuracy_drop"] <= CONSTRAINTS["accuracy_drop"]["max"]
                   for r in rows)
    print(f"{'SMOKE: ' if args.smoke else ''}{len(rows)} recipes in {end - start:.0f} s "
          f"({(end - start) / len(rows):.1f} s each), {record['states']}, {feasible} feasible; written to {shown(dest)}")
    return 0

# ------------------------------------------------------------------------------------------ table


def reference_metrics(record: dict) -> tuple[dict, str]:
    """The metrics the front is normalised against: the table's no-op recipe (measured like every
    other row, so the baseline's own point lies inside the reference box whatever the latency's
    noise), else the separate baseline measurement."""
    for i, row in enumerate(record["rows"]):
        if row["description"] == "baseline" and row["state"] == "COMPLETE":
            return dict(row["metrics"], accuracy_drop=0.0), f"row {i}, the no-op recipe"
    return record["baseline"], "the baseline measurement"


class Table:
    """The evaluated space: a recipe's row by its Optuna params, and the true front."""

    def __init__(self, record: dict, space: Any, catalogue: Any) -> None:
        from orchestrator.config import load_config
        from orchestrator.study.pareto import pareto_front, reference

        self.record, self.space, self.catalogue = record, space, catalogue
        self.rows = record["rows"]
        self.index = {row["key"]: i for i, row in enumerate(self.rows)}
        config = load_config({"task": record["task"], "objectives": record["objectives"],
                              "constraints": record["constraints"]})
        self.objectives, self.constraints = config.objectives, config.constraints
        self.results = [self._result(i, row) for i, row in enumerate(self.rows)]
        self.baseline, self.baseline_from = reference_metrics(record)
        self.ideal, self.ref = reference(self.baseline, self.objectives)
        self.true_front = pareto_front(self.results, self.objectives)
        self.true_hypervolume = self.hypervolume(self.true_front)

    def _result(self, number: int, row: dict) -> Any:
        """A row as the driver records it: a complete one needs finite objectives, and carries its
        constraint violations and feasibility."""
        from orchestrator.results import TrialResult
        from orchestrator.study.driver import check_values

        result = TrialResult(number=number, state=row["state"], recipe=row["recipe"], description=row["description"],
                             metrics=row["metrics"])
        return check_values(result, self.objectives, self.constraints)

    def __len__(self) -> int:
        return len(self.rows)

    def hypervolume(self, front: list) -> float:
        from orchestrator.study.pareto import hypervolume

        return hypervolume(front, self.objectives, self.ideal, self.ref)

    def lookup(self, recipe: Any) -> int:
        """The row of ``recipe``; a recipe the table lacks is a bug of the enumeration or the space."""
        _, key = recipe_row_key(recipe, self.space, self.catalogue)
        if key not in self.index:
            raise SystemExit(f"sampled recipe '{recipe.describe(self.catalogue)}' ({key}) is not in the table")
        return self.index[key]

    def fractions(self, visited: list[int], budgets: list[int]) -> list[float]:
        """Hypervolume of the front of the first n visited rows over the true one, for each budget n."""
        from orchestrator.study.pareto import pareto_front

        front: list = []
        out, seen = [], 0
        for n in budgets:
            front = pareto_front(front + [self.results[i] for i in visited[seen:n]], self.objectives)
            seen = n
            out.append(self.hypervolume(front) / self.true_hypervolume)
        return out


def load_table(results: Path, task: str) -> Table:
    from orchestrator.pluginmanager import get_host
    from orchestrator.spaces import resolve_space

    path = table_path(results, task)
    if not path.is_file():
        raise SystemExit(f"no table at {path}: run `python benchmarks/tabular.py build --task {task}` first")
    record = json.loads(path.read_text())
    catalogue = get_host().catalogue
    space = resolve_space(str(ROOT / record["space_path"]), catalogue, runtime=record["latency"]["runtime"])
    for stage, names in record["left_out"]["strategies"].items():  # inapplicable to the baseline, as in a run
        for name in names:
            space.stages[stage].pop(name, None)
    if resolved_stages(space) != record["space"]:
        raise SystemExit(f"{record['space_path']} changed since {path} was built: build the table again")
    return Table(record, space, catalogue)
