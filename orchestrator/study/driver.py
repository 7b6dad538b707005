"""The driver: the only owner and writer of the Optuna study. It asks for trials, turns them into
recipes, hands them to an executor, and tells Optuna the measured values and constraints."""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from typing import Callable

import optuna
from optuna.trial import TrialState

from orchestrator.config import Bound, Objective, RunConfig
from orchestrator.executors.base import CANCELLED, Executor, TrialJob
from orchestrator.interrupts import deferred
from orchestrator.pluginmanager import Catalogue, PluginHost
from orchestrator.recipe import Recipe
from orchestrator.results import TrialResult
from orchestrator.rundir import RunDir
from orchestrator.study.pareto import constraint_violations, hypervolume, pareto_front, reference
from orchestrator.study.repeats import REPEAT, ask_recipe
from orchestrator.study.samplers import derived_seed, make_sampler
from orchestrator.study.storage import claim, make_storage, study_name
from orchestrator.study.ladder import LADDER, Signature, extend_ladder, kept_constraints
from orchestrator.study.sampling import DEFAULT_RECIPE, chain_rungs, default_recipes, recipe_params
from orchestrator.spaces import SearchSpace

ORPHANED = "interrupted: the driver stopped (killed or crashed) while this trial ran; it is re-queued"
_STATES = {"COMPLETE": TrialState.COMPLETE, "PRUNED": TrialState.PRUNED, "FAIL": TrialState.FAIL}


@dataclass
class SearchOutcome:
    results: list[TrialResult]
    hypervolume_history: list[tuple[int, float]] = field(default_factory=list)
    interrupted: bool = False


def sampler_seed(config: RunConfig) -> int:
    """The seed of the sampler's proposals: ``sampler.seed``, else the run's."""
    return config.seed if config.sampler.seed is None else config.sampler.seed


def open_study(config: RunConfig, run_dir: RunDir) -> optuna.Study:
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(storage=make_storage(config.execution, run_dir),
                                study_name=study_name(config.execution, run_dir),
                                sampler=make_sampler(config.sampler, sampler_seed(config)),
                                directions=[o.direction for o in config.objectives], load_if_exists=True)
    if config.execution.storage is not None:
        claim(study, run_dir)
    if study.trials:  # a resumed session continues the sampler's random stream instead of replaying it
        study.sampler = make_sampler(config.sampler, derived_seed(sampler_seed(config), len(study.trials)))
    return study


