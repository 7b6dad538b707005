"""Hook specifications: the contract between the orchestrator and its plugins.

Every hook is prefixed ``orchestrator_``; implement it in a module or object decorated with
``orchestrator.hookimpl`` and expose that module through the ``orchestrator`` entry-point group.
Hooks are grouped by phase:

* **Catalogue** hooks are called once at start-up, each with a ``register`` callback. The host
  owns naming: registering a name another plugin already registered is an error naming both.
* **Lifecycle** hooks are called as a run proceeds; they observe and must not mutate their
  arguments. Their return value is ignored.

None of these hooks is ``firstresult`` or ``historic``: every implementation is called, and only
for events after the plugin was registered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.config import RunConfig
    from orchestrator.results import TrialResult
    from orchestrator.strategies import Distiller, Pruner, Quantizer, Scorer

PROJECT = "orchestrator"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- Catalogue --------------------------------------------------------------------------------

@hookspec
def orchestrator_register_scorers(register: "Callable[[Scorer], None]") -> None:
    """Register importance scorers.

    :param register: call ``register(scorer)`` once per :class:`~orchestrator.strategies.Scorer`
        instance this plugin provides.

    Called once when the plugin manager starts. Return None.
    """


@hookspec
def orchestrator_register_pruners(register: "Callable[[Pruner], None]") -> None:
    """Register pruners.

    :param register: call ``register(pruner)`` once per :class:`~orchestrator.strategies.Pruner`.

    Called once when the plugin manager starts. Return None.
    """


@hookspec
def orchestrator_register_distillers(register: "Callable[[Distiller], None]") -> None:
    """Register distillers (the train stage, plain fine-tuning included).

    :param register: call ``register(distiller)`` once per
        :class:`~orchestrator.strategies.Distiller`.

    Called once when the plugin manager starts. Return None.
    """


@hookspec
def orchestrator_register_quantizers(register: "Callable[[Quantizer], None]") -> None:
    """Register quantizers.

    :param register: call ``register(quantizer)`` once per
        :class:`~orchestrator.strategies.Quantizer`.

    Called once when the plugin manager starts. Return None.
    """


@hookspec
def orchestrator_register_tasks(register: "Callable[[str, Callable[..., Any]], None]") -> None:
    """Register tasks by name (the config's `task.name` picks one).

    :param register: call ``register(name, factory)``; ``factory(**params)`` returns a
        :class:`~orchestrator.task.Task`. ``params`` come from the config's ``task.params``.

    Called once when the plugin manager starts. Return None.
    """


# --- Lifecycle --------------------------------------------------------------------------------

@hookspec
def orchestrator_run_start(config: "RunConfig", run_dir: "Path") -> None:
    """A run starts: the config is validated and the run directory exists.

    :param config: the resolved run config (every default filled in).
    :param run_dir: the run directory.

    Called in the driver process before the baseline is prepared. Return None.
    """


@hookspec
def orchestrator_trial_start(number: int, recipe: dict) -> None:
    """The driver dispatches a trial.

    :param number: the Optuna trial number.
    :param recipe: the trial's recipe as plain data (``Recipe.model_dump()``).

    Called in the driver process. Return None.
    """


@hookspec
def orchestrator_trial_end(result: "TrialResult") -> None:
    """A trial finished (complete, pruned or failed) and was told to the study.

    :param result: the trial's result: state, recipe, metrics, curve, error.

    Called in the driver process. Return None.
    """


@hookspec
def orchestrator_run_end(config: "RunConfig", run_dir: "Path", pareto: "list[TrialResult]") -> None:
    """A run finished and its files are written.

    :param config: the resolved run config.
    :param run_dir: the run directory.
    :param pareto: the feasible Pareto-optimal trials.

    Called in the driver process, also after an interrupted run. Return None.
    """
