"""Renders docs/hooks.md from orchestrator/hookspecs.py, so the hook reference cannot drift.

    python -m orchestrator.hooks_reference > docs/hooks.md

Each hook's section is its signature and docstring (reST ``:param:`` fields become a list); the
prose around them lives here.
"""

from __future__ import annotations

import inspect
import re

from orchestrator import hookspecs

INTRO = """# Hooks

The contract between the orchestrator and its plugins. This page is generated from
`orchestrator/hookspecs.py` by `python -m orchestrator.hooks_reference`; a test keeps it in sync.
To write a plugin, start with the [plugin tutorial](plugins.md).

A plugin is a module (or object) whose functions are decorated with `orchestrator.hookimpl`,
exposed through the `orchestrator` entry-point group:

```toml
[project.entry-points.orchestrator]
my_strategies = "my_package.plugin"
```

A hook implementation may take any subset of its hook's arguments. At start-up, before anything
is trained, the orchestrator refuses in one line, naming the plugin:

- an implementation that asks for an argument its hook does not have, or of a hook that does
  not exist;
- a plugin that fails to import (with its distribution and the import error);
- a plugin made for other orchestrator versions: its module's `ORCHESTRATOR_REQUIRES` (a version
  specifier such as `">=0.1,<1"`) or its package's own requirement on `compression-orchestrator`
  is checked against the running version;
- a strategy or task name another plugin already registered (both plugins are named).

`ORCHESTRATOR_BLOCK_PLUGINS=name1,name2` keeps named plugins from loading, so a run can go on
without a broken one (the built-ins are named `builtin.<family>.<module>`, as
`orchestrator plugins` shows). A strategy that raises during a trial fails that trial only; the
trial's error names the strategy, its plugin and the line that raised.

No hook is `firstresult` or `historic`: every implementation is called.
"""

PHASES = (
    ("Catalogue hooks", "orchestrator_register_", """Called once when the plugin manager starts, each with a
`register` callback. Registering a name another plugin already registered is an error that names
both plugins."""),
    ("Lifecycle hooks", "", """Called in the driver process as a run proceeds. They observe; they must not
mutate their arguments. Return values are ignored; an implementation that raises is reported as a
warning and the run goes on."""),
)

CONTRACTS = """## Strategy contracts

Each strategy has a `name`, a `space` (parameter name → `Float`, `Int` or `Choice` from
`orchestrator.params`), `defaults` (the sensible setting enqueued first; `defaults_for(model)`
adapts it to the baseline's layout, and `space_for(model, space)` fixes a parameter that can make
no difference on it to one value, so no trial is spent on it), an optional `strength`
(the numeric parameter that sets how hard it works, e.g. a pruner's `ratio` or a distiller's
`epochs`, along which the enqueued chain is tried a step lighter and stronger, then towards the
edge of the constraints) and an
`applicable(model, ctx)` check that returns None or the reason it cannot run. Every method
receives a fresh copy of the baseline, never the baseline itself. `orchestrator.testing` holds
the contract test suites a plugin's tests subclass (see the [plugin tutorial](plugins.md)).

| family | method | returns |
|---|---|---|
| `Scorer` | `score(model, ctx, params)` | parameter name → non-negative importance tensor of the parameter's shape |
| `Pruner` | `prune(model, scores, ctx, params)` | the pruned model; `finalize(model, ctx, params)` makes masks permanent after training; `needs_scores` says whether a scorer runs first, `trains` whether `prune` trains the model (then it is never run outside a trial) |
| `Distiller` | `train(model, ctx, params)` | the trained model; reports `ctx.report_epoch(epoch, val_metric)` and stops when it returns True |
| `Quantizer` | `quantize(model, fp32_path, out_path, ctx, params)` | the path of the file to ship; `runtimes` says which runtimes it serves, `min_bytes_per_weight` a proven lower bound on the bytes per weight of its files (for the size pre-check); optional `prepare_training` / `end_training` around the train stage (quantization-aware training) and `torch_equivalent(model, params)` for exports to torch formats |

`orchestrator.distillation.TrainingDistiller` implements the training loop; a distiller built on
it only defines `loss(student_logits, inputs, targets, ctx, params)`.
"""


def _markdown(doc: str) -> str:
    """A hookspec docstring as Markdown: ``:param x: text`` fields become a list."""
    doc = inspect.cleandoc(doc)
    doc = re.sub(r":class:`~?([\w.]+)`", lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", doc)
    doc = doc.replace("``", "`")
    lines, out = doc.splitlines(), []
    for line in lines:
        field = re.match(r":param (\w+): ?(.*)", line)
        if field:
            out.append(f"- `{field.group(1)}`: {field.group(2)}")
        elif line.startswith("    ") and out and out[-1].startswith("- `"):
            out[-1] += " " + line.strip()
        else:
            out.append(line)
    return "\n".join(out).strip()


def hooks() -> list[tuple[str, str, str]]:
    """(name, arguments, docstring) of every hook, in the order hookspecs.py declares them."""
    found = [(fn.__code__.co_firstlineno, name, fn) for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
             if name.startswith("orchestrator_")]
    return [(name, ", ".join(inspect.signature(fn).parameters), fn.__doc__ or "") for _, name, fn in sorted(found)]


def render() -> str:
    parts = [INTRO]
    every = hooks()
    for title, prefix, intro in PHASES:
        parts.append(f"## {title}\n\n{intro}\n")
        for name, args, doc in every:
            if name.startswith("orchestrator_register_") == (prefix == "orchestrator_register_"):
                parts.append(f"### `{name}({args})`\n\n{_markdown(doc)}\n")
    parts.append(CONTRACTS)
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
