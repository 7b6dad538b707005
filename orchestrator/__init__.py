"""AutoML compression orchestrator for PyTorch.

Light at import time: heavy modules (torch, optuna, ray) load on first use of what needs them.
"""

from orchestrator._version import __version__
from orchestrator.hookspecs import hookimpl

_LAZY = {
    "search": "orchestrator.api",
    "SearchResult": "orchestrator.api",
    "RunConfig": "orchestrator.config",
    "load_config": "orchestrator.config",
    "Recipe": "orchestrator.recipe",
    "Task": "orchestrator.task",
    "TaskData": "orchestrator.task",
    "TrainSettings": "orchestrator.task",
}

__all__ = ["__version__", "hookimpl", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
