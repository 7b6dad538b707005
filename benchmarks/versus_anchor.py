"""Head to head: the orchestrator's search against the hand-written anchor grid, in one process.

    python benchmarks/versus_anchor.py --task mnist1d [--trials 100] [--grid-epochs 5 15] [--smoke]

One run, one machine, one process: (1) the task's baseline is trained or loaded from the cache;
(2) the anchor grid (benchmarks/anchor.py) compresses it by hand in 32 ways: Torch-Pruning L1
channel pruning 0/25/50/75 % x fine-tuning 5/15 epochs x logit distillation off/on x ONNX Runtime
static int8 off/on; (3) the orchestrator searches the same task with the ``default`` space:
objectives accuracy, size_mb, latency_ms; constraint accuracy_drop <= 1 point; latency on ONNX
Runtime, batch 256, one thread; at most 100 trials and 20 minutes. Both sides are measured by the
same code on their exported ONNX files (see anchor.py), against one baseline: the search's own
measurement of it (its file is measured by the grid too; both are recorded).

Summary, for each side's feasible points (accuracy_drop <= 1):

* the best point by min(x smaller, x faster), where x smaller = baseline size_mb / size_mb and
  x faster = baseline latency_ms / latency_ms; x gzip (gzip_mb) beside them;
* the hypervolume of the feasible Pareto front, normalised as the orchestrator normalises it
  (``orchestrator.study.pareto.reference`` from the baseline; 0 to 1), for the grid's 32 points,
  the search's first 25 trials (by trial number) and all its trials.

Goals: the search's best is >= 8x smaller and >= 8x faster as one trial; the search's hypervolume
after 25 trials is >= the grid's; after all its trials it is clearly above the grid's, taken as at
least 5 % more. A missed goal is reported as missed (exit code 1).

For scale, quoted and not computed: Deep Compression (Han, Mao and Dally, ICLR 2016) stores
LeNet-300-100 40x and LeNet-5 39x smaller on MNIST with pruning, trained quantization and Huffman
coding. That counts the weights' storage, not a file a runtime loads, and says nothing of latency.

``--smoke`` runs tiny versions of everything (2 ratios, 1 epoch, 4 trials, short latency timing)
to check the harness; its record goes to a temporary folder unless ``--results`` names one, and
goals are not judged. Writes benchmarks/results/versus_anchor_<task>.json.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

from anchor import (ALPHA, BATCH_SIZE, CALIBRATION_BATCHES, EPOCHS, INT8, KD, LR, RATIOS, TEMPERATURE,
                    FreshProcessMeter, measure_baseline, prepare, run_grid)
from common import RESULTS, add_common_args, header, verdict, write_record
from stopping_replay import print_replay, replay_settings

GOALS = {"accuracy_drop": 1.0, "smaller": 8.0, "faster": 8.0, "early_trials": 25,
         "hypervolume_early_vs_grid": 1.0, "hypervolume_all_vs_grid": 1.05}
FULL_LATENCY = {"runtime": "onnxruntime", "batch_size": 256, "threads": 1}
SMOKE_LATENCY = dict(FULL_LATENCY, repeats=3, sessions=1, warmup=1, warmup_s=0.0)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist1d", help="a built-in task: mnist1d, digits, tiny-text")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=100, help="the search's trial budget")
    parser.add_argument("--timeout", type=float, default=1200.0, help="the search's time budget, seconds")
    parser.add_argument("--grid-epochs", type=int, nargs="+", default=list(EPOCHS))
    parser.add_argument("--grid-ratios", type=float, nargs="+", default=list(RATIOS))
    parser.add_argument("--no-early-stopping", action="store_true",
                        help="search with early stopping off, to measure what its rules cost the front "
                             "(recorded as versus_anchor_<task>_no-early-stopping.json)")
    parser.add_argument("--sampler-seed", type=int, default=None,
                        help="seed the search's sampler apart from --seed: the data, the baseline, the grid and "
                             "every trial's training stay the same, so runs that differ only here show how much "
                             "a result owes to the sampler's luck "
                             "(recorded as versus_anchor_<task>_sampler-seed-<N>.json)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the grid's files and the search's run directory (default: a temp folder)")
    add_common_args(parser)
    args = parser.parse_args()
    if args.smoke:
        args.trials, args.grid_epochs, args.grid_ratios = 4, [1], [0.0, 0.5]
        if args.results == RESULTS:  # a smoke run never replaces a recorded result
            args.results = Path(tempfile.mkdtemp(prefix="versus-anchor-results-"))
    return args


def search_config(args: argparse.Namespace) -> dict:
    config = {"task": {"name": args.task}, "search_space": "default",
              "objectives": ["accuracy", "size_mb", "latency_ms"], "constraints": {"accuracy_drop": {"max": 1.0}},
              "budget": {"n_trials": args.trials, "timeout": args.timeout},
              "sampler": {"name": "tpe", **({} if args.sampler_seed is None else {"seed": args.sampler_seed})},
              "seed": args.seed, "latency": SMOKE_LATENCY if args.smoke else FULL_LATENCY}
    if args.smoke:
        config["report"] = {"importance": False, "refresh_s": None}
    if args.no_early_stopping:
        config["early_stopping"] = {"enabled": False}
    return config


def grid_as_trials(points: list[dict], baseline: dict, constraints: dict) -> list:
    """The grid's points as TrialResults, accuracy_drop taken against ``baseline`` (the search's)."""
    from orchestrator.results import TrialResult
    from orchestrator.study.pareto import constraint_violations

    trials = []
    for p in points:
        metrics = dict(p["metrics"], accuracy_drop=100.0 * (baseline["accuracy"] - p["metrics"]["accuracy"]))
        violations = constraint_violations(metrics, constraints)
        trials.append(TrialResult(number=p["number"], state="COMPLETE", recipe=p["config"],
                                  description=p["description"], metrics=metrics, constraints=violations,
                                  feasible=all(v <= 0 for v in violations.values())))
    return trials


def gains(metrics: dict, baseline: dict) -> dict:
    """x smaller (size_mb), x smaller after gzip (gzip_mb) and x faster (latency_ms) than the baseline."""
    return {"smaller": baseline["size_mb"] / metrics["size_mb"],
            "gzip_smaller": baseline["gzip_mb"] / metrics["gzip_mb"],
            "faster": baseline["latency_ms"] / metrics["latency_ms"]}


def min_gain(trial, baseline: dict) -> float:
    """What the best point is chosen by: the lesser of x smaller and x faster."""
    g = gains(trial.metrics, baseline)
    return min(g["smaller"], g["faster"])


def row(trial, baseline: dict) -> dict:
    return {"number": trial.number, "description": trial.description, **trial.metrics, **gains(trial.metrics, baseline)}


def side(trials: list, baseline: dict, objectives: list, ideal: dict, ref: dict) -> dict:
    """One side's feasible points: its Pareto front, hypervolume and best min(x smaller, x faster)."""
    from orchestrator.study.pareto import hypervolume, pareto_front

    feasible = [t for t in trials if t.state == "COMPLETE" and t.feasible]
    front = pareto_front(trials, objectives)
    best = max(feasible, key=lambda t: min_gain(t, baseline), default=None)
    return {"points": len(trials), "feasible": len(feasible), "hypervolume": hypervolume(front, objectives, ideal, ref),
            "front": [row(t, baseline) for t in front], "best": row(best, baseline) if best else None}


