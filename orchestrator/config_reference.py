"""Renders docs/configuration.md from the RunConfig schema, so the reference cannot drift.

    python -m orchestrator.config_reference > docs/configuration.md
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from orchestrator.config import RunConfig

INTRO = """# Configuration reference

A run config is YAML, validated by pydantic before anything runs; unknown keys are errors.
`orchestrator schema` prints the same as JSON Schema for editors. This page is generated from the
schema by `python -m orchestrator.config_reference`; a test keeps it in sync.

Shorthands: `task: mnist1d` means `task: {name: mnist1d}`; an objective may be a bare metric name,
which takes the metric's natural direction. Metrics: `accuracy`, `accuracy_drop`, `params`, `macs`,
`size_mb`, `gzip_mb`, `latency_ms`, `latency_iqr_ms`, `latency_slowdown` (see
[concepts](concepts.md)).
"""


def _type(field: Any) -> str:
    text = str(field.annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")
    text = text.replace("orchestrator.config.", "")
    if text.startswith("Optional[") and text.endswith("]"):
        text = text[len("Optional["):-1] + " | None"
    return text.replace(" | ", " or ")


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "see below"
        if isinstance(value, list) and value and isinstance(value[0], BaseModel):
            value = [v.model_dump() for v in value]
        return f"`{json.dumps(value)}`"
    if field.is_required():
        return "required"
    return f"`{json.dumps(field.default)}`"


def _section(title: str, model: type[BaseModel], nested: list[tuple[str, type[BaseModel]]]) -> list[str]:
    lines = [f"## `{title}`", "", (model.__doc__ or "").strip(), "", "| key | type | default | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        lines.append(f"| `{name}` | `{_type(field)}` | {_default(field)} | {field.description or ''} |")
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            nested.append((f"{title}.{name}" if title != "run config" else name, sub))
    return lines + [""]


def render() -> str:
    from orchestrator.config import Bound, Objective

    nested: list[tuple[str, type[BaseModel]]] = []
    lines = [INTRO, *_section("run config", RunConfig, nested)]
    extra = [("objectives[]", Objective), ("constraints.<metric>", Bound)]
    done = set()
    while nested or extra:
        title, model = (nested or extra).pop(0)
        if title in done:
            continue
        done.add(title)
        lines += _section(title, model, nested)
    return "\n".join(line for line in lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
