"""The Ray executor, for real: parallel trials, planted faults, timeouts, a 2-node cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

import orchestrator
from helpers import FAULTS, FaultPlugin, quick_config

ROOT = Path(__file__).resolve().parents[2]


def space_file(tmp_path: Path, train: dict) -> str:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"stages": {"prune": {"none": {}}, "train": train, "quantize": {"none": {}}}}))
    return str(path)


def test_two_workers_run_trials_in_parallel(tmp_path):
    result = orchestrator.search(quick_config(budget={"n_trials": 4}, execution={"workers": 2}),
                                 out=tmp_path / "run", progress=False)
    trials = result.trials
    assert [t.state for t in trials] == ["COMPLETE"] * 4
    overlapping = [(a.number, b.number) for a in trials for b in trials
                   if a.number < b.number and a.started_at < b.finished_at and b.started_at < a.finished_at]
    assert overlapping, [(t.number, t.started_at, t.finished_at) for t in trials]
    assert len({t.pid for t in trials}) >= 2 and os.getpid() not in {t.pid for t in trials}  # workers, not the driver
    assert all(t.node for t in trials)
    # where the time went: every trial's file was timed, and no wait outlasted the trial
    assert all(0 < t.timings["latency_s"] < t.duration_s and 0 <= t.timings["waited_s"] < t.duration_s
               for t in trials), [t.timings for t in trials]


def test_every_planted_fault_is_a_fail_with_its_reason_and_the_run_finishes(tmp_path):
    from orchestrator.pluginmanager import PluginHost

    host = PluginHost(extra_plugins=[("faults", FaultPlugin())])
    # one recipe, run once per fault (the fault is picked by trial number): repeats must run
    config = quick_config(search_space=space_file(tmp_path, {"fault": {}}), budget={"n_trials": len(FAULTS)},
                          sampler={"skip_repeats": False}, execution={"workers": 2, "trial_timeout": 20})
    result = orchestrator.search(config, out=tmp_path / "run", progress=False, host=host)
    by_fault = {FAULTS[t.number]: t for t in result.trials}
    assert set(by_fault) == set(FAULTS)
    assert by_fault["ok"].state == "COMPLETE"
    expected = {"raise": "RuntimeError: planted failure", "exit": "worker process died",
                "segfault": "worker process died", "hang": "timed out", "nan": "non-finite outputs"}
    for fault, reason in expected.items():
        trial = by_fault[fault]
        assert trial.state == "FAIL" and reason in trial.error, (fault, trial.error)
    lines = [json.loads(line) for line in (tmp_path / "run" / "trials.jsonl").read_text().splitlines()]
    assert [line["state"] for line in lines].count("FAIL") == 5 and all(line["error"] for line in lines[1:])
    assert json.loads((tmp_path / "run" / "pareto.json").read_text())["n_trials"]["FAIL"] == 5


def test_trials_spread_over_the_nodes_of_a_two_node_cluster(tmp_path):
    """A cluster of two Ray nodes on this machine (each 1 CPU), joined by address, in a fresh process."""
    script = textwrap.dedent(f"""
        import json, logging, sys
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]
        import ray
        from ray.cluster_utils import Cluster
        from helpers import quick_config
        import orchestrator

        cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 1}})
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        try:
            config = quick_config(budget={{"n_trials": 6}}, execution={{"address": cluster.address}})
            result = orchestrator.search(config, out={str(tmp_path / 'run')!r}, progress=False)
            ray.init(address=cluster.address)  # the run left the cluster; look at it again
            print(json.dumps({{"nodes": [n["NodeID"] for n in ray.nodes() if n["Alive"]],
                               "trials": [[t.state, t.node] for t in result.trials]}}))
        finally:
            ray.shutdown()
            cluster.shutdown()
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(report["nodes"]) == 2
    assert all(state == "COMPLETE" for state, _ in report["trials"])
    assert {node for _, node in report["trials"]} == set(report["nodes"])


def test_a_run_on_a_cluster_it_joined_leaves_no_actor_behind(tmp_path, monkeypatch):
    """The session's Ray outlives the run (as a user's cluster or a notebook's Ray does): the run's
    board and latency meters end with it, instead of living as long as the process."""
    import ray

    import orchestrator.api

    made = []
    make = orchestrator.api.make_executor
    monkeypatch.setattr(orchestrator.api, "make_executor", lambda config: made.append(make(config)) or made[-1])
    orchestrator.search(quick_config(budget={"n_trials": 1}), out=tmp_path / "run", progress=False)
    actors = [made[0].board.handle, *made[0].meter.handles.values()]
    assert ray.is_initialized() and len(actors) >= 2  # the session's Ray still runs
    for actor in actors:  # ray.kill is asynchronous: a call made just after it may still be answered
        assert not answers_within(actor, 30), actor


def answers_within(actor, seconds: float) -> bool:
    """Whether the actor still answers calls ``seconds`` from now."""
    import time

    import ray

    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            ray.get(actor.__ray_ready__.remote(), timeout=left)
        except ray.exceptions.RayActorError:
            return False
        except ray.exceptions.GetTimeoutError:  # alive, busy or hung: not ended
            return True
        time.sleep(0.5)
    return True
