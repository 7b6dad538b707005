"""``orchestrator show DIR`` and ``orchestrator export DIR --trial N --to PATH [--format F]``: look at a
finished run's front, and take one of its trials away."""

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
    fmt: Optional[str] = typer.Option(None, "--format", help="onnx (model.onnx), torchscript (model.pt) or pt "
                                      "(model.pt2, a torch.export program). Default: the format the trial ships."),
    float_model: bool = typer.Option(False, "--float", help="Export the float model before quantization instead "
                                     "(for an int8 trial in a torch format); metrics.json then holds its own "
                                     "accuracy and size, measured again and labelled so."),
) -> None:
    """Export a trial's model with its recipe.yaml and metrics.json, after checking that the written file
    gives the trial's recorded validation accuracy.

    A quantized trial exports to another format only when that format reproduces the quantized
    model (fp16 does; int8 ONNX Runtime models are refused unless --float).
    """
    from orchestrator.api import SearchResult
    from orchestrator.cli.console import out_console

    result = SearchResult.open(run_dir)
    path = result.export(trial, to, fmt, float_model=float_model,
                         log=lambda line: out_console.print(line, soft_wrap=True))
    out_console.print(f"exported trial {trial}: {path} (with recipe.yaml and metrics.json)", soft_wrap=True)
