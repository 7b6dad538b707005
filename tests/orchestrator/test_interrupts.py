"""Ctrl-C and SIGTERM never land inside a write to the study or the run directory."""

from __future__ import annotations

import signal

import optuna
import pytest

from optuna.storages.journal._storage import JournalOperation
from optuna.trial import TrialState

import orchestrator
from helpers import quick_config
from orchestrator.interrupts import deferred, stoppable


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_outside_a_write_interrupts_at_once(sig):
    reached = False
    with stoppable(), pytest.raises(KeyboardInterrupt, match=sig.name):
        signal.raise_signal(sig)
        reached = True
    assert not reached


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_inside_a_write_is_held_until_the_write_is_done(sig):
    steps = []
    with stoppable(), pytest.raises(KeyboardInterrupt, match=sig.name):
        with deferred():
            steps.append("written")
            with deferred():  # nested writes: held until the outermost is done
                signal.raise_signal(sig)
                steps.append("nested")
            steps.append("after nested")
        steps.append("never")
    assert steps == ["written", "nested", "after nested"]


def test_a_second_signal_while_one_is_held_interrupts_at_once():
    """A write that hangs (an unreachable database) can be left with a second Ctrl-C."""
    steps = []
    with stoppable(), pytest.raises(KeyboardInterrupt):
        with deferred():
            signal.raise_signal(signal.SIGINT)
            steps.append("held")
            signal.raise_signal(signal.SIGINT)
            steps.append("never")
    assert steps == ["held"]


def test_a_write_that_fails_keeps_its_own_error_and_drops_the_held_signal():
    with stoppable():
        with pytest.raises(OSError, match="disk full"):
            with deferred():
                signal.raise_signal(signal.SIGTERM)
                raise OSError("disk full")
        with deferred():  # nothing left held
            pass


def test_without_the_handlers_nothing_is_held():
    """A search not driven from the main thread installs no handlers; neither does deferred()."""
    # Python's own handler, whatever this process inherited (a shell's background job ignores SIGINT)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    steps = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with deferred():
                signal.raise_signal(signal.SIGINT)
                steps.append("never")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert steps == []


def test_the_previous_handlers_come_back():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with stoppable():
        pass
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_ctrl_c_while_optuna_writes_its_journal_leaves_a_consistent_study(tmp_path, monkeypatch):
    """The signal lands inside the journal's file lock, telling trial 1: the tell completes, the run
    stops as after any Ctrl-C, every trial is finished in the study and written to trials.jsonl, and
    the run resumes to exactly its budget."""
    backend = optuna.storages.journal.JournalFileBackend
    append = backend.append_logs
    armed = {"done": False}

    def append_then_interrupt(self, logs):
        if not armed["done"] and any(log["op_code"] == JournalOperation.SET_TRIAL_STATE_VALUES
                                     and log["trial_id"] == 1 and TrialState(log["state"]).is_finished()
                                     for log in logs):
            armed["done"] = True
            signal.raise_signal(signal.SIGINT)  # handled at the next bytecode: inside the lock
        return append(self, logs)

    monkeypatch.setattr(backend, "append_logs", append_then_interrupt)
    run = tmp_path / "run"
    config = quick_config(budget={"n_trials": 4}, execution={"executor": "local"})
    first = orchestrator.search(config, out=run, progress=False)
    assert armed["done"] and first.interrupted
    study = optuna.load_study(study_name="orchestrator", storage=optuna.storages.JournalStorage(
        backend(str(run / "study.log"))))
    started = [t for t in study.trials if t.state != TrialState.WAITING]  # queued recipes wait their turn
    assert all(t.state.is_finished() for t in started)
    assert study.trials[1].state == TrialState.COMPLETE  # the interrupted tell went through
    assert {t.number for t in started} == {t.number for t in first.trials}

    monkeypatch.setattr(backend, "append_logs", append)
    again = orchestrator.search(config, out=run, progress=False)
    assert not again.interrupted
    assert sum(not t.interrupted for t in again.trials) == 4
