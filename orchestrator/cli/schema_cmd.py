"""``orchestrator schema``: the run config's JSON Schema, for editor completion and validation."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("schema")(schema)


def schema() -> None:
    """Print the JSON Schema of run configs."""
    from orchestrator.cli.console import print_json
    from orchestrator.config import RunConfig

    print_json(RunConfig.model_json_schema())
