"""Shared terminal output helpers for the commands."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)


def error(message: str) -> None:
    err_console.print(f"[bold red]ERROR:[/bold red] {message}", soft_wrap=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
