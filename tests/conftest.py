"""Shared fixtures: an isolated baseline cache, a small trained digits model and its context."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # test models are built from configs; never fetch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory):
    """Baselines trained by the tests go to a temporary cache, never the user's."""
    path = tmp_path_factory.mktemp("baseline-cache")
    old = os.environ.get("ORCHESTRATOR_CACHE_DIR")
    os.environ["ORCHESTRATOR_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("ORCHESTRATOR_CACHE_DIR", None)
    else:
        os.environ["ORCHESTRATOR_CACHE_DIR"] = old


@pytest.fixture(scope="session", autouse=True)
def ray_cluster():
    """One local Ray for the whole suite (2 CPUs, as the CI machine): every search joins it."""
    import logging

    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def host():
    from orchestrator.pluginmanager import get_host

    return get_host()


@pytest.fixture(scope="session")
def digits_task():
    from orchestrator_plugins.tasks.digits import DigitsTask

    return DigitsTask(width=8)


@pytest.fixture(scope="session")
def digits_data(digits_task):
    return digits_task.load_data(seed=0)


@pytest.fixture(scope="session")
def digits_baseline(digits_task, digits_data):
    """The small digits CNN trained once for the whole session (a few seconds on a CPU)."""
    from orchestrator.baseline import prepare_baseline

    return prepare_baseline(digits_task, digits_data, seed=0, log=lambda msg: None)


@pytest.fixture
def make_ctx(digits_task, digits_data, digits_baseline, tmp_path):
    """A TrialContext on the trained digits model; keyword arguments override its fields."""
    from orchestrator.context import TrialContext

    def make(**overrides):
        fields = dict(task=digits_task, data=digits_data, teacher=digits_baseline.model, seed=0,
                      workdir=tmp_path / "work", rewind_state=digits_baseline.rewind_state)
        fields.update(overrides)
        return TrialContext(**fields)

    return make
