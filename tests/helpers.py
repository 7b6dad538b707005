"""Helpers the tests import (fixtures live in conftest.py)."""

from __future__ import annotations


def quick_config(**overrides) -> dict:
    """A run config dict for a fast search on digits."""
    config = {"task": {"name": "digits", "params": {"width": 8}}, "search_space": "quick",
              "budget": {"n_trials": 4}, "constraints": {"accuracy_drop": {"max": 5.0}},
              "latency": {"batch_size": 64, "repeats": 5, "warmup": 1}}
    config.update(overrides)
    return config
