"""The measuring slot: while a latency is timed, no training step of ours runs on the machine.

Trials that train in parallel would corrupt each other's timings. Three lock files in a folder
of the user's own in the machine's temp folder, shared by every process of every run of the user
on the machine (Ray workers included), make measurement exclusive:

* ``slot``: one measurement at a time;
* ``gate``: a measurement closes it, so no training step starts while it waits or runs;
* ``compute``: every training step holds it shared, so a measurement waits for the steps already
  running to end, then holds it alone.

They are ``flock`` locks: the kernel releases them when their holder dies, so a crashed trial never
leaves the machine paused. A block of compute takes four system calls of bookkeeping (microseconds).
Training steps, the per-epoch validation, importance scoring, export, quantization (calibration
included), accuracy on the exported file and the report's refresh all pause: on a two-core
virtual machine a busy process beside the measured one can slow the reading down.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from pathlib import Path
from typing import IO, Iterator

_handles: dict[tuple[int, str], IO[bytes]] = {}


def lock_dir() -> Path:
    """``$ORCHESTRATOR_LOCK_DIR``, or a folder of this user's in the machine's temp folder."""
    path = Path(os.environ.get("ORCHESTRATOR_LOCK_DIR") or
                Path(tempfile.gettempdir()) / f"compression-orchestrator-{os.getuid()}").absolute()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _handle(name: str) -> IO[bytes]:
    """This process's own open file for a lock (a forked child opens its own)."""
    path = lock_dir() / f"compression-orchestrator-{name}.lock"
    key = (os.getpid(), str(path))
    if key not in _handles:
        _handles[key] = open(path, "a+b")
    return _handles[key]


@contextlib.contextmanager
def _held(name: str, mode: int) -> Iterator[None]:
    fd = _handle(name).fileno()
    fcntl.flock(fd, mode)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def measurement_turn() -> Iterator[None]:
    """This process's turn to measure: waits for other measurements on the machine."""
    with _held("slot", fcntl.LOCK_EX):
        yield


@contextlib.contextmanager
def training_paused() -> Iterator[None]:
    """Waits for running training steps to end and keeps new ones from starting (inside a turn)."""
    with _held("gate", fcntl.LOCK_EX), _held("compute", fcntl.LOCK_EX):
        yield


@contextlib.contextmanager
def measuring_slot() -> Iterator[None]:
    """A measurement turn with training paused, for the whole ``with`` block."""
    with measurement_turn(), training_paused():
        yield


_depth: dict[int, int] = {}
_waited: dict[int, float] = {}


def waited_s() -> float:
    """Seconds this process's compute blocks have waited, so far, while measurements ran."""
    return _waited.get(os.getpid(), 0.0)


@contextlib.contextmanager
def compute_step() -> Iterator[None]:
    """Wrap one block of compute (a training step, an export, a calibration): it waits while a
    measurement runs on the machine. Blocks may nest; only the outermost one takes the lock, so a
    measurement never waits on a block that waits on it."""
    pid = os.getpid()
    if _depth.get(pid, 0):
        _depth[pid] += 1
        try:
            yield
        finally:
            _depth[pid] -= 1
        return
    gate = _handle("gate").fileno()
    start = time.perf_counter()
    fcntl.flock(gate, fcntl.LOCK_SH)  # blocks while a measurement holds the gate
    fcntl.flock(gate, fcntl.LOCK_UN)
    with _held("compute", fcntl.LOCK_SH):
        _waited[pid] = _waited.get(pid, 0.0) + time.perf_counter() - start
        _depth[pid] = 1
        try:
            yield
        finally:
            _depth[pid] = 0
