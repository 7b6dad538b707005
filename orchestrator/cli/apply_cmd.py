"""``orchestrator apply RECIPE.yaml --out DIR``: replay a recipe on a task's baseline and write the model."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("apply")(apply)


def apply(
    recipe: Path = typer.Argument(..., help="A recipe.yaml, as written beside a kept or exported model."),
    out: Path = typer.Option(..., "--out", help="Folder to write the model file, recipe.yaml and metrics.json into."),
    task: Optional[str] = typer.Option(None, "--task", help="A run config YAML (its task, seed, runtime, latency "
                                       "settings and cpus_per_trial are used), a run directory, or a task name "
                                       "with default settings. Default: the run directory the recipe lies in."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Torch threads. Default: the run's "
                                          "cpus_per_trial, as its trials ran; another count may not reproduce them."),
) -> None:
    """Replay a recipe on the task's baseline and write the model it makes, with its metrics.

    If a metrics.json lies beside the recipe, says whether the replay reproduces its accuracy
    (validation and test) and file size; exit code 1 when it does not.
    """
    from orchestrator.cli.console import err_console, out_console
    from orchestrator.replay import replay

    done = replay(recipe, out, task, threads=threads, log=lambda msg: err_console.print(f"[dim]{msg}[/dim]",
                                                                                         soft_wrap=True))
    m = done.metrics
    out_console.print(f"accuracy {m['accuracy']:.4f}  test {m['test_accuracy']:.4f}  drop {m.get('accuracy_drop', 0):+.2f}"
                      f"  size {m['size_mb']:.6g} MB  gzip {m['gzip_mb']:.6g} MB  latency {m['latency_ms']:.3g} ms"
                      f"  params {m['params']:,.0f}", soft_wrap=True)
    out_console.print(f"wrote {done.path} (with recipe.yaml and metrics.json)", soft_wrap=True)
    if done.reproduced is None:
        return
    parts = [f"{name} {a:.6g}{' = ' if a == b else ' != '}{b:.6g}" for name, (a, b) in done.compared.items()]
    verdict = "reproduced" if done.reproduced else "NOT reproduced"
    same = {True: f"; {done.path.name} is byte-identical to {done.same_file_as}",
            False: f"; {done.path.name} differs from {done.same_file_as} in its bytes", None: ""}[done.identical]
    out_console.print(f"against {done.recorded_from}: {verdict} ({', '.join(parts)}; latency is this machine's)"
                      f"{same}", soft_wrap=True)
    if not done.reproduced:
        raise typer.Exit(1)
