"""The driver's memory over a long run, and how stable latency is across a run.

    python benchmarks/driver_cost.py [--trials 500] [--workers 2]

One search with many short trials on `digits` (a small MLP; pruning, 0-1 epochs of fine-tuning,
quantization; latency timed lightly so trials take about a second) on a private local Ray with
2 workers, as `orchestrator run` starts it. While it runs:

* memory: the driver process's resident set (VmRSS) is read when each trial is recorded; the
  record keeps it at trials 50, 100, 250 and 500. Goal: flat, at most 10 % more at the last
  trial than at trial 50.
* latency stability: a second thread of the driver times ONE fixed file (the MNIST-1D baseline
  exported to ONNX) 10 times across the run (when 5 %, 15 %, ..., 95 % of the trials are done),
  through the run's own latency meter and with the default latency settings (batch 256, one
  thread, 5 sessions of 20 runs after 1.5 s of warm-up), while the trials train around it.
  Goal: coefficient of variation of the 10 medians at most 5 %.

Writes benchmarks/results/driver_cost.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import add_common_args, header, verdict, write_record

GOALS = {"memory_growth": 0.10, "latency_cv": 0.05}
CHECKPOINTS = (50, 100, 250, 500)
SPACE = {"description": "Many short trials: the driver's cost, not the recipes', is measured.",
         "stages": {"score": {"magnitude": {}},
                    "prune": {"none": {}, "channel": {"ratio": {"low": 0.1, "high": 0.8}},
                              "unstructured": {"sparsity": {"low": 0.3, "high": 0.9}}},
                    "train": {"none": {"epochs": {"low": 0, "high": 1}}},
                    "quantize": {"none": {}, "dynamic-int8": {}, "fp16": {}}}}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class SteadyTimer(threading.Thread):
    """Times one file each time it is asked to, through the run's meter, while the run goes on."""

    def __init__(self, meter_of, artifact: Path, batch) -> None:
        super().__init__(daemon=True)
        self.meter_of, self.artifact, self.batch = meter_of, artifact, batch
        self.asked = threading.Semaphore(0)
        self.stop = threading.Event()
        self.medians_ms: list[float] = []

    def run(self) -> None:
        from orchestrator.config import LatencyConfig

        while not self.stop.is_set():
            if self.asked.acquire(timeout=0.5):
                self.medians_ms.append(self.meter_of().measure(self.artifact, self.batch, LatencyConfig()).median_ms)


class Probe:
    """A plugin: the driver's resident memory each time a trial is recorded, and a timing of the
    fixed file asked for at 5 %, 15 %, ..., 95 % of the run."""

    def __init__(self, trials: int, timings: int, timer: SteadyTimer) -> None:
        self.by_trial: list[float] = []
        self.ask_at = {round(trials * (i + 0.5) / timings) for i in range(timings)}
        self.timer = timer

    from orchestrator import hookimpl as _hookimpl

    @_hookimpl
    def orchestrator_trial_end(self, result):
        self.by_trial.append(rss_mb())
        if len(self.by_trial) in self.ask_at:
            self.timer.asked.release()


def fixed_file(folder: Path):
    """The MNIST-1D baseline as an ONNX file, and a batch of 256 of its inputs."""
    from orchestrator.baseline import prepare_baseline
    from orchestrator.config import TaskConfig
    from orchestrator.export import export_onnx
    from orchestrator.pluginmanager import get_host
    from orchestrator.tasks import resolve_task

    task = resolve_task(TaskConfig(name="mnist1d"), get_host().catalogue)
    data = task.load_data(0)
    model = prepare_baseline(task, data, 0, log=print).model
    batch = data.val[0][:256]
    return export_onnx(model, batch[:8], folder / "mnist1d.onnx"), batch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    add_common_args(parser)
    args = parser.parse_args()
    timings = 10
    if args.smoke:
        args.trials, timings = 6, 2

    import yaml

    import orchestrator
    import orchestrator.api
    from orchestrator.pluginmanager import PluginHost

    tmp = Path(tempfile.mkdtemp(prefix="driver-cost-"))
    (tmp / "space.yaml").write_text(yaml.safe_dump(SPACE))
    artifact, batch = fixed_file(tmp)
    config = {"task": {"name": "digits"}, "search_space": str(tmp / "space.yaml"), "seed": 0,
              "objectives": ["accuracy", "size_mb", "latency_ms"], "sampler": {"name": "tpe"},
              "budget": {"n_trials": args.trials}, "execution": {"workers": args.workers},
              "latency": {"batch_size": 64, "repeats": 5, "warmup": 1, "sessions": 1, "warmup_s": 0.0}}

    executors = []
    make = orchestrator.api.make_executor

    def remember(cfg):
        executors.append(make(cfg))
        return executors[-1]

    orchestrator.api.make_executor = remember  # the timer uses the run's own meter
    timer = SteadyTimer(lambda: executors[0].meter, artifact, batch)
    probe = Probe(args.trials, timings, timer)
    timer.start()
    start = time.time()
    try:
        result = orchestrator.search(config, out=tmp / "run", progress=False,
                                     host=PluginHost(extra_plugins=[("probe", probe)]))
    finally:
        orchestrator.api.make_executor = make
    wall = time.time() - start
    while timer.is_alive() and len(timer.medians_ms) < len(probe.ask_at) and time.time() - start < wall + 60:
        time.sleep(0.2)  # the last timing asked for finishes
    timer.stop.set()

    memory = {n: probe.by_trial[n - 1] for n in (1, *CHECKPOINTS) if n <= len(probe.by_trial)}
    first = memory.get(50, memory.get(1, float("nan")))
    last = probe.by_trial[-1] if probe.by_trial else float("nan")
    growth = last / first - 1.0
    medians = timer.medians_ms
    cv = statistics.stdev(medians) / statistics.mean(medians) if len(medians) >= 2 else float("nan")
    summary = {"trials": len(result.trials), "wall_s": wall, "trials_per_minute": 60 * len(result.trials) / wall,
               "rss_mb_at": memory, "rss_mb_last": last, "memory_growth": growth,
               "latency_medians_ms": medians, "latency_cv": cv}
    passed = (len(result.trials) >= min(CHECKPOINTS[-1], args.trials) and growth <= GOALS["memory_growth"]
              and len(medians) == timings and cv <= GOALS["latency_cv"])
    record = {**header("driver_cost"), "smoke": args.smoke, "goals": GOALS, "summary": summary,
              "rss_mb_by_trial": probe.by_trial, "space": SPACE, "config": config}
    dest = write_record(record, args.results, "driver_cost.json")
    print(f"{len(result.trials)} trials in {wall:.0f} s; driver memory (MB) "
          + ", ".join(f"trial {n}: {mb:.0f}" for n, mb in memory.items()) + f", last: {last:.0f} "
          f"({growth:+.1%} from trial {50 if 50 in memory else 1})")
    print(f"the same file timed {len(medians)} times across the run: "
          + ", ".join(f"{m:.3f}" for m in medians) + f" ms; coefficient of variation {cv:.1%}")
    word, code = verdict(passed, args.smoke)
    print(f"{word}: goals {GOALS}; written to {dest}")
    return code


if __name__ == "__main__":
    sys.exit(main())
