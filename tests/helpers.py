"""Helpers the tests import (fixtures live in conftest.py)."""

from __future__ import annotations


def quick_config(**overrides) -> dict:
    """A run config dict for a fast search on digits."""
    config = {"task": {"name": "digits", "params": {"width": 8}}, "search_space": "quick",
              "budget": {"n_trials": 4}, "constraints": {"accuracy_drop": {"max": 5.0}},
              "latency": {"batch_size": 64, "repeats": 5, "warmup": 1}}
    config.update(overrides)
    return config


class RecordingPlugin:
    """Records every lifecycle hook call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    from orchestrator import hookimpl as _hookimpl

    @_hookimpl
    def orchestrator_run_start(self, config, run_dir):
        self.calls.append(("run_start", run_dir))

    @_hookimpl
    def orchestrator_trial_start(self, number, recipe):
        self.calls.append(("trial_start", number))

    @_hookimpl
    def orchestrator_trial_end(self, result):
        self.calls.append(("trial_end", result.number))

    @_hookimpl
    def orchestrator_run_end(self, config, run_dir, pareto):
        self.calls.append(("run_end", len(pareto)))
