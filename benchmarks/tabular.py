"""Search efficiency against the truth: a discrete space evaluated completely (the table), then
samplers replayed against it, each trial a lookup instead of a training run.

    python benchmarks/tabular.py build [--task mnist1d]           # every recipe once: the table
    python benchmarks/tabular.py samplers [--task mnist1d] [--seeds 10]
    python benchmarks/tabular.py build --smoke --results DIR      # a 6-recipe space, for the tests
    python benchmarks/tabular.py samplers --smoke --results DIR
    python benchmarks/tabular.py build --sample 20                # 20 random recipes: the table's time

build: every recipe of benchmarks/tabular_space.yaml (256), evaluated once as a run evaluates a
trial, into benchmarks/results/tabular_<task>_table.json; how, in tabular_table.py.

samplers: for every sampler and seed, an in-memory Optuna study asks a trial, turns it into a
recipe with ``sample_recipe`` over the same space (so samplers face the conditional space of real
runs), looks it up in the table (a recipe missing from it is an error), and tells it as the driver
does: the constraint accuracy_drop <= 1 through ``trial.set_constraint``, then the three objectives
(accuracy maximised, size_mb and latency_ms minimised); a failed recipe is told as failed. The
orchestrator's samplers ask through ``ask_recipe``, as the driver does: a proposal that repeats a
recipe already evaluated is set aside and redrawn at random (``sampler.skip_repeats``), so every
evaluation is a new recipe until the table runs out; gp and random take what they draw, and a
repeat costs them an evaluation. Samplers:

* tpe: the orchestrator's default (``make_sampler``: TPE, univariate, constant liar), with the
  driver's default recipes enqueued first (``default_recipes``/``recipe_params``) and repeats
  set aside, as in real runs;
* tpe-no-defaults: the same sampler without the enqueued defaults (for reference, not a goal);
* tpe-multivariate: ``sampler.multivariate: true`` (TPE modelling the parameters jointly, grouped
  by the conditional space), with the defaults enqueued: the default until this benchmark;
* nsga2: the orchestrator's NSGA-II (population 16), no defaults;
* gp: Optuna's GPSampler (with 3 objectives and constraints, constrained log-EHVI; it models the
  parameters every trial has, the stage choices, and samples the others at random), no defaults;
* random: plain random search (draws with replacement), no defaults;
* random-no-repeats: the orchestrator's random sampler as a run uses it, repeats set aside.

Measured: the fraction of the true front's hypervolume that the feasible front of the first n
evaluations reaches, for n = 5, 10, 25, 50 and 100 % of the table (rounded down): median and
quartiles over seeds. The true front is the feasible front of the whole table; both are
normalised as a run's pareto.json is (``orchestrator.study.pareto.reference``), against the
table's no-op recipe, measured like every other row. And the default sampler's ask time
(``study.ask()``, ``sample_recipe`` and the driver's look for a repeat, the mean of the 10 asks
before trial 100, 500 and 1,000; the table is looked up again past its size, and repeats are not
redrawn there), in an in-memory study and with the journal file
storage real runs use (``orchestrator.study.storage.make_storage``).

Goals: the default sampler reaches >= 0.95 of the true hypervolume within 25 % of the space
(median over seeds), and is above random at every budget (its median above random's median; a
median at 1.0, the whole true front, cannot be above and counts as reached).
Writes benchmarks/results/tabular_<task>_samplers.json; exits 1 when a goal is missed.

Durations on 2 cores, recorded: build 334 s on mnist1d (1.3 s per recipe with 2 workers), 196 s on
digits; samplers about 20 minutes on mnist1d, 12 on digits, most of it GPSampler (60-90 s per seed;
``--samplers`` picks).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from common import RESULTS, add_common_args, header, verdict
from tabular_table import (CONSTRAINTS, OBJECTIVES, SPACE, Table, build, load_table, shown, table_path,
                           write_json)

FRACTIONS = (0.05, 0.10, 0.25, 0.50, 1.00)
ASK_POINTS, ASK_WINDOW = (100, 500, 1000), 10
SMOKE_ASK_POINTS, SMOKE_ASK_WINDOW = (10, 20), 5
SAMPLERS = ("tpe", "tpe-no-defaults", "tpe-multivariate", "nsga2", "gp", "random", "random-no-repeats")
#: the samplers that start, as real runs do, from the driver's enqueued default recipes
WITH_DEFAULTS = ("tpe", "tpe-multivariate")
#: the samplers whose repeated proposals are set aside and redrawn at random, as the driver does
#: (``sampler.skip_repeats``); gp is not an orchestrator sampler, random is plain random search
SKIP_REPEATS = ("tpe", "tpe-no-defaults", "tpe-multivariate", "nsga2", "random-no-repeats")
GOALS = {"hypervolume_fraction": 0.95, "within_fraction_of_space": 0.25}


# ------------------------------------------------------------------------------------------ studies


def make_named_sampler(name: str, seed: int) -> Any:
    import optuna

    from orchestrator.config import SamplerConfig
    from orchestrator.study.samplers import make_sampler

    if name in ("tpe", "tpe-no-defaults"):
        return make_sampler(SamplerConfig(name="tpe"), seed)
    if name == "tpe-multivariate":
        return make_sampler(SamplerConfig(name="tpe", multivariate=True), seed)
    if name == "gp":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
    return make_sampler(SamplerConfig(name="random" if name == "random-no-repeats" else name), seed)


def new_study(table: Table, sampler: Any, storage: Any = None, defaults: bool = False) -> Any:
    import optuna

    from orchestrator.study.driver import enqueue_defaults

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, sampler=sampler, directions=[o.direction for o in table.objectives])
    if defaults:
        enqueue_defaults(study, table.space, table.catalogue)
    return study


def ask(study: Any, table: Table, seed: int = 0, skip_repeats: bool = True) -> tuple[Any, Any]:
    """As Driver._submit: a trial and its recipe, a repeated proposal set aside and redrawn."""
    from orchestrator.study.repeats import ask_recipe

    return ask_recipe(study, table.space, table.catalogue, seed, skip_repeats=skip_repeats)


def tell(study: Any, trial: Any, recipe: Any, row: int, table: Table) -> None:
    """As the driver tells a trial: the recipe travels with it (as ``Driver._submit`` sets it), then
    the row's result; a rung of the chain's ladder may add the next (on this space's three ratios,
    the first rungs already span them)."""
    from orchestrator.study.ladder import LADDER, extend_ladder, kept_constraints
    from orchestrator.study.driver import tell as tell_result

    trial.set_user_attr("recipe", recipe.model_dump(mode="json"))
    tell_result(study, trial, table.results[row], table.objectives)
    if LADDER in trial.user_attrs:
        extend_ladder(study, table.space, table.catalogue, kept_constraints(table.baseline, table.constraints))


def search_table(table: Table, name: str, seed: int, n_trials: int) -> list[int]:
    """The rows a sampler visits in ``n_trials`` trials against the table."""
    study = new_study(table, make_named_sampler(name, seed), defaults=name in WITH_DEFAULTS)
    visited = []
    for _ in range(n_trials):
        trial, recipe = ask(study, table, seed, skip_repeats=name in SKIP_REPEATS)
        row = table.lookup(recipe)
        tell(study, trial, recipe, row, table)
        visited.append(row)
    return visited


def ask_times(table: Table, storage: Any, points: tuple[int, ...], window: int) -> dict[str, float]:
    """The default sampler's mean ask time (ms, ``study.ask()`` + ``sample_recipe`` + the driver's
    look for a repeat) over the ``window`` asks before each trial count in ``points``. A repeat is
    not redrawn here: past the table's size every ask would be one, which a real run's continuous
    parameters do not make."""
    from orchestrator.study.repeats import tried

    study = new_study(table, make_named_sampler("tpe", 0), storage=storage, defaults=True)
    times = []
    for _ in range(max(points)):
        start = time.perf_counter()
        trial, recipe = ask(study, table, skip_repeats=False)
        tried(study)
        times.append(time.perf_counter() - start)
        tell(study, trial, recipe, table.lookup(recipe), table)
    return {str(p): 1e3 * statistics.fmean(times[p - window:p]) for p in points}


def journal_storage(folder: Path) -> Any:
    """The storage a real run opens in its run directory: the journal file study.log."""
    from orchestrator.config import ExecutionConfig
    from orchestrator.rundir import RunDir
    from orchestrator.study.storage import make_storage

    return make_storage(ExecutionConfig(), RunDir(folder))


# ----------------------------------------------------------------------------------------- samplers


def quartiles(values: list[float]) -> dict[str, float]:
    import numpy as np

    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"q1": float(q1), "median": float(median), "q3": float(q3)}


def run_sampler(table: Table, name: str, seeds: int, budgets: list[int], log: Callable[[str], None]) -> dict:
    """Every seed of one sampler; an exception of the sampler itself is recorded as unsupported."""
    out: dict[str, Any] = {"supported": True, "defaults_enqueued": name in WITH_DEFAULTS,
                           "repeats_skipped": name in SKIP_REPEATS, "seconds_per_seed": [],
                           "fractions_per_seed": [], "distinct_per_seed": [], "visited": []}
    for seed in range(seeds):
        start = time.perf_counter()
        try:
            visited = search_table(table, name, seed, budgets[-1])
        except Exception as exc:  # a missing recipe is a SystemExit, not this
            out.update(supported=False, error=f"{type(exc).__name__}: {exc}")
            log(f"{name}: cannot run against this space ({out['error']})")
            return out
        out["seconds_per_seed"].append(round(time.perf_counter() - start, 2))
        out["fractions_per_seed"].append(table.fractions(visited, budgets))
        out["distinct_per_seed"].append(len(set(visited)))
        out["visited"].append(visited)
        log(f"{name} seed {seed}: {out['seconds_per_seed'][-1]:.1f} s, "
            + ", ".join(f"{f:.3f}" for f in out["fractions_per_seed"][-1]))
    out["curves"] = [dict(n=n, fraction_of_space=f, **quartiles([s[i] for s in out["fractions_per_seed"]]))
                     for i, (n, f) in enumerate(zip(budgets, FRACTIONS))]
    return out


def judge(samplers: dict, budgets: list[int]) -> dict:
    default, rand = samplers.get("tpe"), samplers.get("random")
    goals: dict[str, Any] = {}
    if default and default.get("supported"):
        at = next(i for i, f in enumerate(FRACTIONS) if f == GOALS["within_fraction_of_space"])
        reached = default["curves"][at]["median"]
        goals["default_reaches_0.95_within_25%"] = {
            "goal": f"median hypervolume fraction >= {GOALS['hypervolume_fraction']} after {budgets[at]} evaluations "
                    f"({GOALS['within_fraction_of_space']:.0%} of the table)",
            "value": reached, "passed": reached >= GOALS["hypervolume_fraction"]}
    if default and rand and default.get("supported") and rand.get("supported"):
        per_budget = [{"n": d["n"], "default": d["median"], "random": r["median"],
                       "passed": d["median"] > r["median"] or d["median"] >= 1.0}
                      for d, r in zip(default["curves"], rand["curves"])]
        goals["default_above_random_at_every_budget"] = {
            "goal": "median above random's median at every budget (a median at 1.0 cannot be above: reached)",
            "value": per_budget, "passed": all(b["passed"] for b in per_budget)}
    return goals


def print_report(table: Table, samplers: dict, budgets: list[int], asks: dict, goals: dict, smoke: bool) -> None:
    header = "".join(f"{f'{f:.0%} (n={n})':>22}" for f, n in zip(FRACTIONS, budgets))
    print(f"\nfraction of the true front's hypervolume ({table.true_hypervolume:.4f}, {len(table.true_front)} "
          f"on the front, {len(table)} recipes in the table): median [q1, q3] over seeds")
    print(f"{'sampler':<16}{header}{'s/seed':>9}")
    for name, s in samplers.items():
        if not s["supported"]:
            print(f"{name:<16}  unsupported: {s['error']}")
            continue
        cells = "".join(f"{c['median']:>8.3f} [{c['q1']:.3f}, {c['q3']:.3f}]" for c in s["curves"])
        print(f"{name:<16}{cells}{statistics.median(s['seconds_per_seed']):>9.1f}")
    print("\ndefault sampler's ask time (study.ask + sample_recipe + the look for a repeat), ms, mean of "
          f"{asks['window']} asks before trial n:")
    for storage in ("in_memory", "journal"):
        print(f"  {storage:<10}" + "".join(f"  n={n}: {ms:7.2f}" for n, ms in asks[storage].items()))
    print()
    for name, g in goals.items():
        word = "not judged (smoke)" if smoke else "PASS" if g["passed"] else "FAIL"
        print(f"{word}: {name}: {g['goal']}" + (f" (got {g['value']:.3f})" if isinstance(g["value"], float) else ""))


def samplers_phase(args: argparse.Namespace) -> int:
    table = load_table(args.results, args.task)
    budgets = [max(1, math.floor(f * len(table) + 1e-9)) for f in FRACTIONS]
    seeds = 2 if args.smoke else (args.seeds if args.seeds is not None else 10)  # a smoke run: 2, whatever asked
    points, window = (SMOKE_ASK_POINTS, SMOKE_ASK_WINDOW) if args.smoke else (ASK_POINTS, ASK_WINDOW)
    print(f"{len(table)} recipes, {sum(r.feasible for r in table.results)} feasible, {len(table.true_front)} on the "
          f"true front; budgets {budgets}; {seeds} seeds")
    samplers = {name: run_sampler(table, name, seeds, budgets, print) for name in args.samplers}
    with tempfile.TemporaryDirectory(prefix="tabular-journal-") as tmp:
        asks = {"points": list(points), "window": window,
                "in_memory": ask_times(table, None, points, window),
                "journal": ask_times(table, journal_storage(Path(tmp)), points, window)}
    goals = judge(samplers, budgets)
    passed = bool(goals) and all(g["passed"] for g in goals.values())
    dest = args.results / f"tabular_{args.task}_samplers.json"
    write_json(dest, samplers_record(table, args, budgets, seeds, samplers, asks, goals, passed))
    print_report(table, samplers, budgets, asks, goals, args.smoke)
    word, code = verdict(passed, args.smoke)
    print(f"{word}: results in {shown(dest)}")
    return code


def samplers_record(table: Table, args: argparse.Namespace, budgets: list[int], seeds: int, samplers: dict,
                    asks: dict, goals: dict, passed: bool) -> dict:
    return {**header("tabular_samplers"), "smoke": args.smoke, "task": table.record["task"],
            "table": shown(table_path(args.results, args.task)),
            "table_command": table.record["command"], "table_date": table.record["date"],
            "table_size": len(table), "space_path": table.record["space_path"],
            "feasible": sum(r.feasible for r in table.results), "objectives": OBJECTIVES, "constraints": CONSTRAINTS,
            "baseline": table.baseline, "baseline_from": table.baseline_from,
            "normalisation": {"ideal": table.ideal, "reference": table.ref},
            "true_hypervolume": table.true_hypervolume,
            "true_front": [{"row": r.number, "description": r.description, "metrics": r.metrics}
                           for r in table.true_front],
            "fractions_of_space": list(FRACTIONS), "budgets": budgets, "seeds": seeds,
            "notes": ["tpe has the driver's default recipes enqueued first, as in real runs "
                      "(default_recipes/recipe_params); the other samplers start from nothing",
                      "tpe, tpe-no-defaults, tpe-multivariate, nsga2 and random-no-repeats set a repeated "
                      "proposal aside and redraw it at random, as the driver does (sampler.skip_repeats); "
                      "gp and random take what they draw, and a repeat costs them an evaluation",
                      "gp: optuna.samplers.GPSampler with constraints from trial.set_constraint (constrained "
                      "log-EHVI for 3 objectives); it models the parameters every trial so far has (the stage "
                      "choices) and samples the others independently at random",
                      "ask times: the default sampler with its enqueued defaults, seed 0, and the driver's look "
                      "for a repeat; past the table's size the table is looked up again and repeats are not "
                      "redrawn"],
            "samplers": samplers, "ask_time_ms": asks, "goals": goals, "passed": passed}


# ------------------------------------------------------------------------------------------ command


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="phase", required=True)
    for phase, help_text in (("build", "evaluate every recipe of the space once: the table"),
                             ("samplers", "replay samplers against the table")):
        p = sub.add_parser(phase, help=help_text)
        p.add_argument("--task", default="mnist1d", choices=["mnist1d", "digits"])
        add_common_args(p)
        if phase == "build":
            p.add_argument("--space", type=Path, default=SPACE, help="a discrete search-space YAML")
            p.add_argument("--executor", default="ray", choices=["ray", "local"],
                           help="ray: a private local Ray, as `orchestrator run` starts it; local: one at a time")
            p.add_argument("--workers", type=int, default=None, help="recipes at once on Ray (default: the CPUs)")
            p.add_argument("--sample", type=int, default=0, metavar="N",
                           help="evaluate N recipes drawn at random and project the whole table's time")
        else:
            p.add_argument("--seeds", type=int, default=None, help="seeds per sampler (default 10; 2 with --smoke)")
            p.add_argument("--samplers", type=lambda s: s.split(","), default=list(SAMPLERS),
                           help=f"comma-separated, from {','.join(SAMPLERS)}")
    args = parser.parse_args(argv)
    if args.smoke and args.results.resolve() == RESULTS.resolve():
        parser.error("--smoke (a 6-recipe space, 2 seeds, short ask-time runs) writes to a folder of your own: "
                     "give --results DIR")
    for name in getattr(args, "samplers", []):
        if name not in SAMPLERS:
            parser.error(f"unknown sampler '{name}'; choose from {', '.join(SAMPLERS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return build(args) if args.phase == "build" else samplers_phase(args)


if __name__ == "__main__":
    sys.exit(main())
