"""The files of a run directory; every write is atomic."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from pathlib import Path
from typing import Iterator

from orchestrator.atomic import FILE_MODE, atomic_write_json, atomic_write_text
from orchestrator.errors import UsageError
from orchestrator.results import TrialResult


class RunDir:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    config = property(lambda self: self.root / "config.yaml")
    study_log = property(lambda self: self.root / "study.log")
    trials_jsonl = property(lambda self: self.root / "trials.jsonl")
    pareto_json = property(lambda self: self.root / "pareto.json")
    report_md = property(lambda self: self.root / "report.md")
    report_html = property(lambda self: self.root / "report.html")
    #: the PNG plots report.md shows
    plots = property(lambda self: self.root / "plots")
    trials_csv = property(lambda self: self.root / "trials.csv")
    pareto_csv = property(lambda self: self.root / "pareto.csv")
    baseline_json = property(lambda self: self.root / "baseline.json")
    artifacts = property(lambda self: self.root / "artifacts")

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run directory for this driver; a second driver gets a clear error.

        An exclusive ``flock`` on ``DIR/.lock``: the kernel drops it when the driver exits or is
        killed, so a crashed run never leaves its directory locked.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / ".lock"
        handle = open(path, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise UsageError(f"{self.root} is in use by another orchestrator run (pid {holder}); wait for it to "
                             "finish, or choose another --out") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            handle.close()

    def trial_dir(self, number: int) -> Path:
        return self.artifacts / f"trial-{number}"

    def read_trials(self) -> list[TrialResult]:
        """The recorded trials in trial-number order. While a run goes on, the file holds them in the
        order they finished; a line a killed driver left torn (only ever the last) is skipped: the
        study holds that trial's result, and the next session writes it again."""
        if not self.trials_jsonl.is_file():
            return []
        by_number: dict[int, TrialResult] = {}
        lines = self.trials_jsonl.read_text().splitlines()
        for i, line in enumerate(lines):
            if not line:
                continue
            try:
                result = TrialResult.model_validate_json(line)
            except ValueError:
                if i == len(lines) - 1:
                    continue
                raise
            by_number[result.number] = result
        return sorted(by_number.values(), key=lambda r: r.number)

    def write_trials(self, results: list[TrialResult]) -> None:
        """The whole file anew: one line per trial, in trial-number order (they finish in any order)."""
        ordered = sorted(results, key=lambda r: r.number)
        atomic_write_text(self.trials_jsonl, "".join(r.model_dump_json() + "\n" for r in ordered))

    def append_trial(self, result: TrialResult) -> None:
        """One finished trial, added as a line (and flushed to disk) instead of rewriting the file,
        so recording a trial costs the same at trial 5 and trial 5,000."""
        data = (result.model_dump_json() + "\n").encode("utf-8")
        fd = os.open(self.trials_jsonl, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        try:
            os.write(fd, data)  # one call: a reader sees no other writer's bytes inside the line
            os.fsync(fd)
        finally:
            os.close(fd)

    def keep_artifacts(self, keep: list[TrialResult], results: list[TrialResult], recipes_yaml: dict[int, str],
                       keep_all: bool) -> None:
        """Give kept trials their recipe.yaml and metrics.json; remove the other trials' files."""
        kept = {r.number for r in keep}
        for r in results:
            folder = self.trial_dir(r.number)
            if r.number in kept:
                atomic_write_text(folder / "recipe.yaml", recipes_yaml[r.number])
                atomic_write_json(folder / "metrics.json", r.metrics)
            elif not keep_all:
                shutil.rmtree(folder, ignore_errors=True)
                r.artifact = None

    def relative(self, path: str | Path) -> str:
        try:
            return str(Path(path).resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)
