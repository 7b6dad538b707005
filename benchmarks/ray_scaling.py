"""Parallel trials on Ray: throughput with 1 and 2 workers, the orchestrator's own overhead, and
whether latency measured during a 2-worker run agrees with a 1-worker run.

    python benchmarks/ray_scaling.py [--trials 16] [--space quick]

Both runs search MNIST-1D (examples/mnist1d.yaml) with the random sampler and the same seed, so
they try exactly the same recipes; each starts its own private local Ray, as `orchestrator run`
does. The baseline is trained once beforehand (cached), so neither run pays for it.

* trials per minute: trials / (last trial's end - first trial's dispatch), seen by the driver.
* overhead per trial (1 worker, where trials run back to back): the driver's wall time over the
  trials minus the time the workers spent inside the recipe (execute_trial: compress, export,
  measure), divided by the trials; it holds dispatch, ask/tell, bookkeeping, artifact writes and
  the transfer of the shared state to the worker.
* latency agreement: for every recipe both runs completed, |ms(2 workers) / ms(1 worker) - 1|.
* where the time inside the recipes went, per run (each trial's ``timings``): its file timed
  (``latency_s``, waiting for the meter included), its compute held back while another trial's
  file was timed (``waited_s``), and the rest, the recipe's own compute (``compute_s``).

Goals (issue 4): 2 workers >= 1.7x the trials per minute of 1 worker on 2 cores; overhead <= 5 %
of trial time and under 100 ms per trial; latencies within 5 %.
Writes benchmarks/results/ray_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, add_common_args, header, verdict, write_record

GOALS = {"speedup": 1.7, "overhead_fraction": 0.05, "overhead_ms": 100.0, "latency_agreement": 0.05}


class Clock:
    """An observer plugin: when the driver dispatched each trial and when it recorded its end."""

    def __init__(self) -> None:
        self.started: dict[int, float] = {}
        self.ended: dict[int, float] = {}

    from orchestrator import hookimpl as _hookimpl

    @_hookimpl
    def orchestrator_trial_start(self, number, recipe):
        self.started[number] = time.time()

    @_hookimpl
    def orchestrator_trial_end(self, result):
        self.ended[result.number] = time.time()


def run(workers: int, trials: int, space: str, out: Path) -> dict:
    import orchestrator
    from orchestrator.config import load_config
    from orchestrator.pluginmanager import PluginHost

    config = load_config(ROOT / "examples" / "mnist1d.yaml").model_copy(deep=True)
    config.search_space = space
    config.sampler.name = "random"
    config.budget.n_trials, config.budget.timeout = trials, None
    config.execution.workers = workers
    clock = Clock()
    result = orchestrator.search(config, out=out, progress=False, host=PluginHost(extra_plugins=[("clock", clock)]))
    span = max(clock.ended.values()) - min(clock.started.values())
    work = sum(t.duration_s for t in result.trials)
    latency = sum(t.timings.get("latency_s", 0.0) for t in result.trials)
    waited = sum(t.timings.get("waited_s", 0.0) for t in result.trials)
    return {"workers": workers, "trials": len(result.trials), "span_s": span,
            "trials_per_minute": 60.0 * len(result.trials) / span, "work_s": work,
            "work_split_s": {"latency": latency, "waited": waited, "compute": work - latency - waited},
            "states": {s: sum(t.state == s for t in result.trials) for s in ("COMPLETE", "PRUNED", "FAIL")},
            "latency_ms": {t.description: t.metrics["latency_ms"] for t in result.trials if t.state == "COMPLETE"},
            "overhead_ms_per_trial": 1e3 * (span - work) / len(result.trials) if workers == 1 else None,
            "overhead_fraction": (span - work) / span if workers == 1 else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--space", default="quick")
    add_common_args(parser)
    args = parser.parse_args()
    if args.smoke:
        args.trials = 2

    import orchestrator
    from orchestrator.baseline import prepare_baseline
    from orchestrator.tasks import resolve_task
    from orchestrator.config import load_config
    from orchestrator.pluginmanager import get_host

    config = load_config(ROOT / "examples" / "mnist1d.yaml")
    task = resolve_task(config.task, get_host().catalogue)
    prepare_baseline(task, task.load_data(config.seed), config.seed, log=print)

    tmp = Path(tempfile.mkdtemp(prefix="ray-scaling-"))
    one = run(1, args.trials, args.space, tmp / "one")
    two = run(2, args.trials, args.space, tmp / "two")
    common = sorted(set(one["latency_ms"]) & set(two["latency_ms"]))
    agreement = [abs(two["latency_ms"][d] / one["latency_ms"][d] - 1.0) for d in common]
    speedup = two["trials_per_minute"] / one["trials_per_minute"]
    summary = {
        "speedup": speedup,
        "overhead_ms_per_trial": one["overhead_ms_per_trial"],
        "overhead_fraction": one["overhead_fraction"],
        "latency_agreement_median": statistics.median(agreement) if agreement else None,
        "latency_agreement_max": max(agreement) if agreement else None,
        "recipes_compared": len(common),
    }
    passed = (speedup >= GOALS["speedup"] and one["overhead_fraction"] <= GOALS["overhead_fraction"]
              and one["overhead_ms_per_trial"] <= GOALS["overhead_ms"]
              and bool(agreement) and statistics.median(agreement) <= GOALS["latency_agreement"])
    record = {**header("ray_scaling"), "smoke": args.smoke, "goals": GOALS, "summary": summary,
              "passed": passed, "runs": [one, two]}
    dest = write_record(record, args.results, "ray_scaling.json")
    print(json.dumps(summary, indent=2))
    for r in (one, two):
        split = ", ".join(f"{k} {v:.1f} s" for k, v in r["work_split_s"].items())
        workers = f"{r['workers']} worker{'s' if r['workers'] > 1 else ''}"
        print(f"{workers}: {r['work_s']:.1f} s inside the recipes: {split}")
    word, code = verdict(passed, args.smoke)
    print(f"{word}: results in {dest}")
    return code

if __name__ == "__main__":
    sys.exit(main())
