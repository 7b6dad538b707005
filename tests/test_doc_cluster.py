"""docs/cluster.md as written: a Ray cluster started with the page's `ray start` lines (a head and a
worker, both on this machine), a search that joins it with `--address auto` and one that joins it
through Ray Client, and a study kept in PostgreSQL with `--storage`.

The cluster lives in a temp folder of its own (``RAY_TMPDIR``, ``HOME`` for Ray's token), so
`--address auto` finds it and not the suite's Ray; `--block` is added to `ray start` so that
stopping the two processes stops exactly this cluster. Ports the page names that are taken here
are swapped for free ones."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from helpers import quick_config

PAGE = Path(__file__).resolve().parents[1] / "docs" / "cluster.md"
BIN = Path(sys.executable).parent


def page_lines() -> list[str]:
    """Every command line of the page's bash blocks, comments dropped."""
    code = "\n".join(re.findall(r"```bash\n(.*?)```", PAGE.read_text(), flags=re.S))
    lines = (line.split(" #", 1)[0].strip() for line in code.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def line_starting(words: str, containing: str = "") -> str:
    found = [line for line in page_lines() if words in line and containing in line]
    assert len(found) == 1, f"docs/cluster.md: expected one '{words} ... {containing}' line, found {found}"
    return found[0]


def split(line: str) -> tuple[dict[str, str], list[str]]:
    """A shell line's leading ``VAR=value`` assignments and its command."""
    words = shlex.split(line)
    env = {}
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    return env, words


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_ray(line: str, env: dict[str, str], ports: dict[str, str], log: Path,
              procs: list[subprocess.Popen]) -> None:
    """Run a `ray start` line with ``--block``; it joins ``procs`` before it is waited for, so a
    start that hangs is still stopped by the fixture."""
    for old, new in ports.items():
        line = line.replace(old, new)
    extra, words = split(line.replace("HEAD_IP", "127.0.0.1"))
    assert words[:2] == ["ray", "start"], line
    with log.open("w") as out:
        procs.append(subprocess.Popen([str(BIN / "ray"), *words[1:], "--block"], env={**env, **extra},
                                      stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
    deadline = time.monotonic() + 120
    while "Ray runtime started" not in log.read_text():
        assert procs[-1].poll() is None and time.monotonic() < deadline, \
            f"'{line}' did not start: {log.read_text()[-2000:]}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def cluster():
    """The page's block that starts the cluster, run line by line; the environment it leaves."""
    temp = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))  # short: Ray's socket paths have a length limit
    env = dict(os.environ, RAY_TMPDIR=str(temp), HOME=str(temp), RAY_USAGE_STATS_ENABLED="0", OMP_NUM_THREADS="1")
    for name in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):  # the suite's own Ray
        env.pop(name, None)
    ports = {p: str(free_port()) for p in ("6379", "10001") if taken(int(p))}
    block = next(b for b in re.findall(r"```bash\n(.*?)```", PAGE.read_text(), flags=re.S) if "ray start --head" in b)
    procs = []
    try:
        for line in (x.split(" #", 1)[0].strip() for x in block.splitlines()):
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                env.update(split(line[len("export "):])[0])
            elif line.startswith("ray start"):
                start_ray(line, env, ports, temp / f"ray-{len(procs)}.log", procs)
            else:
                words = shlex.split(line)
                assert words[0] == "ray", f"docs/cluster.md: no way to run '{line}' here"
                proc = subprocess.run([str(BIN / "ray"), *words[1:]], env=env, capture_output=True, text=True,
                                      timeout=120)
                assert proc.returncode == 0, f"'{line}': {proc.stderr[-2000:]}"
        assert len(procs) == 2, "docs/cluster.md: expected a head and a worker"
        yield env, ports
    finally:
        for proc in reversed(procs):  # `ray start --block` stops what it started on SIGTERM
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the CLI and what it started
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def workdir(tmp_path):
    """A folder with the page's `config.yaml`: a small search on digits."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(quick_config(budget={"n_trials": 2})))
    return tmp_path


def run_line(line: str, cwd: Path, env: dict[str, str], ports: dict[str, str] | None = None) -> tuple[str, Path]:
    for old, new in (ports or {}).items():
        line = line.replace(old, new)
    extra, words = split(line.replace("HEAD_IP", "127.0.0.1"))
    assert words[0] == "orchestrator", line
    proc = subprocess.run([str(BIN / "orchestrator"), *words[1:], "--no-progress"], cwd=cwd, env={**env, **extra},
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{line}: {proc.stdout[-1000:]} {proc.stderr[-3000:]}{client_server_logs(env)}"
    out = cwd / words[words.index("--out") + 1]
    trials = [json.loads(t) for t in (out / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 2 and all(t["state"] == "COMPLETE" for t in trials), trials
    return proc.stdout + proc.stderr, out


def client_server_logs(env: dict[str, str]) -> str:
    """The tails of the logs of the servers the head started for Ray Client: what a failure to
    join through it needs to be understood."""
    logs = sorted(Path(env.get("RAY_TMPDIR", "/nonexistent")).glob("ray/session_latest/logs/ray_client_server*"))
    return "".join(f"\n--- {log.name}:\n{log.read_text(errors='replace')[-1500:]}" for log in logs)


def test_a_search_joins_the_cluster_with_address_auto(cluster, workdir):
    env, ports = cluster
    said, _ = run_line(line_starting("orchestrator run", "--address auto"), workdir, env)
    # the head and the worker the page started, and where "auto" found them
    assert re.search(r"on Ray at [\w.-]+:\d+, found by address auto \(2 nodes", " ".join(said.split())), said[-2000:]


def test_a_search_joins_the_cluster_through_ray_client(cluster, workdir):
    env, ports = cluster
    said, _ = run_line(line_starting("orchestrator run", "--address ray://"), workdir, env, ports)
    assert "on Ray at ray://127.0.0.1:" in said and "(2 nodes" in said


def test_a_study_kept_in_postgresql(workdir):
    url = os.environ.get("ORCHESTRATOR_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("ORCHESTRATOR_REQUIRE_POSTGRES"):
            pytest.fail("ORCHESTRATOR_REQUIRE_POSTGRES is set but ORCHESTRATOR_TEST_POSTGRES_URL is not")
        pytest.skip("no PostgreSQL server (.ci/postgres.sh starts one)")
    import optuna

    line = line_starting("orchestrator run", "--storage")
    documented = re.search(r"--storage (\S+)", line).group(1)
    name = Path(re.search(r"--out (\S+)", line).group(1)).name  # the study is named after the run directory
    try:  # left by an earlier session of the suite against the same server
        optuna.delete_study(study_name=name, storage=url)
    except KeyError:
        pass
    env = dict(os.environ, OMP_NUM_THREADS="1")
    _, out = run_line(line.replace(documented, url), workdir, env)
    studies = {s.study_name: s for s in optuna.get_all_study_summaries(storage=url)}
    assert name in studies and studies[name].n_trials >= 2
    assert not (out / "study.log").exists()
