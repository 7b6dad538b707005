"""``orchestrator show DIR`` and ``orchestrator export DIR --trial N --to PATH``: look at a finished
run's front, and take one of its trials away."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("show")(show)
    app.command("export")(export)


def show(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print pareto.json's front, machine-readable."),
) -> None:
    """Print a run's Pareto front as a table (the same one `run` prints at the end)."""
    import json

    from orchestrator.api import SearchResult
    from orchestrator.cli.console import out_console, print_json
    from orchestrator.cli.tables import pareto_table

    result = SearchResult.open(run_dir)
    if as_json:
        print_json(json.loads((result.run_dir / "pareto.json").read_text())["pareto"])
        return
    out_console.print(pareto_table(result))
    if result.interrupted:
        out_console.print(f"the run was interrupted: `orchestrator resume {result.run_dir}` continues it",
                          soft_wrap=True)


def export(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    trial: int = typer.Option(..., "--trial", "-t", help="The trial to export (a Pareto trial, or any trial "
                              "of a run with keep_all_artifacts)."),
    to: Path = typer.Option(..., "--to", help="Folder to write the model file, recipe.yaml and metrics.json into."),
    fmt: Optional[str] = typer.Option(None, "--format", help="The model file's format; the trial's shipped "
                                      "format is the only one so far (onnx, or pt2 for the torch runtime)."),
) -> None:
    """Copy a trial's shipped model with its recipe.yaml and metrics.json."""
    from orchestrator.api import SearchResult
    from orchestrator.cli.console import out_console
    from orchestrator.errors import UsageError

    result = SearchResult.open(run_dir)
    shipped = result.artifact(trial).suffix.lstrip(".")
    if fmt is not None and fmt != shipped:
        raise UsageError(f"--format {fmt}: trial {trial} ships a .{shipped} file; converting it to another "
                         "format is not supported yet")
    path = result.export(trial, to)
    out_console.print(f"exported trial {trial}: {path} (with recipe.yaml and metrics.json)", soft_wrap=True)
