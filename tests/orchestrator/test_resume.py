"""A run survives its driver: SIGKILL and resume, Ctrl-C, and a second driver on the same directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import orchestrator
from helpers import quick_config

CLI = str(Path(sys.executable).with_name("orchestrator"))


def slow_config(tmp_path: Path, n_trials: int) -> Path:
    """Trials of a few seconds each, so a signal lands while some run."""
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"stages": {"prune": {"none": {}}, "train": {"none": {"epochs": [12]}},
                                                "quantize": {"none": {}}}}))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(quick_config(search_space=str(space), budget={"n_trials": n_trials},
                                                execution={"workers": 2})))
    return path


def read_trials(run: Path) -> list[dict]:
    """The finished trials, read as the project reads them while the driver appends (the last
    line may be half written)."""
    from orchestrator.rundir import RunDir

    return [t.model_dump(mode="json") for t in RunDir(run).read_trials()]


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "timed out waiting for the run"
        time.sleep(0.2)


def study_trials(run: Path):
    import optuna

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(run / "study.log")))
    return optuna.load_study(study_name="orchestrator", storage=storage).trials


def test_a_killed_driver_resumes_and_finishes_exactly_the_budget(tmp_path):
    run = tmp_path / "run"
    driver = subprocess.Popen([CLI, "run", str(slow_config(tmp_path, 6)), "--out", str(run), "--no-progress"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: sum(t["state"] == "COMPLETE" for t in read_trials(run)) >= 2, driver)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before_kill = {t["number"]: t for t in read_trials(run) if t["state"] == "COMPLETE"}

    proc = subprocess.run([CLI, "resume", str(run), "--no-progress"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = read_trials(run)
    counted = [t for t in final if not t["interrupted"]]
    assert len(counted) == 6 and all(t["state"] == "COMPLETE" for t in counted)
    for number, trial in before_kill.items():  # nothing completed is lost or redone (artifacts: Pareto only)
        kept = next(t for t in final if t["number"] == number)
        assert {**kept, "artifact": None} == {**trial, "artifact": None}
    orphans = [t for t in final if t["interrupted"]]
    assert all(t["state"] == "FAIL" and "driver stopped" in t["error"] for t in orphans)
    trials = study_trials(run)
    assert sum(t.state.is_finished() and not t.user_attrs.get("interrupted") for t in trials) == 6
    assert not [t for t in trials if not t.state.is_finished()]  # nothing left RUNNING or WAITING
    # every orphan's recipe was re-queued and ran again
    rerun = [t.params for t in trials if not t.user_attrs.get("interrupted")]
    assert all(o.params in rerun for o in trials if o.user_attrs.get("interrupted"))


def test_ctrl_c_stops_cleanly_reports_and_says_how_to_resume(tmp_path):
    run = tmp_path / "run"
    driver = subprocess.Popen([CLI, "run", str(slow_config(tmp_path, 6)), "--out", str(run), "--no-progress"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(read_trials(run)) >= 1, driver)
    driver.send_signal(signal.SIGINT)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err[-3000:]
    assert f"orchestrator resume {run}" in out
    pareto = json.loads((run / "pareto.json").read_text())
    assert pareto["interrupted"] is True
    trials = read_trials(run)
    cancelled = [t for t in trials if t["interrupted"]]
    assert cancelled and all(t["state"] == "FAIL" and "cancelled" in t["error"] for t in cancelled)
    assert not any((run / "artifacts" / f"trial-{t['number']}").exists() for t in cancelled)

    proc = subprocess.run([CLI, "resume", str(run), "--no-progress"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sum(not t["interrupted"] for t in read_trials(run)) == 6


def test_sigterm_stops_like_ctrl_c_with_the_report_written(tmp_path):
    """A scheduler's or `timeout`'s SIGTERM: no abort, no hang; what finished is kept and reported."""
    run = tmp_path / "run"
    driver = subprocess.Popen([CLI, "run", str(slow_config(tmp_path, 6)), "--out", str(run), "--no-progress"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(read_trials(run)) >= 1, driver)
    driver.send_signal(signal.SIGTERM)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err[-3000:]
    assert f"orchestrator resume {run}" in out
    assert json.loads((run / "pareto.json").read_text())["interrupted"] is True
    assert "The run was interrupted" in (run / "report.html").read_text()


def test_a_second_driver_on_the_same_directory_is_refused(tmp_path):
    from orchestrator.errors import UsageError
    from orchestrator.rundir import RunDir

    with RunDir(tmp_path / "run").lock():
        with pytest.raises(UsageError, match=rf"in use by another orchestrator run \(pid {os.getpid()}\)"):
            orchestrator.search(quick_config(), out=tmp_path / "run", progress=False)
    # released: the same directory works now
    result = orchestrator.search(quick_config(budget={"n_trials": 1}), out=tmp_path / "run", progress=False)
    assert len(result.trials) == 1


def test_resume_of_a_directory_that_is_not_a_run_is_one_line_exit_2(tmp_path):
    proc = subprocess.run([CLI, "resume", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "not a run directory" in proc.stderr


def test_a_trial_told_to_optuna_but_not_yet_written_is_recovered_on_resume(tmp_path):
    """A driver killed between telling Optuna and writing trials.jsonl loses nothing."""
    run = tmp_path / "run"
    config = quick_config(budget={"n_trials": 3}, execution={"executor": "local"})
    first = orchestrator.search(config, out=run, progress=False)
    lines = (run / "trials.jsonl").read_text().splitlines()
    (run / "trials.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # as if killed before the last write
    again = orchestrator.search(config, out=run, progress=False)
    assert [t.number for t in again.trials] == [0, 1, 2]
    lost, recovered = first.trials[-1], again.trials[-1]
    assert recovered.metrics == lost.metrics and recovered.recipe == lost.recipe and recovered.state == "COMPLETE"


def test_a_line_torn_by_a_kill_mid_write_is_written_again_on_resume(tmp_path):
    """trials.jsonl grows a line per trial; a kill inside that write leaves half a line, which
    reading skips and the next session writes again from the study."""
    run = tmp_path / "run"
    config = quick_config(budget={"n_trials": 3}, execution={"executor": "local"})
    first = orchestrator.search(config, out=run, progress=False)
    text = (run / "trials.jsonl").read_text()
    (run / "trials.jsonl").write_text(text[:len(text) - len(text.splitlines()[-1]) // 2 - 1])  # half the last line
    from orchestrator.rundir import RunDir

    assert [t.number for t in RunDir(run).read_trials()] == [0, 1]
    again = orchestrator.search(config, out=run, progress=False)
    assert [t.number for t in again.trials] == [0, 1, 2]
    assert again.trials[-1].metrics == first.trials[-1].metrics
    assert [json.loads(line)["number"] for line in (run / "trials.jsonl").read_text().splitlines()] == [0, 1, 2]


def test_trials_are_read_in_number_order_whatever_order_they_finished(tmp_path):
    from orchestrator.results import TrialResult
    from orchestrator.rundir import RunDir

    rd = RunDir(tmp_path)
    for number in (2, 0, 1):
        rd.append_trial(TrialResult(number=number, state="FAIL", recipe={}, error="x"))
    assert [json.loads(line)["number"] for line in rd.trials_jsonl.read_text().splitlines()] == [2, 0, 1]
    assert [t.number for t in rd.read_trials()] == [0, 1, 2]
