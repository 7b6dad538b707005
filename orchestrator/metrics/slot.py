"""The measuring slot: one latency measurement at a time on a machine.

Trials that train in parallel would corrupt each other's timings if they were timed at once. The
slot is an exclusive ``flock`` on a file in the machine's temp folder, shared by every process of
every run on the machine (Ray workers included). The kernel releases it when its holder dies, so a
crashed trial never leaves the slot taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path
from typing import Iterator


def slot_path() -> Path:
    return Path(os.environ.get("ORCHESTRATOR_MEASURE_LOCK") or Path(tempfile.gettempdir()) /
                "compression-orchestrator-measure.lock")


@contextlib.contextmanager
def measuring_slot() -> Iterator[None]:
    """Hold the machine's measuring slot for the ``with`` block (waits for it)."""
    path = slot_path()
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
