"""Every benchmark command the docs show runs, in its smoke form: the command as written plus
``--smoke`` (tiny budgets; goals are not judged) and ``--results`` (a temp folder, so the
recorded results stay as they are). The full runs time things and take minutes to an hour; they
are not tests. The head-to-head and tabular benchmarks have modules of their own, which look
closer at what their smoke runs write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import benchmark_commands, run_benchmark_smoke

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = benchmark_commands()
OWN_MODULES = {"benchmarks/versus_anchor.py": "test_benchmarks_anchor.py",
               "benchmarks/tabular.py": "test_benchmarks_tabular.py"}


def test_every_benchmark_script_is_documented_with_its_command():
    scripts = {f"benchmarks/{p.name}" for p in (ROOT / "benchmarks").glob("*.py")
               if 'if __name__ == "__main__"' in p.read_text()}  # not the modules they import
    assert scripts and scripts == set(COMMANDS)
    for script, module in OWN_MODULES.items():
        assert (ROOT / "tests" / module).is_file(), f"{script} is smoke-tested in {module}"


@pytest.mark.parametrize("script", sorted(set(COMMANDS) - set(OWN_MODULES)))
def test_the_documented_command_runs_in_smoke_form(script, tmp_path):
    procs = run_benchmark_smoke(script, tmp_path)
    assert all("SMOKE" in p.stdout for p in procs)
    records = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert records and all(r["smoke"] is True and script in r["command"] for r in records)
    assert all(r["machine"]["cores"] >= 1 and r["versions"]["torch"] for r in records)
    (record,) = records
    SMOKE_CHECKS[script](record)


def _driver_cost(record: dict) -> None:
    """6 trials: a memory reading each, and the fixed file timed twice, while they ran."""
    assert len(record["rss_mb_by_trial"]) == record["summary"]["trials"] == 6
    assert all(mb > 0 for mb in record["rss_mb_by_trial"])
    assert len(record["summary"]["latency_medians_ms"]) == 2 and min(record["summary"]["latency_medians_ms"]) > 0


def _ray_scaling(record: dict) -> None:
    """The same 2 recipes with 1 and with 2 workers, their latencies compared."""
    assert [(r["workers"], r["trials"]) for r in record["runs"]] == [(1, 2), (2, 2)]
    assert record["summary"]["recipes_compared"] >= 1 and record["summary"]["overhead_ms_per_trial"] > 0
    for run in record["runs"]:  # the time inside the recipes, split: files timed, waits, compute
        split = run["work_split_s"]
        assert split["latency"] > 0 and split["waited"] >= 0 and split["compute"] > 0


def _quickstart_floor(record: dict) -> None:
    assert record["n_trials"] == 2 and record["pareto"]
    assert record["best"]["smaller"] > 0 and record["best"]["faster"] > 0


def _stopping_replay(record: dict) -> None:
    """The recorded search without early stopping, replayed: the defaults first, then the grid of
    settings; no setting stops more than there were trials, nor saves more epochs than trained."""
    rows = record["rows"]
    assert rows[0]["setting"] == "defaults" and len(rows) > 1
    assert record["source"].endswith("versus_anchor_mnist1d_no-early-stopping.json") and record["floor"] > 0.9
    for row in rows:
        assert 0 <= row["stopped_on_front"] <= row["stopped_feasible"] <= row["stopped"] <= 100
        assert 0 < row["epochs_saved"] < row["epochs_trained"]


def _slow_spells(record: dict) -> None:
    """The same file timed each way, every reading recorded with its canary and its seconds."""
    assert set(record["summary"]) == {"canary off", "canary on"}
    for name, readings in record["readings"].items():
        assert len(readings) == record["readings_each_way"] == 2
        assert all(r["median_ms"] > 0 and r["readings"] >= 1 and r["seconds"] > 0 for r in readings)
    assert all(r["slowdown"] == 1.0 for r in record["readings"]["canary off"])


SMOKE_CHECKS = {"benchmarks/driver_cost.py": _driver_cost, "benchmarks/ray_scaling.py": _ray_scaling,
                "benchmarks/quickstart_floor.py": _quickstart_floor,
                "benchmarks/stopping_replay.py": _stopping_replay, "benchmarks/slow_spells.py": _slow_spells}
