"""Finding the task a config names: a built-in by name, or a user's factory by import path."""

from __future__ import annotations

import importlib

from orchestrator.config import TaskConfig
from orchestrator.errors import ConfigError, did_you_mean
from orchestrator.pluginmanager import Catalogue
from orchestrator.task import Task


def resolve_task(cfg: TaskConfig, catalogue: Catalogue) -> Task:
    if ":" in cfg.name:
        module_name, _, attr = cfg.name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except ImportError as exc:
            raise ConfigError(f"field 'task.name': cannot import '{module_name}': {exc}") from None
        except AttributeError:
            raise ConfigError(f"field 'task.name': module '{module_name}' has no '{attr}'") from None
    elif cfg.name in catalogue.tasks:
        factory = catalogue.tasks[cfg.name]
    else:
        raise ConfigError(f"field 'task.name': unknown task '{cfg.name}'{did_you_mean(cfg.name, list(catalogue.tasks))}"
                          " (or give a user task as package.module:factory)")
    try:
        task = factory(**cfg.params)
    except TypeError as exc:
        raise ConfigError(f"field 'task.params': {exc}") from None
    if not isinstance(task, Task):
        raise ConfigError(f"field 'task.name': '{cfg.name}' returned {type(task).__name__}, not an orchestrator Task")
    return task
