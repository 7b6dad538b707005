"""The run configuration: pydantic models loaded from YAML, validated once before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.errors import ConfigError, did_you_mean
from orchestrator.metric_names import METRICS


#: the largest seed NumPy (and so Optuna's samplers) accepts
MAX_SEED = 2**32 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskConfig(_Strict):
    """A built-in task by name (``mnist1d``) or a user's task by import path (``pkg.mod:factory``)."""

    name: str = Field(description="A registered task name, or package.module:factory.")
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the task factory.")


class Objective(_Strict):
    """A metric to optimise; the front trades the objectives off against each other."""

    metric: str = Field(description="A metric name.")
    direction: Literal["maximize", "minimize"] | None = Field(
        default=None, description="Defaults to the metric's natural direction.")

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"metric": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _known(self) -> "Objective":
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric '{self.metric}'{did_you_mean(self.metric, list(METRICS))}")
        if self.direction is None:
            self.direction = METRICS[self.metric][0]  # type: ignore[assignment]
        return self


class Bound(_Strict):
    """Feasible when ``min <= metric <= max``; either bound may be left out."""

    min: float | None = Field(default=None, allow_inf_nan=False, description="Lowest feasible value.")
    max: float | None = Field(default=None, allow_inf_nan=False, description="Highest feasible value.")

    @model_validator(mode="after")
    def _one(self) -> "Bound":
        if self.min is None and self.max is None:
            raise ValueError("a constraint needs 'min', 'max' or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class Budget(_Strict):
    """When the search stops: whichever of the two comes first."""

    n_trials: int = Field(default=30, gt=0, description="Trials to finish (complete, pruned or failed).")
    timeout: float | None = Field(default=None, gt=0, description="Stop dispatching new trials after this many seconds.")


class SamplerConfig(_Strict):
    """The Optuna sampler that proposes recipes."""

    name: Literal["tpe", "nsga2", "random"] = Field(
        default="tpe", description="tpe: TPE (each parameter modelled on the trials that have it, which "
        "handles the conditional space); nsga2: NSGA-II; random: uniform random search.")
    n_startup_trials: int = Field(default=8, ge=0, description="TPE: random trials before the model kicks in.")
    multivariate: bool = Field(default=False, description="TPE: model the parameters jointly, group by group "
                               "of the conditional space, instead of one by one. Off by default: on the "
                               "tabular benchmark it settled on its first feasible recipes too early "
                               "(docs/benchmarks.md).")
    population_size: int = Field(default=16, ge=2, description="NSGA-II population size.")
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED, description="Seeds the sampler's proposals; "
                                "default: the run's `seed`. Another value searches differently from the same data, "
                                "baseline and trial seeds (the enqueued first trials train alike), so runs "
                                "that differ only here show how much a result owes to the sampler's luck.")
    skip_repeats: bool = Field(default=True, description="A recipe already measured or running (the same "
                               "params; only the seed would differ) is not trained again: the proposal is "
                               "set aside and a recipe drawn at random instead.")


class LatencyConfig(_Strict):
    """The deployment runtime, and how latency is measured on it."""

    runtime: Literal["onnxruntime", "torch"] = Field(
        default="onnxruntime", description="onnxruntime ships ONNX files (int8 included); torch ships "
        "torch.export programs.")
    batch_size: int = Field(default=256, gt=0, description="Inputs per timed batch.")
    threads: int = Field(default=1, gt=0, description="Intra-op threads of the runtime while timing.")
    warmup: int = Field(default=5, ge=0, description="Untimed runs before timing each session.")
    warmup_s: float = Field(default=1.5, ge=0, description="At most this many seconds the model runs untimed "
                            "before it is timed, so a core that idled is up to speed (other trials keep "
                            "training meanwhile); with the canary, the warm-up ends as soon as the canary "
                            "runs within 10% of its best.")
    canary: bool = Field(default=True, description="Time a fixed small convolution before and after each reading: "
                         "a reading taken while it ran more than 10% slower than its best (a slow spell of the "
                         "machine) is taken again, up to twice, and the first undisturbed reading kept (the fastest "
                         "when none is). Off: readings are judged by their spread only and every warm-up lasts "
                         "warmup_s.")
    repeats: int = Field(default=20, gt=0, description="Timed runs per session.")
    sessions: int = Field(default=5, gt=0, description="Fresh runtime sessions timed one after the other; "
                          "latency_ms is the median of their medians, so one slow session is outvoted.")


