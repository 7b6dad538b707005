"""``orchestrator spaces [NAME]``: the built-in search spaces, or one space resolved in full."""

from __future__ import annotations

from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("spaces")(spaces)


def spaces(
    name: Optional[str] = typer.Argument(None, help="A space name or YAML path to show in full."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List the built-in search spaces, or show every strategy and range of one space."""
    from orchestrator.cli.console import out_console, print_json
    from orchestrator.params import describe
    from orchestrator.spaces import builtin_spaces

    if name is None:
        found = builtin_spaces()
        if as_json:
            print_json(found)
            return
        for space, desc in found.items():
            out_console.print(f"[bold]{space}[/bold]  {desc}")
        return
    from orchestrator.pluginmanager import get_host
    from orchestrator.spaces import resolve_space

    space = resolve_space(name, get_host().catalogue)
    data = {stage: {s: {p: describe(param) for p, param in params.items()} for s, params in strategies.items()}
            for stage, strategies in space.stages.items()}
    if as_json:
        print_json({"name": space.name, "description": space.description, "stages": data})
        return
    out_console.print(f"[bold]{space.name}[/bold]  {space.description}")
    for stage, strategies in data.items():
        out_console.print(f"  {stage}:")
        for s, params in strategies.items():
            out_console.print(f"    {s}" + ("  " + ", ".join(f"{p} {d}" for p, d in params.items()) if params else ""))
