"""The study in a real PostgreSQL server (started by .ci/run on loopback) instead of the journal file."""

from __future__ import annotations

import os
import uuid

import pytest

import orchestrator
from helpers import quick_config
from orchestrator.errors import UsageError

URL = os.environ.get("ORCHESTRATOR_TEST_POSTGRES_URL")


@pytest.fixture
def postgres_url():
    if not URL:
        if os.environ.get("ORCHESTRATOR_REQUIRE_POSTGRES"):
            pytest.fail("ORCHESTRATOR_REQUIRE_POSTGRES is set but ORCHESTRATOR_TEST_POSTGRES_URL is not")
        pytest.skip('no PostgreSQL server: eval "$(bash .ci/postgres.sh start)" starts one')
    return URL


def test_a_run_stores_its_study_in_postgresql_and_resumes_from_it(tmp_path, postgres_url):
    import optuna

    name = f"test-{uuid.uuid4().hex[:8]}"
    execution = {"storage": postgres_url, "study_name": name}
    first = orchestrator.search(quick_config(budget={"n_trials": 2}, execution=execution), out=tmp_path / "run",
                                progress=False)
    assert not (tmp_path / "run" / "study.log").exists()
    finished = [t for t in optuna.load_study(study_name=name, storage=postgres_url).trials if t.state.is_finished()]
    assert [t.state.name for t in finished] == ["COMPLETE", "COMPLETE"]
    assert [t.values[0] for t in finished] == [t.metrics["accuracy"] for t in first.trials]

    second = orchestrator.search(quick_config(budget={"n_trials": 3}, execution=execution), out=tmp_path / "run",
                                 progress=False)
    assert [t.number for t in second.trials] == [0, 1, 2]
    study = optuna.load_study(study_name=name, storage=postgres_url)
    assert sum(t.state.is_finished() for t in study.trials) == 3


def test_a_study_name_taken_by_another_run_directory_is_refused(tmp_path, postgres_url):
    execution = {"storage": postgres_url, "study_name": f"test-{uuid.uuid4().hex[:8]}", "executor": "local"}
    orchestrator.search(quick_config(budget={"n_trials": 1}, execution=execution), out=tmp_path / "a",
                        progress=False)
    with pytest.raises(UsageError, match=r"belongs to the run in .*/a; set execution.study_name"):
        orchestrator.search(quick_config(budget={"n_trials": 1}, execution=execution), out=tmp_path / "b",
                            progress=False)


def test_an_unreachable_database_is_one_line_naming_the_field_without_the_password(tmp_path):
    url = "postgresql://user:secret@127.0.0.1:1/none"
    with pytest.raises(UsageError, match=r"^execution.storage: cannot open postgresql://user:\*\*\*@127") as err:
        orchestrator.search(quick_config(execution={"storage": url}), out=tmp_path / "run", progress=False)
    assert "secret" not in str(err.value) and "\n" not in str(err.value)
