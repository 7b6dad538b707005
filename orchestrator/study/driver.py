"""The driver: the only owner and writer of the Optuna study. It asks for trials, turns them into
recipes, hands them to an executor, and tells Optuna the measured values and constraints."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import optuna
from optuna.trial import TrialState

from orchestrator.config import RunConfig
from orchestrator.executors.base import Executor, TrialJob
from orchestrator.pluginmanager import PluginHost
from orchestrator.results import TrialResult
from orchestrator.rundir import RunDir
from orchestrator.study.pareto import constraint_violations, hypervolume, pareto_front, reference
from orchestrator.study.samplers import make_sampler
from orchestrator.study.sampling import default_recipes, recipe_params, sample_recipe
from orchestrator.spaces import SearchSpace

STUDY_NAME = "orchestrator"
_STATES = {"COMPLETE": TrialState.COMPLETE, "PRUNED": TrialState.PRUNED, "FAIL": TrialState.FAIL}


@dataclass
class SearchOutcome:
    results: list[TrialResult]
    hypervolume_history: list[tuple[int, float]] = field(default_factory=list)
    interrupted: bool = False


def open_study(config: RunConfig, run_dir: RunDir) -> optuna.Study:
    optuna.logging.set_verbosity(logging.WARNING)
    backend = optuna.storages.journal.JournalFileBackend(str(run_dir.study_log))
    study = optuna.create_study(storage=optuna.storages.JournalStorage(backend), study_name=STUDY_NAME,
                                sampler=make_sampler(config.sampler, config.seed),
                                directions=[o.direction for o in config.objectives], load_if_exists=True)
    if study.trials:  # a resumed session continues the sampler's random stream instead of replaying it
        study.sampler = make_sampler(config.sampler, config.seed + len(study.trials))
    return study


class Driver:
    def __init__(self, config: RunConfig, run_dir: RunDir, space: SearchSpace, host: PluginHost,
                 executor: Executor, baseline: dict[str, float],
                 on_result: Callable[[list[TrialResult], int], None] = lambda results, done: None) -> None:
        self.config, self.run_dir, self.space, self.host = config, run_dir, space, host
        self.executor, self.baseline, self.on_result = executor, baseline, on_result
        self.ideal, self.ref = reference(baseline, config.objectives)

    def run(self) -> SearchOutcome:
        study = open_study(self.config, self.run_dir)
        results = self.run_dir.read_trials()
        self._fail_orphans(study)
        if not study.trials:
            self._enqueue_defaults(study)
        outcome = SearchOutcome(results=results)
        in_flight: dict[int, optuna.Trial] = {}
        deadline = time.monotonic() + self.config.budget.timeout if self.config.budget.timeout else math.inf
        try:
            while True:
                done = sum(1 for t in study.get_trials(deepcopy=False) if t.state.is_finished())
                while (len(in_flight) < self.executor.capacity and done + len(in_flight) < self.config.budget.n_trials
                       and time.monotonic() < deadline):
                    trial = study.ask()
                    recipe = sample_recipe(trial, self.space, self.host.catalogue)
                    recipe.seed = self.config.seed + trial.number
                    in_flight[trial.number] = trial
                    self.host.trial_start(trial.number, recipe.model_dump())
                    self.executor.submit(TrialJob(number=trial.number, recipe=recipe.model_dump(),
                                                  workdir=str(self.run_dir.trial_dir(trial.number))))
                if not in_flight:
                    break
                for result in self.executor.wait():
                    self._tell(study, in_flight.pop(result.number), result)
                    results.append(result)
                    self.run_dir.write_trials(results)
                    outcome.hypervolume_history.append((len(results), self.hypervolume(results)))
                    self.host.trial_end(result)
                    self.on_result(results, done + 1)
                    done += 1
        except KeyboardInterrupt:
            outcome.interrupted = True
            for number, trial in in_flight.items():
                study.tell(trial, state=TrialState.FAIL)
        return outcome

    def hypervolume(self, results: list[TrialResult]) -> float:
        return hypervolume(pareto_front(results, self.config.objectives), self.config.objectives, self.ideal, self.ref)

    def _tell(self, study: optuna.Study, trial: optuna.Trial, result: TrialResult) -> None:
        result.artifact = self.run_dir.relative(result.artifact) if result.artifact else None
        if result.state == "COMPLETE":
            values = [result.metrics.get(o.metric, math.nan) for o in self.config.objectives]
            if not all(math.isfinite(v) for v in values):
                result.state, result.error = "FAIL", f"non-finite objective values {values}"
            else:
                result.constraints = constraint_violations(result.metrics, self.config.constraints)
                result.feasible = all(v <= 0 for v in result.constraints.values())
                for name, violation in result.constraints.items():
                    trial.set_constraint(name, violation)
                study.tell(trial, values)
                return
        for key, value in (("error", result.error), ("curve", result.curve)):
            if value:
                trial.set_user_attr(key, value)
        study.tell(trial, state=_STATES[result.state])

    def _enqueue_defaults(self, study: optuna.Study) -> None:
        catalogue = self.host.catalogue
        for recipe in default_recipes(self.space, catalogue):
            params = recipe_params(recipe, self.space, catalogue)
            if params is not None:
                study.enqueue_trial(params, skip_if_exists=True)

    def _fail_orphans(self, study: optuna.Study) -> None:
        """Trials a killed driver left RUNNING are failed, so the budget counts them honestly."""
        storage = study._storage
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
