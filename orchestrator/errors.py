"""Errors a user can act on. Each renders as one line naming the field or plugin at fault."""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base class of every error the orchestrator raises on purpose."""


class UsageError(OrchestratorError):
    """Bad input from the user: a config, a search space, a CLI argument. Exit code 2."""

    exit_code = 2


class ConfigError(UsageError):
    """A run config or search space that does not validate."""


class PluginError(UsageError):
    """A plugin that cannot be loaded, clashes with another one, or breaks a hook contract."""


class ExportError(OrchestratorError):
    """An exported model could not be written, or does not give the accuracy the run recorded.
    Exit code 1: nothing was handed over."""

    exit_code = 1


class InapplicableError(OrchestratorError):
    """A strategy declared itself inapplicable to the model at hand; the trial is skipped."""


class TrialStopped(OrchestratorError):
    """The trial is told PRUNED: early stopping judged it hopeless, or a pre-check showed it
    cannot meet a size or parameter constraint. The message is the reason, recorded in trials.jsonl."""


def did_you_mean(name: str, known: list[str] | tuple[str, ...]) -> str:
    """A short hint listing the known alternatives, closest first."""
    import difflib

    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{hint}; known: {', '.join(sorted(known)) or 'none'}"
