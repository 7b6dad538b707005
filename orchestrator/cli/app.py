"""The ``orchestrator`` command. Heavy libraries load inside commands, so ``--help`` is instant."""

from __future__ import annotations

import sys

import typer

from orchestrator.cli import apply_cmd, plugins_cmd, report_cmd, run_cmd, schema_cmd, show_cmd, spaces_cmd, validate_cmd

app = typer.Typer(name="orchestrator", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Search pruning, distillation and quantization recipes for a PyTorch model under "
                       "real size, latency and accuracy constraints; get back a Pareto front.")
for module in (run_cmd, show_cmd, apply_cmd, report_cmd, validate_cmd, schema_cmd, plugins_cmd, spaces_cmd):
    module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: usage errors are one red ``ERROR:`` line and exit code 2, never a traceback."""
    from orchestrator.errors import OrchestratorError

    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="orchestrator", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except OrchestratorError as exc:  # usage errors exit 2; an export that does not check out, 1
        from orchestrator.cli.console import error

        error(str(exc))
        return getattr(exc, "exit_code", 1)
    return 0


def run() -> None:
    sys.exit(main())