def judge(summary: dict) -> list[dict]:
    best = summary["search"]["best"]
    grid_hv = summary["grid"]["hypervolume"]
    early, full = summary["search_early"]["hypervolume"], summary["search"]["hypervolume"]
    best_text = f"{best['smaller']:.2f}x smaller, {best['faster']:.2f}x faster" if best else "no feasible trial"
    return [
        {"goal": f"search best >= {GOALS['smaller']:g}x smaller and >= {GOALS['faster']:g}x faster, one feasible trial",
         "value": {"smaller": best["smaller"], "faster": best["faster"]} if best else None, "shown": best_text,
         "passed": bool(best) and best["smaller"] >= GOALS["smaller"] and best["faster"] >= GOALS["faster"]},
        {"goal": f"search hypervolume after {GOALS['early_trials']} trials >= grid's",
         "value": {"search": early, "grid": grid_hv}, "shown": f"{early:.4f} against {grid_hv:.4f}",
         "passed": early >= GOALS["hypervolume_early_vs_grid"] * grid_hv},
        {"goal": f"search hypervolume after all trials >= {GOALS['hypervolume_all_vs_grid']:g}x grid's",
         "value": {"search": full, "grid": grid_hv}, "shown": f"{full:.4f} against {grid_hv:.4f}",
         "passed": full >= GOALS["hypervolume_all_vs_grid"] * grid_hv},
    ]


def print_rows(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"{'#':>4} {'acc':>7} {'test':>7} {'drop':>6} {'MB':>8} {'gzMB':>8} {'ms':>7} {'xsmall':>7} {'xgzip':>6} "
          f"{'xfast':>6}  recipe")
    for r in rows:
        print(f"{r['number']:>4} {r['accuracy']:>7.4f} {r['test_accuracy']:>7.4f} {r['accuracy_drop']:>+6.2f} "
              f"{r['size_mb']:>8.4f} {r['gzip_mb']:>8.4f} {r['latency_ms']:>7.3f} {r['smaller']:>7.2f} "
              f"{r['gzip_smaller']:>6.2f} {r['faster']:>6.2f}  {r['description']}")


def print_summary(summary: dict, goals: list[dict], base: dict) -> None:
    print(f"\nbaseline: acc {base['accuracy']:.4f}, {base['size_mb']:.4f} MB, {base['latency_ms']:.3f} ms")
    for name, label in (("grid", "anchor grid"), ("search_early", f"search, first {GOALS['early_trials']}"),
                        ("search", "search, all")):
        s, best = summary[name], summary[name]["best"]
        best_text = (f"best {best['smaller']:.2f}x smaller, {best['faster']:.2f}x faster, {best['gzip_smaller']:.2f}x "
                     f"gzip (#{best['number']} {best['description']})" if best else "no feasible point")
        print(f"{label:>20}: {s['points']:>3} points, {s['feasible']:>3} feasible, hypervolume {s['hypervolume']:.4f}; "
              f"{best_text}")
    for g in goals:
        print(f"{'met' if g['passed'] else 'MISSED':>7}: {g['goal']}: {g['shown']}")


