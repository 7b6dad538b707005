"""What early stopping would have cost a run that had it off: its rules replayed over the run's
curves, in the order the trials finished.

For each setting of ``early_stopping`` (the defaults and a grid of grace epochs and floor
margins), the run's board is rebuilt and fed every trial's validation curve epoch by epoch; a
trial the rules would have stopped is counted with the epochs it would have saved, and with
whether it in fact ended feasible or on the run's final Pareto front: those are the rules'
mistakes. Used by ``versus_anchor.py --no-early-stopping``. Run on its own, it replays the rules of this
checkout over the curves a ``versus_anchor.py`` record keeps (by default the recorded MNIST-1D
search without early stopping), so a change to the rules is judged on the same curves::

    python benchmarks/stopping_replay.py [RECORD.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from common import RESULTS, add_common_args, header, verdict, write_record

RECORD = RESULTS / "versus_anchor_mnist1d_no-early-stopping.json"

GRACE_EPOCHS = (1, 2, 3, 4)
FLOOR_MARGINS = (0.01, 0.02)


def replay(trials: list[Any], objectives: list[Any], floor: float | None, rule: Any) -> dict:
    """Replay one rule over ``trials`` (TrialResults, with curves) in the order they finished."""
    from orchestrator.study.early_stopping import CurveBoard
    from orchestrator.study.pareto import pareto_front

    front = {t.number for t in pareto_front(trials, objectives)}
    feasible = {t.number for t in trials if t.state == "COMPLETE" and t.feasible}
    board = CurveBoard(rule, floor)
    stopped: dict[int, tuple[int, int]] = {}
    for t in sorted(trials, key=lambda t: t.finished_at):
        for epoch, value in enumerate(t.curve, 1):
            if board.report(t.number, epoch, value):
                stopped[t.number] = (epoch, len(t.curve))
                break
        board.finish(t.number, t.state == "COMPLETE" and t.number not in stopped)
    return {"grace_epochs": rule.grace_epochs, "floor_margin": rule.floor_margin,
            "median_margin": rule.median_margin, "stopped": len(stopped),
            "stopped_feasible": len(set(stopped) & feasible), "stopped_on_front": len(set(stopped) & front),
            "epochs_saved": sum(total - epoch for epoch, total in stopped.values()),
            "epochs_trained": sum(len(t.curve) for t in trials)}


def replay_settings(trials: list[Any], objectives: list[Any], floor: float | None) -> list[dict]:
    """The defaults first, then every (grace epochs, floor margin) of the grid."""
    from orchestrator.config import EarlyStoppingConfig

    defaults = EarlyStoppingConfig()
    rows = [dict(replay(trials, objectives, floor, defaults), setting="defaults")]
    for grace in GRACE_EPOCHS:
        for margin in FLOOR_MARGINS:
            rule = EarlyStoppingConfig(grace_epochs=grace, floor_margin=margin)
            rows.append(dict(replay(trials, objectives, floor, rule), setting=f"grace {grace}, margin {margin:g}"))
    return rows


def print_replay(rows: list[dict]) -> None:
    print("\nearly stopping replayed over this run's curves (it ran without):")
    print(f"{'setting':<22}{'stopped':>8}{'feasible':>9}{'on front':>9}{'epochs saved':>14}")
    for r in rows:
        print(f"{r['setting']:<22}{r['stopped']:>8}{r['stopped_feasible']:>9}{r['stopped_on_front']:>9}"
              f"{r['epochs_saved']:>8} / {r['epochs_trained']}")


def replay_record(path: Path) -> tuple[list[dict], float | None]:
    """The replay table over a versus_anchor record's curves (in the order its trials finished),
    and the accuracy floor it used."""
    from orchestrator.config import Objective
    from orchestrator.results import TrialResult

    record = json.loads(path.read_text(encoding="utf-8"))
    fields = set(TrialResult.model_fields)
    trials = [TrialResult(**{k: v for k, v in t.items() if k in fields}) for t in record["search"]["trials"]]
    if not any(t.curve for t in trials):
        raise SystemExit(f"{path}: the record keeps no training curves (recorded before they were kept)")
    config = record["settings"]["search"]
    objectives = [Objective(**o) for o in config["objectives"]]
    drop = (config.get("constraints") or {}).get("accuracy_drop") or {}
    floor = (record["baseline"]["search"]["accuracy"] - drop["max"] / 100.0) if drop.get("max") is not None else None
    return replay_settings(trials, objectives, floor), floor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("record", type=Path, nargs="?", default=RECORD,
                        help="a versus_anchor record (default: the recorded MNIST-1D search without early stopping)")
    add_common_args(parser)
    args = parser.parse_args()
    if not args.record.is_file():
        sys.exit(f"{args.record}: no such record")
    rows, floor = replay_record(args.record)
    print(f"replaying this checkout's rules over {args.record} (accuracy floor {floor})")
    print_replay(rows)
    record = {**header("stopping_replay"), "smoke": args.smoke, "source": str(args.record), "floor": floor,
              "rows": rows}
    dest = write_record(record, args.results, "stopping_replay.json")
    word, code = verdict(True, args.smoke)
    print(f"{word}: written to {dest}")
    return code


if __name__ == "__main__":
    sys.exit(main())
