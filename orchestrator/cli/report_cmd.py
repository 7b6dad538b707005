"""``orchestrator report DIR``: write a run directory's reports again from its files."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    importance: bool = typer.Option(True, "--importance/--no-importance",
                                    help="Compute parameter importance from the run's study (a few seconds)."),
) -> None:
    """Write report.html, report.md (with its PNG plots), pareto.json and the CSV tables of a run.

    A run writes them itself, at the end and while it runs; this rewrites them, for a run whose
    driver was killed, or after an upgrade of the orchestrator.
    """
    from orchestrator.cli.console import err_console, out_console
    from orchestrator.report.view import RunView
    from orchestrator.report.write import write_reports
    from orchestrator.rundir import RunDir

    rd = RunDir(run_dir)
    RunView.from_dir(rd.root)  # not a run directory: say so before taking its lock
    with rd.lock():  # a running search writes these files itself
        view = RunView.from_dir(rd.root)
        if view.in_progress:  # its driver stopped without finishing (the lock is free)
            view.in_progress, view.interrupted = False, True
        if importance:
            view.importance = _importance(rd, view, lambda msg: err_console.print(f"[dim]{msg}[/dim]"))
        write_reports(rd, view)
    out_console.print(f"wrote {rd.report_html} and {rd.report_md}", soft_wrap=True)


def _importance(rd, view, log):  # type: ignore[no-untyped-def]
    import optuna

    from orchestrator.errors import UsageError
    from orchestrator.report.importance import param_importance
    from orchestrator.study.storage import make_storage, study_name

    try:
        study = optuna.load_study(study_name=study_name(view.config.execution, rd),
                                  storage=make_storage(view.config.execution, rd))
    except (UsageError, KeyError) as exc:
        log(f"parameter importance left out: the study cannot be opened ({exc})")
        return view.importance
    return param_importance(study, view.config.objectives, log)
