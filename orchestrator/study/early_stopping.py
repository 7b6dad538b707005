"""Early stopping for a multi-objective study.

Optuna's ``Trial.report`` / ``should_prune`` raise for multi-objective studies, so the
orchestrator keeps the curves itself. Every training epoch a trial reports its validation
accuracy here; :meth:`CurveBoard.report` answers with a reason to stop, or None. Two rules, both
compared only against trials that completed, and both judging a trial by the better of its last
two epochs (one noisy epoch does not end it, a collapse does):

* **floor rule**: with an accuracy floor (``constraints.accuracy.min``, or the baseline minus
  ``constraints.accuracy_drop.max``), a trial at epoch *e* stops when its accuracy, plus the largest
  gain any completed trial made after its own epoch *e*, is still ``floor_margin`` below the floor:
  no trial seen so far recovered that much.
* **median rule**: a trial stops when it is ``median_margin`` below the median of the completed
  curves at the same epoch ("far behind"; a small model a little less accurate than the rest may
  still belong on the front, so the margin is wide), unless it already meets the accuracy floor.

Neither rule stops a trial that is **climbing fast enough**: one whose own pace (its gain over
its last epoch), kept up for the epochs the longest completed trial trained after this one, would
bring it to the floor (to the median, without a floor). Heavily pruned models start far below
every lightly pruned one and climb steeply for their first epochs; judged only by what lighter
trials gained later, they were stopped before they could recover. A flat or falling curve gets no
such benefit of the doubt.

A rule applies only after ``grace_epochs`` and once ``min_trials`` completed curves reach the
epoch (for the floor rule: go on after it, since it learns from what they gained later).
Stopped trials are told PRUNED and keep their curves.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.config import EarlyStoppingConfig, RunConfig


def accuracy_floor(config: "RunConfig", baseline_accuracy: float | None) -> float | None:
    """The lowest validation accuracy the constraints accept, or None when they set none."""
    floors = []
    bound = config.constraints.get("accuracy")
    if bound is not None and bound.min is not None:
        floors.append(bound.min)
    drop = config.constraints.get("accuracy_drop")
    if drop is not None and drop.max is not None and baseline_accuracy is not None:
        floors.append(baseline_accuracy - drop.max / 100.0)
    return max(floors) if floors else None


class CurveBoard:
    """The curves of running and completed trials, and the stopping rules over them.

    The driver owns one per run: in-process for the local executor, inside a zero-CPU Ray actor
    for the Ray executor (every method is then a remote call, so all arguments are plain data).
    """

    def __init__(self, rule: "EarlyStoppingConfig", floor: float | None,
                 completed: list[list[float]] | None = None) -> None:
        self.rule, self.floor = rule, floor
        self.completed: list[list[float]] = [list(c) for c in completed or [] if c]
        self.running: dict[int, list[float]] = {}

    def report(self, number: int, epoch: int, value: float) -> str | None:
        """Record epoch ``epoch`` (1-based) of trial ``number``; a reason to stop it, or None."""
        curve = self.running.setdefault(number, [])
        curve.append(float(value))
        if not self.rule.enabled or epoch < self.rule.grace_epochs:
            return None
        # the floor rule learns from curves that went on after this epoch: what they gained later
        longer = [c for c in self.completed if len(c) > epoch]
        value = max(curve[-2:])  # the better of its last two epochs: one noisy epoch does not end it
        if self.floor is not None and len(longer) >= self.rule.min_trials:
            best_gain = max(max(c[epoch:]) - c[epoch - 1] for c in longer)
            target = self.floor - self.rule.floor_margin
            if value + max(best_gain, 0.0) < target and not self._climbing(value, curve, longer, epoch, target):
                return (f"early-stopped at epoch {epoch}: validation {value:.4f} cannot reach the accuracy floor "
                        f"{self.floor:.4f} (the best later gain of {len(longer)} completed trials is "
                        f"{best_gain:+.4f}, and its own pace is {self._pace(curve):+.4f} an epoch)")
        peers = [c for c in self.completed if len(c) >= epoch]
        above_floor = self.floor is not None and value >= self.floor
        if self.rule.median_margin is not None and len(peers) >= self.rule.min_trials and not above_floor:
            median = statistics.median(c[epoch - 1] for c in peers)
            target = median if self.floor is None else min(median, self.floor - self.rule.floor_margin)
            if value < median - self.rule.median_margin and not self._climbing(value, curve, longer, epoch, target):
                return (f"early-stopped at epoch {epoch}: validation {value:.4f} is more than "
                        f"{self.rule.median_margin:g} below the median {median:.4f} of {len(peers)} completed "
                        "trials at that epoch")
        return None

    @staticmethod
    def _pace(curve: list[float]) -> float:
        """The curve's gain over its last epoch (0 for a one-epoch curve)."""
        return curve[-1] - curve[-2] if len(curve) >= 2 else 0.0

    def _climbing(self, value: float, curve: list[float], longer: list[list[float]], epoch: int,
                  target: float) -> bool:
        """Would the curve, from ``value``, reach ``target`` at its own pace, kept up as long as the
        longest completed trial trained after this epoch?"""
        epochs_left = max((len(c) for c in longer), default=epoch) - epoch
        return value + max(self._pace(curve), 0.0) * epochs_left >= target

    def finish(self, number: int, completed: bool) -> list[float]:
        """Trial ``number`` ended; its curve joins the reference curves if it completed."""
        curve = self.running.pop(number, [])
        if completed and curve:
            self.completed.append(curve)
        return curve