def counted(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial counts against the budget: finished, not cut short by the driver, and not a
    repeated proposal set aside unrun."""
    return trial.state.is_finished() and not trial.user_attrs.get("interrupted") and REPEAT not in trial.user_attrs


def enqueue_defaults(study: optuna.Study, space: SearchSpace, catalogue: Catalogue) -> None:
    """Enqueue the default recipes (``default_recipes``) the space can express, marked as such, and
    the chain's rungs as rungs of its ladder."""
    rungs = chain_rungs(space, catalogue)
    for recipe in default_recipes(space, catalogue):
        params = recipe_params(recipe, space, catalogue)
        if params is not None:
            marks = {DEFAULT_RECIPE: True, **({LADDER: 0} if recipe in rungs else {})}
            study.enqueue_trial(params, user_attrs=marks, skip_if_exists=True)


def check_values(result: TrialResult, objectives: list[Objective], constraints: dict[str, Bound]) -> TrialResult:
    """A COMPLETE result must have finite objectives (else it fails); its constraint violations and
    feasibility are worked out. Returns ``result``, changed in place."""
    if result.state != "COMPLETE":
        return result
    values = [result.metrics.get(o.metric, math.nan) for o in objectives]
    if not all(math.isfinite(v) for v in values):
        result.state, result.error = "FAIL", f"non-finite objective values {values}"
        return result
    result.constraints = constraint_violations(result.metrics, constraints)
    result.feasible = all(v <= 0 for v in result.constraints.values())
    return result


def tell(study: optuna.Study, trial: optuna.Trial, result: TrialResult, objectives: list[Objective]) -> None:
    """Tell Optuna a trial's result: a complete one its constraint violations and objective values,
    anything else its state. The whole result travels with the trial (a user attribute), so a
    driver killed before writing trials.jsonl loses nothing."""
    trial.set_user_attr("result", result.model_dump(mode="json"))
    if result.state == "COMPLETE":
        for name, violation in result.constraints.items():
            trial.set_constraint(name, violation)
        study.tell(trial, [result.metrics[o.metric] for o in objectives])
        return
    for key, value in (("error", result.error), ("curve", result.curve), ("interrupted", result.interrupted)):
        if value:
            trial.set_user_attr(key, value)
    study.tell(trial, state=_STATES[result.state])


def _requeue(study: optuna.Study, params: dict, user_attrs: dict) -> None:
    """An interrupted trial's recipe, enqueued again (an enqueued default stays one, a rung stays one)."""
    marks = {key: user_attrs[key] for key in (DEFAULT_RECIPE, LADDER) if key in user_attrs}
    study.enqueue_trial(params, user_attrs=marks or None)


class Driver:
    def __init__(self, config: RunConfig, run_dir: RunDir, space: SearchSpace, host: PluginHost,
                 executor: Executor, baseline: dict[str, float],
                 on_result: Callable[[list[TrialResult], int], None] = lambda results, done: None,
                 signature: Signature | None = None) -> None:
        """``signature``: what a rung's pruning makes of the baseline, so the ladder passes over
        rungs that would make a model measured already (``ladder.pruned_signature``)."""
        self.config, self.run_dir, self.space, self.host = config, run_dir, space, host
        self.signature = signature
        self.executor, self.baseline, self.on_result = executor, baseline, on_result
        self.ideal, self.ref = reference(baseline, config.objectives)
        self.kept = kept_constraints(baseline, config.constraints)
        self.study: optuna.Study | None = None
        self.outcome = SearchOutcome(results=[])

    def run(self) -> SearchOutcome:
        """Ask, submit, wait, record, until the budget is spent. Ctrl-C or SIGTERM interrupts only the
        wait on the executor (or a trial running in this process): every write to the study and
        the run directory completes first, so the storage is never left half written."""
        with deferred():
            study = self.study = open_study(self.config, self.run_dir)
            results = self.run_dir.read_trials()
            results += self._recover_unwritten(study, results)
            results += self._fail_orphans(study)
            self.run_dir.write_trials(results)
            if not study.trials:
                enqueue_defaults(study, self.space, self.host.catalogue)
            # a rung measured before a stop
            extend_ladder(study, self.space, self.host.catalogue, self.kept, self.signature)
        outcome = self.outcome = SearchOutcome(results=results)
        self._front = pareto_front(results, self.config.objectives)
        self._in_flight: dict[int, optuna.Trial] = {}
        try:
            self._loop(study, outcome)
        except KeyboardInterrupt:
            outcome.interrupted = True
            try:
                with deferred():
                    self._cancel(study, outcome)
            except KeyboardInterrupt:  # pressed again while cancelling: what is recorded stays, resume recovers the rest
                pass
        return outcome

    def _loop(self, study: optuna.Study, outcome: SearchOutcome) -> None:
        in_flight = self._in_flight
        deadline = time.monotonic() + self.config.budget.timeout if self.config.budget.timeout else math.inf
        done = sum(1 for t in study.get_trials(deepcopy=False) if counted(t))
        recorded = False
        while True:
            with deferred():
                while (len(in_flight) < self.executor.capacity and done + len(in_flight) < self.config.budget.n_trials
                       and time.monotonic() < deadline):
                    self._submit(study)
                if recorded:  # after the next trials are on their way: workers do not wait on the report
                    self.on_result(outcome.results, done)
                    recorded = False
            if not in_flight:
                return
            finished = self.executor.wait()
            with deferred():
                for result in finished:
                    self._record(study, in_flight.pop(result.number), result, outcome)
                    if not result.interrupted:
                        done += 1
                recorded = bool(finished)

    def _submit(self, study: optuna.Study) -> None:
        trial, recipe = ask_recipe(study, self.space, self.host.catalogue, sampler_seed(self.config),
                                   self.config.sampler.skip_repeats)
        self._in_flight[trial.number] = trial
        recipe.seed = self.config.seed + trial.number
        trial.set_user_attr("recipe", recipe.model_dump(mode="json"))
        self.host.trial_start(trial.number, recipe.model_dump())
        self.executor.submit(TrialJob(number=trial.number, recipe=recipe.model_dump(),
                                      workdir=str(self.run_dir.trial_dir(trial.number).resolve()),
                                      judged=not trial.user_attrs.get(DEFAULT_RECIPE, False)))

    def _cancel(self, study: optuna.Study, outcome: SearchOutcome) -> None:
        """After Ctrl-C: running trials are cancelled and recorded as interrupted, to be re-queued."""
        in_flight = self._in_flight
        for result in self.executor.cancel_all():
            if result.number in in_flight:
                self._record(study, in_flight.pop(result.number), result, outcome)
        for number, trial in list(in_flight.items()):  # asked but not submitted, or finished unrecorded
            recipe = trial.user_attrs.get("recipe") or {}
            result = TrialResult(number=number, state="FAIL", recipe=recipe, error=CANCELLED, interrupted=True,
                                 description=self._describe(recipe), started_at=time.time(),
                                 finished_at=time.time())
            self._record(study, in_flight.pop(number), result, outcome)

    def _record(self, study: optuna.Study, trial: optuna.Trial, result: TrialResult, outcome: SearchOutcome) -> None:
        check_values(result, self.config.objectives, self.config.constraints)
        try:
            curve = self.executor.board.finish(result.number, result.state == "COMPLETE")
        except Exception:  # the board is gone (its actor died): the result stands without its curve
            curve = []
        result.curve = result.curve or curve
        result.artifact = self.run_dir.relative(result.artifact) if result.artifact else None
        if result.interrupted:
            shutil.rmtree(self.run_dir.trial_dir(result.number), ignore_errors=True)
        tell(study, trial, result, self.config.objectives)
        if result.interrupted and trial.params:
            _requeue(study, trial.params, trial.user_attrs)
        if LADDER in trial.user_attrs:
            extend_ladder(study, self.space, self.host.catalogue, self.kept, self.signature)
        outcome.results.append(result)
        self.run_dir.append_trial(result)
        # the front only changes by this result: compare it with the front, not with every trial
        self._front = pareto_front(self._front + [result], self.config.objectives)
        outcome.hypervolume_history.append((len(outcome.results), self.hypervolume(self._front)))
        self.host.trial_end(result)

    def hypervolume(self, results: list[TrialResult]) -> float:
        """Of the front of ``results`` (the front itself is its own front)."""
        return hypervolume(pareto_front(results, self.config.objectives), self.config.objectives, self.ideal, self.ref)

    def _recover_unwritten(self, study: optuna.Study, results: list[TrialResult]) -> list[TrialResult]:
        """Finished trials a killed driver told Optuna but had not yet written to trials.jsonl."""
        written = {r.number for r in results}
        return [TrialResult.model_validate(t.user_attrs["result"]) for t in study.get_trials(deepcopy=False)
                if t.state.is_finished() and t.number not in written and "result" in t.user_attrs]

    def _fail_orphans(self, study: optuna.Study) -> list[TrialResult]:
        """Trials a killed driver left RUNNING: failed, recorded as interrupted, and re-queued."""
        storage = study._storage  # Optuna has no public call to end a trial its driver lost
        orphans = []
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            storage.set_trial_user_attr(t._trial_id, "interrupted", True)
            storage.set_trial_user_attr(t._trial_id, "error", ORPHANED)
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            if t.params:
                _requeue(study, t.params, t.user_attrs)
            recipe = t.user_attrs.get("recipe")
            if recipe is not None:
                shutil.rmtree(self.run_dir.trial_dir(t.number), ignore_errors=True)
                orphans.append(TrialResult(number=t.number, state="FAIL", recipe=recipe, error=ORPHANED,
                                           interrupted=True, description=self._describe(recipe),
                                           started_at=t.datetime_start.timestamp() if t.datetime_start else 0.0,
                                           finished_at=time.time()))
        return orphans

    def _describe(self, recipe: dict) -> str:
        try:
            return Recipe.model_validate(recipe).describe(self.host.catalogue)
        except Exception:
            return ""
