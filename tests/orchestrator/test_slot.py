"""The measuring slot: a latency measurement has the machine to itself, and a dead holder frees it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from orchestrator.metrics.slot import compute_step, measuring_slot, waited_s

HOLD = """
import os, sys, time
from pathlib import Path
from orchestrator.metrics.slot import measuring_slot, compute_step
kind, flag, seconds = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
with (measuring_slot() if kind == "measure" else compute_step()):
    flag.write_text(str(time.time()))
    time.sleep(seconds)
    if kind == "measure" and seconds == 0:
        os._exit(9)  # dies holding the slot
print(time.time())
"""


@pytest.fixture
def lock_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_LOCK_DIR", str(tmp_path))
    return tmp_path


def hold(kind: str, flag, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, kind, str(flag), str(seconds)], stdout=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert proc.poll() is None or kind == "measure", "the holder exited early"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return proc


@pytest.mark.parametrize("held, then", [("measure", compute_step), ("compute", measuring_slot)],
                         ids=["a training step waits for a measurement", "a measurement waits for a training step"])
def test_each_side_waits_for_the_other(lock_dir, held, then):
    proc = hold(held, lock_dir / "in", 1.0)
    with then():
        entered = time.time()
    released = float(proc.communicate()[0])
    assert entered >= released - 0.05


def test_the_time_compute_waits_for_a_measurement_is_counted(lock_dir):
    before = waited_s()
    with compute_step():  # nothing measured: no wait to speak of
        pass
    assert waited_s() - before < 0.1
    before = waited_s()
    proc = hold("measure", lock_dir / "in", 1.0)
    with compute_step():
        pass
    proc.communicate()
    assert 0.5 < waited_s() - before < 30


def test_a_holder_that_dies_frees_the_slot(lock_dir):
    proc = hold("measure", lock_dir / "in", 0)
    proc.wait()
    assert proc.returncode == 9
    start = time.monotonic()
    with measuring_slot():
        pass
    with compute_step():
        pass
    assert time.monotonic() - start < 1.0


NESTED = """
import sys, time
from pathlib import Path
from orchestrator.metrics.slot import compute_step
flag = Path(sys.argv[1])
with compute_step():  # an export, say
    flag.write_text("")
    time.sleep(1.0)  # meanwhile a measurement closes the gate and waits for this block
    with compute_step():  # a strategy's own training step inside it
        pass
print(time.time())
"""


def test_a_nested_block_does_not_wait_on_the_measurement_that_waits_on_it(lock_dir):
    flag = lock_dir / "in"
    block = subprocess.Popen([sys.executable, "-c", NESTED, str(flag)], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert block.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    with measuring_slot():
        entered = time.time()
    released = float(block.communicate(timeout=30)[0])  # a deadlock would never get here
    assert entered >= released - 0.05
