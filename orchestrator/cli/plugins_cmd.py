"""``orchestrator plugins``: every loaded plugin with its version, hooks and strategies."""

from __future__ import annotations

from dataclasses import asdict

import typer


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)


def plugins(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List plugins: name, distribution and version, hooks implemented, strategies contributed."""
    from rich.table import Table

    from orchestrator.cli.console import out_console, print_json
    from orchestrator.pluginmanager import get_host

    infos = get_host().plugins()
    if as_json:
        print_json([asdict(i) for i in infos])
        return
    table = Table(title=f"{len(infos)} plugins")
    for col in ("plugin", "distribution", "hooks", "provides"):
        table.add_column(col)
    for i in infos:
        provides = [f"{fam}: {', '.join(names)}" for fam, names in i.strategies.items()]
        provides += [f"task: {', '.join(i.tasks)}"] if i.tasks else []
        table.add_row(i.name, f"{i.distribution or '-'} {i.version or ''}".strip(),
                      "\n".join(h.removeprefix("orchestrator_") for h in i.hooks), "\n".join(provides))
    out_console.print(table)
