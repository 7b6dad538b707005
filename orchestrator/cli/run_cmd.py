"""``orchestrator run CONFIG --out DIR`` and ``orchestrator resume DIR``: search, print the Pareto
front, write the run directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

if TYPE_CHECKING:
    from orchestrator.config import RunConfig


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("resume")(resume)


_EXECUTOR = typer.Option(None, "--executor", help="ray (default: trials in parallel) or local (one at a time, "
                         "in this process, for debugging).")
_WORKERS = typer.Option(None, "--workers", "-w", min=1, help="Trials at once (default: the CPUs Ray sees / "
                        "CPUs per trial).")
_CPUS = typer.Option(None, "--cpus-per-trial", min=0.01, help="CPUs Ray reserves for each trial.")
_ADDRESS = typer.Option(None, "--address", help="Join a Ray cluster: 'auto' or ray://host:10001 (default: a "
                        "private local Ray).")
_STORAGE = typer.Option(None, "--storage", help="Optuna storage URL, e.g. postgresql://user@host/db (default: "
                        "the journal file study.log in the run directory).")
_TIMEOUT = typer.Option(None, "--trial-timeout", min=1, help="Seconds a trial may run before it is cancelled "
                        "and recorded as FAIL.")
_TRIALS = typer.Option(None, "--trials", "-n", min=1, help="Override budget.n_trials.")
_PROGRESS = typer.Option(True, "--progress/--no-progress", help="Show the progress bar.")


def run(
    config: Path = typer.Argument(..., help="Run config (YAML)."),
    out: Path = typer.Option(Path("runs/latest"), "--out", "-o", help="Run directory; re-running it continues the study."),
    trials: Optional[int] = _TRIALS,
    seed: Optional[int] = typer.Option(None, "--seed", help="Override the seed."),
    executor: Optional[str] = _EXECUTOR, workers: Optional[int] = _WORKERS, cpus_per_trial: Optional[float] = _CPUS,
    address: Optional[str] = _ADDRESS, storage: Optional[str] = _STORAGE, trial_timeout: Optional[float] = _TIMEOUT,
    progress: bool = _PROGRESS,
) -> None:
    """Search compression recipes for a task under the config's constraints."""
    from orchestrator.config import load_config

    execution = dict(executor=executor, workers=workers, cpus_per_trial=cpus_per_trial, address=address,
                     storage=storage, trial_timeout=trial_timeout)
    _search(with_overrides(load_config(config), trials=trials, seed=seed, execution=execution), out, progress)


def resume(
    run_dir: Path = typer.Argument(..., help="A run directory to continue (its config.yaml is reused)."),
    trials: Optional[int] = _TRIALS,
    executor: Optional[str] = _EXECUTOR, workers: Optional[int] = _WORKERS, cpus_per_trial: Optional[float] = _CPUS,
    address: Optional[str] = _ADDRESS, trial_timeout: Optional[float] = _TIMEOUT,
    progress: bool = _PROGRESS,
) -> None:
    """Continue a stopped or finished run: trials a killed run left running are re-queued."""
    from orchestrator.config import load_config
    from orchestrator.errors import UsageError

    if not (run_dir / "config.yaml").is_file():
        raise UsageError(f"{run_dir}: not a run directory (no config.yaml)")
    execution = dict(executor=executor, workers=workers, cpus_per_trial=cpus_per_trial, address=address,
                     trial_timeout=trial_timeout)
    _search(with_overrides(load_config(run_dir / "config.yaml"), trials=trials, execution=execution), run_dir,
            progress)


def with_overrides(cfg: "RunConfig", *, trials: int | None = None, seed: int | None = None,
                   execution: dict[str, Any] | None = None) -> "RunConfig":
    """The config with the command line's overrides, validated like the YAML."""
    from orchestrator.config import load_config

    data = cfg.model_dump(mode="json")
    if trials is not None:
        data["budget"]["n_trials"] = trials
    if seed is not None:
        data["seed"] = seed
    data["execution"].update({k: v for k, v in (execution or {}).items() if v is not None})
    return load_config(data)


def _search(cfg: "RunConfig", out: Path, progress: bool) -> None:
    from orchestrator.api import search
    from orchestrator.cli.console import out_console
    from orchestrator.cli.tables import pareto_table

    result = search(cfg, out=out, progress=progress)
    out_console.print(pareto_table(result))
    out_console.print(f"report: {result.run_dir / 'report.html'}  (open it in a browser; report.md, pareto.json, "
                      "artifacts/ beside it)", soft_wrap=True)
    if result.pareto:
        out_console.print(f"take a trial away: orchestrator export {result.run_dir} --trial "
                          f"{result.pareto[0].number} --to deploy/", soft_wrap=True)
    if result.interrupted:
        out_console.print(f"interrupted: the report covers the trials that finished; continue with "
                          f"`orchestrator resume {result.run_dir}`", soft_wrap=True)
        raise typer.Exit(130)
