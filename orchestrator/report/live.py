"""The report of a running search: the RunView of this session plus those before it, rewritten
every ``report.refresh_s`` seconds as trials finish, and once more at the end."""

from __future__ import annotations

import ctypes
import gc
import json
import time
from typing import Any, Callable

from orchestrator.config import RunConfig
from orchestrator.metrics.slot import compute_step
from orchestrator.report.facts import environment
from orchestrator.report.view import RunView
from orchestrator.report.write import write_reports
from orchestrator.results import TrialResult
from orchestrator.rundir import RunDir
from orchestrator.study.pareto import pareto_front


class LiveReport:
    def __init__(self, config: RunConfig, rd: RunDir, log: Callable[[str], None]) -> None:
        self.config, self.rd, self.log = config, rd, log
        # read once at the start: the history and wall time of the sessions before this one
        self.before = json.loads(rd.pareto_json.read_text()) if rd.pareto_json.is_file() else {}
        self.started = time.time()
        self.environment = environment()
        self._last = time.monotonic()

    def view(self, driver: Any, results: list[TrialResult], baseline: dict[str, float], *, in_progress: bool,
             interrupted: bool = False) -> RunView:
        front = pareto_front(results, self.config.objectives)
        return RunView(config=self.config, baseline=baseline, results=list(results), front=front,
                       ideal=driver.ideal, reference=driver.ref, hypervolume=driver.hypervolume(front),
                       history=self.before.get("hypervolume_history", [])
                       + [list(p) for p in driver.outcome.hypervolume_history],
                       wall_time_s=self.before.get("wall_time_s", 0.0) + time.time() - self.started,
                       environment=self.environment, interrupted=interrupted, in_progress=in_progress)

    def refresh(self, driver: Any, results: list[TrialResult], baseline: dict[str, float]) -> None:
        """After a trial: rewrite the reports if ``refresh_s`` passed since the last time."""
        every = self.config.report.refresh_s
        if every is None or time.monotonic() - self._last < every:
            return
        with compute_step():  # drawing figures beside a latency being timed would slow it down
            write_reports(self.rd, self.view(driver, results, baseline, in_progress=True), log=self.log)
        _release_memory()
        self._last = time.monotonic()


def _release_memory() -> None:
    """Drawing a report builds large, short-lived objects (figures, their JSON, the HTML), some in
    reference cycles. Collected and handed back to the operating system after each refresh, they
    no longer raise the driver's resident memory a little more at every refresh of a long run."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed memory otherwise
    except (OSError, AttributeError):  # not glibc: nothing to hand back this way
        pass
