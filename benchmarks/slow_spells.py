"""Slow spells: one file timed again and again after idle gaps, with the canary off and on.

    python benchmarks/slow_spells.py [--readings 20] [--gap 1.0]

On a virtual machine a core can run slow for seconds at a time, every session of a reading alike
(see ``orchestrator/metrics/canary.py``). This times one file, the MNIST-1D baseline in static
int8 (ONNX Runtime QDQ, as the anchor grid builds it), ``--readings`` times each way in the
meter process the anchor grid uses, with the default latency settings: once with
``latency.canary`` off (judged by the spread only, every warm-up ``warmup_s`` long) and once with
it on. Before every reading the machine idles for ``--gap`` seconds, as a meter does between
trials; the two ways alternate, each going first in every other round.

Per way: the median, fastest and slowest reading, the readings more than 10 % above the fastest
reading of either way (slow), the readings taken again, and the seconds a reading took (warm-up
included). Writes benchmarks/results/slow_spells.json. Nothing here is a goal of its own: it
records how often a reading lands in a slow spell on this machine, and what the canary does
about it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from anchor import CALIBRATION_BATCH_SIZE, CALIBRATION_BATCHES, FreshProcessMeter, export_file, prepare, quantize_int8
from common import add_common_args, header, verdict, write_record

SLOW = 0.10


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=20, help="readings each way")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds the machine idles before each reading")
    add_common_args(parser)
    args = parser.parse_args()
    if args.smoke:
        args.readings, args.gap = 2, 0.0
    return args


def summarise(readings: list[dict], fastest: float) -> dict:
    medians = [r["median_ms"] for r in readings]
    return {"median_ms": statistics.median(medians), "fastest_ms": min(medians), "slowest_ms": max(medians),
            "slow": sum(m > (1 + SLOW) * fastest for m in medians), "retaken": sum(r["readings"] > 1 for r in readings),
            "seconds_per_reading": statistics.mean(r["seconds"] for r in readings)}


def main() -> int:
    args = parse_args()
    from orchestrator.config import LatencyConfig

    setup = prepare("mnist1d")
    work = Path(tempfile.mkdtemp(prefix="slow-spells-"))
    fp32 = export_file(setup, setup.baseline.model.eval(), work / "baseline.onnx")
    x_train = setup.data.train[0]
    calibration = [x_train[i * CALIBRATION_BATCH_SIZE:(i + 1) * CALIBRATION_BATCH_SIZE]
                   for i in range(CALIBRATION_BATCHES)]
    artifact = quantize_int8(fp32, work / "baseline-int8.onnx", calibration, setup.task.input_name)
    batch = setup.task.example_inputs(setup.data, 256)
    quick = {"repeats": 3, "sessions": 1, "warmup": 1, "warmup_s": 0.1} if args.smoke else {}
    ways = {"canary off": LatencyConfig(canary=False, **quick), "canary on": LatencyConfig(canary=True, **quick)}

    taken: dict[str, list[dict]] = {name: [] for name in ways}
    with FreshProcessMeter() as meter:
        for i in range(args.readings):
            for name in (list(ways) if i % 2 == 0 else list(ways)[::-1]):
                time.sleep(args.gap)
                start = time.perf_counter()
                stats = meter.measure(artifact, batch, ways[name])
                taken[name].append({"median_ms": stats.median_ms, "iqr_ms": stats.iqr_ms, "slowdown": stats.slowdown,
                                    "readings": stats.readings, "seconds": time.perf_counter() - start})
                print(f"{i + 1:>3} {name:>10}: {stats.median_ms:.3f} ms (canary x{stats.slowdown:.2f}, "
                      f"{stats.readings} reading{'s' if stats.readings > 1 else ''}, "
                      f"{time.perf_counter() - start:.2f} s)", flush=True)
    fastest = min(r["median_ms"] for rs in taken.values() for r in rs)
    summary = {name: summarise(rs, fastest) for name, rs in taken.items()}
    record = {**header("slow_spells"), "smoke": args.smoke, "gap_s": args.gap, "readings_each_way": args.readings,
              "file": "MNIST-1D baseline, static int8 (QDQ)", "slow_threshold": SLOW,
              "latency": {name: c.model_dump() for name, c in ways.items()}, "summary": summary, "readings": taken}
    dest = write_record(record, args.results, "slow_spells.json")
    print(f"\nfastest reading {fastest:.3f} ms; slow = more than {SLOW:.0%} above it")
    for name, s in summary.items():
        print(f"{name:>10}: median {s['median_ms']:.3f} ms, {s['fastest_ms']:.3f}-{s['slowest_ms']:.3f}, "
              f"{s['slow']} of {args.readings} slow, {s['retaken']} retaken, {s['seconds_per_reading']:.2f} s a reading")
    word, code = verdict(True, args.smoke)
    print(f"{word}: written to {dest}")
    return code


if __name__ == "__main__":
    sys.exit(main())