def main() -> int:
    args = parse_args()
    # a stop (timeout, a scheduler) during the grid unwinds like an error, so the grid's meter
    # process is shut down instead of left running; the search installs its own handler
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    import orchestrator
    from orchestrator.config import load_config
    from orchestrator.study.pareto import reference

    config = load_config(search_config(args))
    out = args.out or Path(tempfile.mkdtemp(prefix=f"versus-anchor-{args.task}-"))
    if (out / "search").exists():
        sys.exit(f"{out / 'search'} exists: choose another --out")
    latency = config.latency  # the grid is timed exactly as the search's trials are
    wall = {}

    start = time.time()
    setup = prepare(args.task, args.seed)
    wall["baseline_s"] = time.time() - start

    start = time.time()
    with FreshProcessMeter() as meter:
        grid_baseline = measure_baseline(setup, latency, out / "grid", meter)
        points = run_grid(args.task, args.seed, epochs=args.grid_epochs, ratios=args.grid_ratios, latency=latency,
                          workdir=out / "grid", setup=setup, baseline_accuracy=grid_baseline["accuracy"], meter=meter)
    wall["grid_s"] = time.time() - start

    start = time.time()
    result = orchestrator.search(config, out=out / "search", progress=False, log=lambda msg: print(f"search: {msg}"))
    wall["search_s"] = time.time() - start

    base, objectives = result.baseline, result.config.objectives
    ideal, ref = reference(base, objectives)
    grid = grid_as_trials(points, base, result.config.constraints)
    searched = sorted(result.trials, key=lambda t: t.number)
    summary = {"grid": side(grid, base, objectives, ideal, ref),
               "search_early": side(searched[:GOALS["early_trials"]], base, objectives, ideal, ref),
               "search": side(searched, base, objectives, ideal, ref),
               "normalisation": {"ideal": ideal, "reference": ref},
               "search_hypervolume_in_pareto_json": result.hypervolume,
               "baseline_latency_grid_vs_search": grid_baseline["latency_ms"] / base["latency_ms"] - 1.0}
    goals = judge(summary)
    passed = all(g["passed"] for g in goals)
    if args.no_early_stopping:
        from orchestrator.study.early_stopping import accuracy_floor

        summary["early_stopping_replay"] = replay_settings(searched, objectives,
                                                           accuracy_floor(result.config, base["accuracy"]))

    record = {**header("versus_anchor"), "smoke": args.smoke, "task": args.task, "seed": args.seed,
              "sampler_seed": args.sampler_seed,
              "settings": {"grid": {"ratios": args.grid_ratios, "epochs": args.grid_epochs, "kd": list(KD),
                                    "int8": list(INT8), "lr": LR, "batch_size": BATCH_SIZE,
                                    "temperature": TEMPERATURE, "alpha": ALPHA,
                                    "calibration_batches": CALIBRATION_BATCHES},
                           "search": config.model_dump(mode="json")},
              "wall_s": wall, "baseline": {"search": base, "grid": grid_baseline},
              "grid": [dict(p, metrics=t.metrics, feasible=t.feasible, **gains(t.metrics, base))
                       for p, t in zip(points, grid)],
              "search": {"run_dir": str(result.run_dir), "trials": [
                  {"number": t.number, "state": t.state, "description": t.description, "recipe": t.recipe,
                   "metrics": t.metrics, "feasible": t.feasible, "error": t.error, "curve": t.curve,
                   "finished_at": t.finished_at,
                   **(gains(t.metrics, base) if t.state == "COMPLETE" else {})} for t in searched]},
              "summary": summary, "goals": GOALS, "verdicts": goals, "passed": passed}
    variant = ("_no-early-stopping" if args.no_early_stopping else "") + (
        "" if args.sampler_seed is None else f"_sampler-seed-{args.sampler_seed}")
    dest = write_record(record, args.results, f"versus_anchor_{args.task}{variant}.json")

    print_rows(f"anchor grid ({len(grid)} points, accuracy_drop against the search's baseline)",
               [row(t, base) for t in grid])
    print_rows("search: feasible Pareto front", summary["search"]["front"])
    print_summary(summary, goals, base)
    if args.no_early_stopping:
        print_replay(summary["early_stopping_replay"])
    print(f"wall: baseline {wall['baseline_s']:.0f} s, grid {wall['grid_s']:.0f} s, search {wall['search_s']:.0f} s "
          f"({len(searched)} trials)")
    word, code = verdict(passed, args.smoke)
    print(f"{word}: written to {dest}")
    return code


if __name__ == "__main__":
    sys.exit(main())
