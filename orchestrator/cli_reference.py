"""Renders docs/cli.md from the ``orchestrator`` command itself, so the CLI reference cannot drift.

    python -m orchestrator.cli_reference > docs/cli.md
"""

from __future__ import annotations

import inspect

INTRO = """# Command-line reference

Every command of `orchestrator`, with its arguments and options. This page is generated from the
commands themselves by `python -m orchestrator.cli_reference`; a test keeps it in sync.
`orchestrator COMMAND --help` prints the same.

Exit codes: 0 success; 1 an export or replay that does not reproduce the recorded metrics; 2 bad
input (one `ERROR:` line naming the field, plugin or file at fault; nothing is written); 130 a run
stopped by Ctrl-C or SIGTERM (resumable).
"""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\\\|")


def _usage(name: str, command) -> str:  # type: ignore[no-untyped-def]
    parts = [f"orchestrator {name}"]
    for p in command.params:
        if p.param_type_name == "argument":
            parts.append(p.name.upper() if p.required else f"[{p.name.upper()}]")
    if any(p.param_type_name == "option" for p in command.params):
        parts.append("[OPTIONS]")
    return " ".join(parts)


def _default(p) -> str:  # type: ignore[no-untyped-def]
    if p.required:
        return "required"
    if getattr(p, "is_flag", False) and p.secondary_opts:
        return p.opts[0] if p.default else p.secondary_opts[0]
    if p.default in (None, False) or p.default == ():
        return ""
    return f"`{p.default}`"


def _metavar(p, ctx) -> str:  # type: ignore[no-untyped-def]
    try:
        text = str(p.display_type(ctx))
    except Exception:  # noqa: BLE001 - a parameter type without a name
        text = "VALUE"
    return text.strip("[]<>").upper() or "VALUE"


def render() -> str:
    import click
    import typer

    from orchestrator.cli.app import app

    group = typer.main.get_command(app)
    parts = [INTRO]
    for name, command in group.commands.items():
        ctx = click.Context(command, info_name=name)
        doc = inspect.cleandoc(command.help or "")
        parts.append(f"## `orchestrator {name}`\n\n```\n{_usage(name, command)}\n```\n\n{doc}\n")
        rows = []
        for p in command.params:
            if p.param_type_name == "argument":
                names = f"`{p.name.upper()}`"
            else:
                names = ", ".join(f"`{o}`" for o in p.opts + p.secondary_opts)
                if not getattr(p, "is_flag", False):
                    names += f" *{_metavar(p, ctx)}*"
            rows.append(f"| {names} | {_cell(getattr(p, 'help', '') or '')} | {_default(p)} |")
        if rows:
            parts.append("| argument / option | meaning | default |\n|---|---|---|\n" + "\n".join(rows) + "\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
