"""``orchestrator validate CONFIG``: every check a run makes before it starts, without running."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)


def validate(config: Path = typer.Argument(..., help="Run config (YAML).")) -> None:
    """Check a run config, its task and its search space against the installed plugins."""
    from orchestrator.cli.console import out_console
    from orchestrator.config import load_config
    from orchestrator.pluginmanager import get_host
    from orchestrator.spaces import resolve_space
    from orchestrator.tasks import resolve_task

    cfg = load_config(config)
    host = get_host()
    task = resolve_task(cfg.task, host.catalogue)
    space = resolve_space(cfg.search_space, host.catalogue, runtime=cfg.latency.runtime)
    stages = "; ".join(f"{stage}: {', '.join(names)}" for stage, names in
                       ((s, space.strategies(s)) for s in space.stages))
    out_console.print(f"OK {config}: task '{task.name}', search space '{space.name}' ({stages}), "
                      f"{cfg.budget.n_trials} trials, objectives "
                      f"{', '.join(f'{o.direction} {o.metric}' for o in cfg.objectives)}")
    for skipped in space.skipped:
        out_console.print(f"note: {skipped} is left out: the config's runtime is '{cfg.latency.runtime}'")