class ExecutionConfig(_Strict):
    """Where trials run, how many at once, and where the study is stored."""

    executor: Literal["ray", "local"] = Field(
        default="ray", description="ray: each trial is a Ray task, several at once; local: one at a time "
        "inside the driver process (for debugging).")
    address: str | None = Field(
        default=None, description="Ray cluster to join: 'auto' (the cluster `ray start` runs on this machine) "
        "or 'ray://host:10001'. Unset: a private local Ray, started and stopped by the run.")
    workers: int | None = Field(default=None, gt=0, description="Trials at once. Unset: the CPUs Ray sees "
                                "divided by cpus_per_trial.")
    cpus_per_trial: float = Field(default=1.0, gt=0, description="CPUs Ray reserves for each trial; its "
                                  "training uses as many threads.")
    gpus_per_trial: float = Field(default=0.0, ge=0, description="GPUs Ray reserves for each trial.")
    trial_timeout: float | None = Field(default=None, gt=0, description="Seconds a trial may run before it is "
                                        "cancelled and recorded as FAIL.")
    storage: str | None = Field(
        default=None, description="Optuna storage: unset for the journal file study.log in the run directory, "
        "or an SQLAlchemy URL such as postgresql://user@host/db for a long-lived shared study.")
    study_name: str | None = Field(default=None, description="Study name in the storage. Unset: the run "
                                   "directory's name.")
    runtime_env: dict[str, Any] | None = Field(
        default=None, description="Ray runtime_env for the workers, e.g. {working_dir: ., pip: [...]} to ship "
        "a user's task code to a cluster.")

    @model_validator(mode="after")
    def _ray_only(self) -> "ExecutionConfig":
        if self.executor == "local" and self.address is not None:
            raise ValueError("'address' needs executor: ray")
        return self


class EarlyStoppingConfig(_Strict):
    """Stops trials whose training curve shows they cannot pay off (see docs/failures.md)."""

    enabled: bool = Field(default=True, description="Stop hopeless trials during training.")
    grace_epochs: int = Field(default=2, ge=1, description="Epochs every trial trains before any rule applies "
                              "(a heavily pruned model recovers most in its first epochs).")
    min_trials: int = Field(default=3, ge=1, description="Completed curves needed at an epoch before a rule "
                            "compares against them.")
    floor_margin: float = Field(default=0.02, ge=0, description="Accuracy rule: stop when the curve, plus the "
                                "largest gain any completed trial made after this epoch, stays this far below "
                                "the accuracy floor the constraints set.")
    median_margin: float | None = Field(
        default=0.1, ge=0, description="Median rule: stop when the curve is this far below the median of "
        "completed trials at the same epoch; null turns the rule off.")


class ReportConfig(_Strict):
    """The report a run writes: report.html and report.md, refreshed while the search runs."""

    refresh_s: float | None = Field(
        default=30.0, ge=0, description="Rewrite the reports after a trial finishes when at least this many "
        "seconds passed since the last time (0: after every trial; null: only at the end).")
    importance: bool = Field(default=True, description="Compute each objective's parameter importance "
                             "(fANOVA) for the final report.")


class RunConfig(_Strict):
    """The whole run: what to compress, what to search, what to optimise, under which bounds."""

    task: TaskConfig = Field(description="The task: model, data, loss and metric.")
    search_space: str = Field(default="default", description="A built-in space name or a path to a YAML file.")
    objectives: list[Objective] = Field(
        default_factory=lambda: [Objective(metric=m) for m in ("accuracy", "size_mb", "latency_ms")], min_length=1,
        description="Metrics to optimise, with their directions.")
    constraints: dict[str, Bound] = Field(default_factory=dict, description="Bounds on any metric, by name.")
    budget: Budget = Field(default_factory=Budget, description="How many trials, for how long.")
    sampler: SamplerConfig = Field(default_factory=SamplerConfig, description="The Optuna sampler.")
    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="Seeds the baseline, every trial's training, "
                      "and the sampler unless `sampler.seed` is set.")
    latency: LatencyConfig = Field(default_factory=LatencyConfig, description="Runtime and latency measurement.")
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig, description="Where trials run.")
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig,
                                                description="Stopping hopeless trials during training.")
    report: ReportConfig = Field(default_factory=ReportConfig, description="The report and its refreshing.")
    keep_all_artifacts: bool = Field(default=False, description="Keep every trial's model, not only the Pareto ones.")

    @field_validator("task", mode="before")
    @classmethod
    def _task_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("constraints")
    @classmethod
    def _known_metrics(cls, value: dict[str, Bound]) -> dict[str, Bound]:
        for metric in value:
            if metric not in METRICS:
                raise ValueError(f"constraint on metric '{metric}' that nothing produces"
                                 f"{did_you_mean(metric, list(METRICS))}")
        return value

    @field_validator("objectives")
    @classmethod
    def _distinct_objectives(cls, value: list[Objective]) -> list[Objective]:
        names = [o.metric for o in value]
        if len(set(names)) != len(names):
            raise ValueError(f"a metric is named twice: {names}")
        return value


def load_config(source: str | Path | dict | RunConfig) -> RunConfig:
    """A RunConfig from a YAML path, a dict or a RunConfig; bad input raises one-line ConfigError."""
    if isinstance(source, RunConfig):
        return source
    where = "config"
    if not isinstance(source, dict):
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            source = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not a UTF-8 text file") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" line {mark.line + 1}:" if mark else ""
            raise ConfigError(f"{path}:{line} malformed YAML: {getattr(exc, 'problem', exc)}") from None
        if not isinstance(source, dict):
            raise ConfigError(f"{path}: expected a mapping of config fields at the top level")
    try:
        return RunConfig.model_validate(source)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {format_validation_error(exc)}") from None


def format_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"field '{loc}': {msg}" if loc else msg)
    return "; ".join(parts)


def dump_config(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
