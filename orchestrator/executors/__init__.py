"""Where trials run. The driver talks to an :class:`Executor`; it never runs a recipe itself."""

from orchestrator.executors.base import Executor, SharedState, TrialJob
from orchestrator.executors.local import LocalExecutor

__all__ = ["Executor", "LocalExecutor", "SharedState", "TrialJob"]
