"""What every benchmark script shares: its command-line options for a smoke run and for where the
record goes, and the record's header (command, commit, date, machine and versions)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--smoke", action="store_true",
                        help="tiny budgets, to check the harness runs (CI); goals are not judged")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help=f"folder the JSON record is written to (default {RESULTS.relative_to(ROOT)})")


def header(name: str) -> dict:
    """The record's first fields: which benchmark, the exact command, at which commit, when, and on what."""
    from orchestrator.report.facts import environment

    return {"benchmark": name, "command": "python " + shlex.join([_script(), *sys.argv[1:]]),
            "commit": _commit(), "date": time.strftime("%Y-%m-%d"), **environment()}


def _commit() -> str | None:
    """The checkout's commit, with ``+changes`` when tracked files other than the records in
    ``benchmarks/results/`` differ from it (a run of several benchmarks rewrites those as it goes);
    None outside git."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    try:
        head = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)benchmarks/results")
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if changed else "")


def write_record(record: dict, results: Path, filename: str) -> Path:
    """Write the record; a smoke run's never replaces a recorded result (it goes to a temp folder)."""
    if record.get("smoke") and results.resolve() == RESULTS.resolve():
        results = Path(tempfile.mkdtemp(prefix=f"{record['benchmark']}-smoke-"))
    results.mkdir(parents=True, exist_ok=True)
    dest = results / filename
    dest.write_text(json.dumps(record, indent=2) + "\n")
    return dest


def verdict(passed: bool, smoke: bool) -> tuple[str, int]:
    """The last word and the exit code: a smoke run checks the harness, not the goals."""
    if smoke:
        return "SMOKE (goals not judged)", 0
    return ("PASS", 0) if passed else ("FAIL", 1)


def _script() -> str:
    path = Path(sys.argv[0]).resolve()
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)
