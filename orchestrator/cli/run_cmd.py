"""``orchestrator run CONFIG --out DIR``: search, print the Pareto front, write the run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    config: Path = typer.Argument(..., help="Run config (YAML)."),
    out: Path = typer.Option(Path("runs/latest"), "--out", "-o", help="Run directory; re-running it continues the study."),
    trials: Optional[int] = typer.Option(None, "--trials", "-n", min=1, help="Override budget.n_trials."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override the seed."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
) -> None:
    """Search compression recipes for a task under the config's constraints."""
    from orchestrator.api import search
    from orchestrator.cli.console import out_console
    from orchestrator.cli.tables import pareto_table
    from orchestrator.config import load_config

    cfg = load_config(config)
    updates = {}
    if trials is not None:
        updates["budget"] = cfg.budget.model_copy(update={"n_trials": trials})
    if seed is not None:
        updates["seed"] = seed
    cfg = cfg.model_copy(update=updates)
    result = search(cfg, out=out, progress=progress)
    out_console.print(pareto_table(result))
    out_console.print(f"run directory: {result.run_dir}  (report.md, pareto.json, artifacts/)")
    if result.interrupted:
        out_console.print(f"interrupted: run the same command again to continue the study in {result.run_dir}")
        raise typer.Exit(130)
