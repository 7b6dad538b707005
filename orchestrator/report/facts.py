"""The facts a report states about where a run ran: library versions and the machine."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
from pathlib import Path

LIBRARIES = ("compression-orchestrator", "torch", "optuna", "ray", "onnxruntime", "torch-pruning")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    """The CPU's marketing name, from /proc/cpuinfo on Linux (platform.processor() elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def environment() -> dict[str, object]:
    """Versions and machine of the process that drives the run (recorded in pareto.json)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "versions": {"python": platform.python_version(), **{d: _version(d) for d in LIBRARIES}},
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count() or 0, "usable_cores": usable or 0,
                    "platform": platform.platform(terse=True), "host": socket.gethostname()},
    }
