"""The quickstart search on MNIST-1D, checked against the floor it must clear.

Floor: within 10 minutes on a 2-core machine, a feasible trial with accuracy_drop <= 1 point that
is at least 3x smaller (size_mb) and 3x faster (latency_ms, onnxruntime, batch 256, one thread)
than the baseline, as one trial. Writes benchmarks/results/quickstart_floor.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, add_common_args, header, verdict, write_record

FLOOR = {"accuracy_drop": 1.0, "smaller": 3.0, "faster": 3.0, "wall_s": 600}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    args = parser.parse_args()
    import orchestrator
    from orchestrator.config import load_config

    out = Path(tempfile.mkdtemp(prefix="quickstart-"))
    config = load_config(ROOT / "examples" / "mnist1d.yaml")
    if args.smoke:
        config.budget.n_trials = 2
    else:  # the baseline's training counts in the wall time
        os.environ["ORCHESTRATOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="cache-")
    start = time.time()
    result = orchestrator.search(config, out=out, progress=False)
    wall = time.time() - start
    base = result.baseline
    candidates = []
    for t in result.pareto:
        smaller, faster = base["size_mb"] / t.metrics["size_mb"], base["latency_ms"] / t.metrics["latency_ms"]
        candidates.append({"trial": t.number, "recipe": t.description, "accuracy": t.metrics["accuracy"],
                           "accuracy_drop": t.metrics["accuracy_drop"], "size_mb": t.metrics["size_mb"],
                           "gzip_mb": t.metrics["gzip_mb"], "latency_ms": t.metrics["latency_ms"],
                           "smaller": smaller, "faster": faster})
    best = max(candidates, key=lambda c: min(c["smaller"], c["faster"]), default=None)
    passed = (best is not None and best["accuracy_drop"] <= FLOOR["accuracy_drop"] and best["smaller"] >= FLOOR["smaller"]
              and best["faster"] >= FLOOR["faster"] and wall <= FLOOR["wall_s"])
    record = {**header("quickstart_floor"), "smoke": args.smoke, "floor": FLOOR, "wall_s": wall,
              "n_trials": len(result.trials), "baseline": base, "best": best, "pareto": candidates, "passed": passed}
    dest = write_record(record, args.results, "quickstart_floor.json")
    print(f"wall {wall:.0f} s, {len(result.trials)} trials, baseline acc {base['accuracy']:.4f}, "
          f"{base['size_mb']:.4f} MB, {base['latency_ms']:.3f} ms")
    for c in candidates:
        print(f"trial {c['trial']:>3}: drop {c['accuracy_drop']:+.2f} pts, {c['smaller']:.2f}x smaller, "
              f"{c['faster']:.2f}x faster, gzip {base['gzip_mb'] / c['gzip_mb']:.2f}x  {c['recipe']}")
    word, code = verdict(passed, args.smoke)
    print(f"{word}: floor {FLOOR}; written to {dest}")
    return code


if __name__ == "__main__":
    sys.exit(main())
