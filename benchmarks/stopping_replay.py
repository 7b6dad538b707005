"""What early stopping would have cost a run that had it off: its rules replayed over the run's
curves, in the order the trials finished.

For each setting of ``early_stopping`` (the defaults and a grid of grace epochs and floor
margins), the run's board is rebuilt and fed every trial's validation curve epoch by epoch; a
trial the rules would have stopped is counted with the epochs it would have saved, and with
whether it in fact ended feasible or on the run's final Pareto front: those are the rules'
mistakes. Used by ``versus_anchor.py --no-early-stopping``.
"""

from __future__ import annotations

from typing import Any

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
