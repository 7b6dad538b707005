"""Helpers the tests import (fixtures live in conftest.py)."""

from __future__ import annotations


def quick_config(**overrides) -> dict:
    """A run config dict for a fast search on digits."""
    config = {"task": {"name": "digits", "params": {"width": 8}}, "search_space": "quick",
              "budget": {"n_trials": 4}, "constraints": {"accuracy_drop": {"max": 5.0}},
              "latency": {"batch_size": 64, "repeats": 5, "warmup": 1, "sessions": 2, "warmup_s": 0.05}}
    config.update(overrides)
    return config


class RecordingPlugin:
    """Records every lifecycle hook call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    from orchestrator import hookimpl as _hookimpl

    @_hookimpl
    def orchestrator_run_start(self, config, run_dir):
        self.calls.append(("run_start", run_dir))

    @_hookimpl
    def orchestrator_trial_start(self, number, recipe):
        self.calls.append(("trial_start", number))

    @_hookimpl
    def orchestrator_trial_end(self, result):
        self.calls.append(("trial_end", result.number))

    @_hookimpl
    def orchestrator_run_end(self, config, run_dir, pareto):
        self.calls.append(("run_end", len(pareto)))


def make_blob_task(n_features: int = 6, hidden: int = 32):
    """A user task named by import path (``helpers:make_blob_task``): an MLP on Gaussian blobs."""
    import torch
    from torch import nn

    from orchestrator import Task, TaskData, TrainSettings

    class BlobTask(Task):
        name = "blobs"
        baseline_training = TrainSettings(epochs=10, lr=1e-2, batch_size=64)

        def build_model(self):
            return nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 3))

        def load_data(self, seed):
            g = torch.Generator().manual_seed(7)
            centers = torch.randn(3, n_features, generator=g) * 3
            y = torch.randint(0, 3, (900,), generator=g)
            x = centers[y] + torch.randn(900, n_features, generator=g)
            return TaskData(train=(x[:600], y[:600]), val=(x[600:750], y[600:750]), test=(x[750:], y[750:]))

    return BlobTask(n_features=n_features, hidden=hidden)



#: trial number -> the fault the ``fault`` distiller plants (recipe seeds are trial numbers at seed 0)
FAULTS = ("ok", "raise", "exit", "segfault", "hang", "nan")
#: seeds of the trials the ``planted`` distiller sabotages (it trains them on shuffled labels)
HOPELESS = {3}


def _distillers():
    from orchestrator.distillation import TrainingDistiller
    from orchestrator.strategies import Distiller

    class FaultDistiller(Distiller):
        """Misbehaves as FAULTS says for the trial's seed: raises, exits, segfaults, hangs, or NaNs."""

        name = "fault"

        def train(self, model, ctx, params):
            import ctypes
            import os
            import time

            import torch

            mode = FAULTS[ctx.seed % len(FAULTS)]
            if mode == "raise":
                raise RuntimeError("planted failure")
            if mode == "exit":
                os._exit(3)
            if mode == "segfault":
                ctypes.string_at(0)
            if mode == "hang":
                time.sleep(600)
            if mode == "nan":
                with torch.no_grad():
                    for p in model.parameters():
                        p.fill_(float("nan"))
            return model

    class PlantedDistiller(TrainingDistiller):
        """Fine-tunes; the trials in HOPELESS learn shuffled labels, so their accuracy collapses."""

        name = "planted"

        def loss(self, logits, inputs, targets, ctx, params):
            import torch

            if ctx.seed in HOPELESS:
                targets = targets[torch.randperm(len(targets))]
            return ctx.task.loss(logits, targets)

    return FaultDistiller, PlantedDistiller


class FaultPlugin:
    """A plugin registering the fault-injection distillers."""

    from orchestrator import hookimpl as _hookimpl

    @_hookimpl
    def orchestrator_register_distillers(self, register):
        for cls in _distillers():
            register(cls())


#: markup a report must print as text, never render
HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>&amp;\"'"


def _mixed_distiller():
    from orchestrator.errors import TrialStopped
    from orchestrator.params import Choice
    from orchestrator.strategies import Distiller

    class MixedDistiller(Distiller):
        """Gives every kind of trial by its seed: 0 fine, 1 raises, 2 wrecks accuracy, 3 stopped early.

        Its one parameter's only choice is HOSTILE, so every recipe's description carries markup.
        """

        name = "mixed"
        space = {"note": Choice([HOSTILE])}
        defaults = {"note": HOSTILE}

        def train(self, model, ctx, params):
            import torch

            mode = ctx.seed % 4
            ctx.log(f"mixed: mode {mode} {HOSTILE}")
            if mode == 1:
                raise RuntimeError(HOSTILE)
            if mode == 2:
                with torch.no_grad():
                    for p in model.parameters():
                        p.mul_(-1.0)
            if mode == 3:
                ctx.report_epoch(1, 0.5)
                ctx.report_epoch(2, 0.4)
                raise TrialStopped(f"early-stopped at epoch 2: {HOSTILE}")
            return model

    return MixedDistiller


class MixedPlugin:
    """Registers the ``mixed`` distiller: complete, infeasible, failed and stopped trials in one run."""

    from orchestrator import hookimpl as _hookimpl

    @_hookimpl
    def orchestrator_register_distillers(self, register):
        register(_mixed_distiller()())


def benchmark_commands() -> dict[str, list[str]]:
    """script -> the command lines that run it, in order, as docs/benchmarks.md shows them (lines
    of benchmarks/README.md for a script the page does not show)."""
    import re
    import shlex
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    found: dict[str, list[str]] = {}
    for page in (root / "docs" / "benchmarks.md", root / "benchmarks" / "README.md"):
        lines: dict[str, list[str]] = {}
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
            for line in block.splitlines():
                line = line.split(" #", 1)[0].strip()
                if line.startswith(".venv/bin/python benchmarks/"):
                    lines.setdefault(shlex.split(line)[1], []).append(line)
        for script, commands in lines.items():
            found.setdefault(script, commands)
    return found


def run_benchmark_smoke(script: str, results) -> list:
    """Every documented command of ``script``, in order, in its smoke form: as written, plus
    ``--smoke`` (tiny budgets; goals not judged) and ``--results`` (so recorded results stay)."""
    import os
    import shlex
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, OMP_NUM_THREADS="1")  # with the session's isolated baseline cache
    done = []
    for line in benchmark_commands()[script]:
        argv = [sys.executable, *shlex.split(line)[1:], "--smoke", "--results", str(results)]
        proc = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{line} --smoke: {proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        done.append(proc)
    return done
