"""What a trial leaves behind: its state, recipe, metrics, curve and error."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

State = Literal["COMPLETE", "PRUNED", "FAIL"]
#: notes a trial keeps; a strategy logging every step of a long loop must not bloat trials.jsonl
MAX_NOTES = 50


class TrialResult(BaseModel):
    number: int
    state: State
    recipe: dict[str, Any]
    description: str = ""
    metrics: dict[str, float] = Field(default_factory=dict)
    #: validation metric after each training epoch
    curve: list[float] = Field(default_factory=list)
    #: per weighted layer: shape, width and parameters kept against the baseline, sparsity, shipped
    #: precision (orchestrator.layers.layer_table)
    layers: list[dict[str, Any]] = Field(default_factory=list)
    #: constraint name -> violation (<= 0 means satisfied), as told to Optuna
    constraints: dict[str, float] = Field(default_factory=dict)
    feasible: bool = False
    #: the artifact's path relative to the run directory, while it is kept
    artifact: str | None = None
    error: str | None = None
    #: what the trial's strategies reported through ``ctx.log`` (the first MAX_NOTES)
    notes: list[str] = Field(default_factory=list)
    started_at: float = 0.0
    finished_at: float = 0.0
    #: the host and process that ran the trial
    node: str | None = None
    pid: int | None = None
    #: cancelled by Ctrl-C or left behind by a killed driver: not counted in the budget, re-queued
    interrupted: bool = False
    #: where the trial's time went besides its own compute: ``latency_s``, its artifact timed
    #: (waiting for the meter included); ``waited_s``, its compute held back while other files
    #: were timed on its machine
    timings: dict[str, float] = Field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.finished_at - self.started_at
