"""Search spaces: which strategies each stage may use, and narrowed hyper-parameter ranges.

A space is YAML, built in (``search_spaces/*.yaml``, resolvable by name after ``pip install``)
or a user's file::

    description: Structured pruning, distillation and int8.
    stages:
      score:    {magnitude: {p: [1, 2]}}
      prune:    {none: {}, channel: {ratio: {low: 0.1, high: 0.7}}}
      train:    {none: {epochs: {low: 0, high: 8}}, kd: {}}
      quantize: {none: {}, static-int8: {}}

A stage left out is ``none``. Each strategy maps to overrides of its declared parameters
(see :func:`orchestrator.params.narrow`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from orchestrator.errors import ConfigError, did_you_mean
from orchestrator.params import Choice, Float, Int, Param, describe, narrow, within
from orchestrator.pluginmanager import Catalogue
from orchestrator.recipe import NONE
from orchestrator.strategies import STAGES

SPACES_PACKAGE = "orchestrator_search_spaces"


@dataclass
class SearchSpace:
    name: str
    description: str
    #: stage -> strategy name -> parameter name -> Param
    stages: dict[str, dict[str, dict[str, Param]]]
    #: strategies left out because they cannot serve the run's runtime
    skipped: list[str] = field(default_factory=list)
    #: (stage, strategy) -> the strategy's defaults for the model the space was restricted to
    #: (``Strategy.defaults_for``); a strategy not in it enqueues its declared ``defaults``
    defaults: dict[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)

    def strategies(self, stage: str) -> list[str]:
        return list(self.stages[stage])

    def restrict_to(self, model: Any, ctx: Any, catalogue: Catalogue) -> list[str]:
        """Drop the strategies that declare themselves inapplicable to ``model`` (the baseline), so
        the sampler never spends a trial on them; narrow the parameters of those that stay to what
        can matter on it (``Strategy.space_for``) and note their defaults for it (what the first,
        enqueued trials use); return what was dropped, with the reasons."""
        dropped = []
        for stage, family in STAGES.items():
            for name in list(self.stages[stage]):
                strategy = catalogue.family(family).get(name)
                reason = strategy.applicable(model, ctx) if strategy is not None else None
                if reason:
                    del self.stages[stage][name]
                    dropped.append(f"{family} '{name}': {reason}")
                elif strategy is not None:
                    self.stages[stage][name] = narrowed_for(strategy, model, self.stages[stage][name])
                    self.defaults[(stage, name)] = strategy.defaults_for(model)
        if not [s for s in self.stages["score"] if s != NONE]:  # pruners that need a scorer go too
            for name in list(self.stages["prune"]):
                if catalogue.family("pruner")[name].needs_scores:
                    del self.stages["prune"][name]
                    dropped.append(f"pruner '{name}': no applicable scorer is left in the space")
        for stage, strategies in self.stages.items():
            if not strategies:
                raise ConfigError(f"search space '{self.name}': no {STAGES[stage]} in stages.{stage} "
                                  f"applies to this model ({'; '.join(dropped)})")
        self.skipped += dropped
        return dropped


def narrowed_for(strategy: Any, model: Any, params: dict[str, Param]) -> dict[str, Param]:
    """``strategy.space_for(model, params)``, checked: the same parameters, none of them wider."""
    narrowed = dict(strategy.space_for(model, dict(params)))
    where = f"{strategy.family} '{strategy.name}': space_for()"
    if set(narrowed) != set(params):
        raise ConfigError(f"{where} must keep every parameter {sorted(params)}, not {sorted(narrowed)}")
    for p, param in narrowed.items():
        if not isinstance(param, (Float, Int, Choice)):
            raise ConfigError(f"{where} returns {param!r} for '{p}', not a Float, Int or Choice of orchestrator.params")
        if not within(param, params[p]):
            raise ConfigError(f"{where} widens '{p}' from {describe(params[p])} to {describe(param)}")
    return narrowed


def builtin_spaces() -> dict[str, str]:
    """Built-in space name -> description."""
    out = {}
    for entry in sorted(resources.files(SPACES_PACKAGE).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            data = yaml.safe_load(entry.read_text()) or {}
            out[entry.name.removesuffix(".yaml")] = str(data.get("description", "")).strip()
    return out


def read_space(name_or_path: str) -> tuple[str, dict]:
    """The raw mapping of a built-in space (by name) or a YAML file (by path)."""
    path = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise ConfigError(f"field 'search_space': no such file {name_or_path}")
        text, name = path.read_text(), path.stem
    else:
        entry = resources.files(SPACES_PACKAGE) / f"{name_or_path}.yaml"
        if not entry.is_file():
            raise ConfigError(f"field 'search_space': unknown space '{name_or_path}'"
                              f"{did_you_mean(name_or_path, list(builtin_spaces()))}")
        text, name = entry.read_text(), name_or_path
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"search space '{name}': malformed YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"search space '{name}': expected a mapping with 'stages'")
    return name, data


def resolve_space(name_or_path: str, catalogue: Catalogue, runtime: str | None = None) -> SearchSpace:
    """Load a space and check every strategy and parameter against the loaded plugins.

    With ``runtime``, quantizers that cannot produce an artifact for it are left out (and listed
    in ``SearchSpace.skipped``); a space left with no quantizer at all is an error.
    """
    name, data = read_space(name_or_path)
    unknown = set(data) - {"description", "stages"}
    if unknown:
        raise ConfigError(f"search space '{name}': unknown key(s) {sorted(unknown)}; use description, stages")
    raw_stages = data.get("stages") or {}
    if not isinstance(raw_stages, dict):
        raise ConfigError(f"search space '{name}': 'stages' must be a mapping of stage -> strategies")
    bad = set(raw_stages) - set(STAGES)
    if bad:
        stage = sorted(bad)[0]
        raise ConfigError(f"search space '{name}': unknown stage '{stage}'{did_you_mean(stage, list(STAGES))}")

    stages: dict[str, dict[str, dict[str, Param]]] = {}
    for stage, family in STAGES.items():
        # a stage left out is none; for the train stage that means fine-tuning for 0 epochs
        entries = raw_stages.get(stage) or {NONE: {"epochs": 0} if stage == "train" else {}}
        if isinstance(entries, list):  # a plain list of names keeps every declared range
            entries = {e: {} for e in entries}
        if not isinstance(entries, dict):
            raise ConfigError(f"search space '{name}': stages.{stage} must map strategy names to parameters")
        known = catalogue.family(family)
        stages[stage] = {}
        for sname, overrides in entries.items():
            where = f"search space '{name}': stages.{stage}.{sname}"
            if sname == NONE and stage == "score":
                stages[stage][sname] = {}
                continue
            if sname not in known:
                raise ConfigError(f"{where}: no plugin provides {family} '{sname}'{did_you_mean(sname, list(known))}")
            stages[stage][sname] = _narrow_all(known[sname].space, overrides or {}, where)

    skipped = []
    if runtime is not None:
        quantizers = catalogue.family("quantizer")
        for q in list(stages["quantize"]):
            if runtime not in quantizers[q].runtimes:
                skipped.append(f"quantizer '{q}' (targets {', '.join(quantizers[q].runtimes)})")
                del stages["quantize"][q]
        if not stages["quantize"]:
            raise ConfigError(f"search space '{name}': no quantizer in stages.quantize targets runtime '{runtime}'")
    needing = [p for p in stages["prune"] if catalogue.family("pruner")[p].needs_scores]
    scorers = [s for s in stages["score"] if s != NONE]
    if needing and not scorers:
        raise ConfigError(f"search space '{name}': pruner '{needing[0]}' needs a scorer; list one under stages.score")
    return SearchSpace(name=name, description=str(data.get("description", "")).strip(), stages=stages,
                       skipped=skipped)


def _narrow_all(declared: dict[str, Param], overrides: Any, where: str) -> dict[str, Param]:
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where}: expected a mapping of parameter -> override")
    for pname in overrides:
        if pname not in declared:
            raise ConfigError(f"{where}: unknown parameter '{pname}'{did_you_mean(pname, list(declared))}")
    return {p: narrow(param, overrides[p], f"{where}.{p}") if p in overrides else param
            for p, param in declared.items()}
