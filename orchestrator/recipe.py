"""A Recipe: one strategy (or ``none``) per stage with its hyper-parameters, as plain data.

Recipes serialise to YAML and replay exactly on the same baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.strategies import STAGES

if TYPE_CHECKING:
    from orchestrator.pluginmanager import Catalogue

NONE = "none"


class StageChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: str = NONE
    params: dict[str, Any] = Field(default_factory=dict)


class Recipe(BaseModel):
    """Stages in canonical order: score -> prune -> train -> quantize (export and measure follow)."""

    model_config = ConfigDict(extra="forbid")

    score: StageChoice = Field(default_factory=StageChoice)
    prune: StageChoice = Field(default_factory=StageChoice)
    train: StageChoice = Field(default_factory=StageChoice)
    quantize: StageChoice = Field(default_factory=StageChoice)
    #: Seeds the trial's training and sampling of batches; replaying with it reproduces the trial.
    seed: int = 0

    def stages(self) -> list[tuple[str, StageChoice]]:
        return [(stage, getattr(self, stage)) for stage in STAGES]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str, where: str = "recipe") -> "Recipe":
        """Parse a recipe; a malformed one is a one-line ConfigError naming the field."""
        from pydantic import ValidationError

        from orchestrator.config import format_validation_error
        from orchestrator.errors import ConfigError

        try:
            return cls.model_validate(yaml.safe_load(text) or {})
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where}: malformed YAML: {getattr(exc, 'problem', exc)}") from None
        except ValidationError as exc:
            raise ConfigError(f"{where}: {format_validation_error(exc)}") from None

    @classmethod
    def load(cls, path: str | Path) -> "Recipe":
        from orchestrator.errors import ConfigError

        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the recipe: {getattr(exc, 'strerror', None) or exc}") from None
        return cls.from_yaml(text, where=str(path))

    def check(self, catalogue: "Catalogue", where: str = "recipe") -> None:
        """Every strategy is installed and every parameter is one it declares: a typo would otherwise
        replay the strategy's default silently. Raises a one-line ConfigError naming the field."""
        from orchestrator.errors import ConfigError, did_you_mean

        for stage, choice in self.stages():
            if choice.strategy == NONE and stage == "score":
                continue
            known = catalogue.family(STAGES[stage])
            strategy = known.get(choice.strategy)
            if strategy is None:
                raise ConfigError(f"{where}: field '{stage}.strategy': no plugin provides {STAGES[stage]} "
                                  f"'{choice.strategy}'{did_you_mean(choice.strategy, list(known))}")
            declared = set(strategy.space) | set(strategy.defaults)
            for name in choice.params:
                if name not in declared:
                    raise ConfigError(f"{where}: field '{stage}.params.{name}': {STAGES[stage]} '{choice.strategy}' "
                                      f"has no parameter '{name}'{did_you_mean(name, sorted(declared))}")

    def describe(self, catalogue: "Catalogue | None" = None) -> str:
        """The recipe in words: ``channel ratio=0.5 by magnitude -> kd T=4 -> static-int8``."""
        parts = []
        for stage, choice in self.stages():
            if stage == "score" or (stage == "train" and _trains_nothing(choice)):
                continue  # the scorer is named with its pruner; a 0-epoch train stage trains nothing
            if choice.strategy == NONE and stage != "train":
                continue
            text = _describe(catalogue, STAGES[stage], choice)
            if stage == "prune" and self.score.strategy != NONE:
                text += " by " + _describe(catalogue, "scorer", self.score)
            if stage == "train" and choice.strategy == NONE:
                text = "fine-tune " + text.removeprefix("none ").strip()
            parts.append(text)
        return " -> ".join(parts) or "baseline"


def _trains_nothing(choice: StageChoice) -> bool:
    default = 0 if choice.strategy == NONE else 1
    return not choice.params.get("epochs", default)


def _describe(catalogue: "Catalogue | None", family: str, choice: StageChoice) -> str:
    strategy = catalogue.family(family).get(choice.strategy) if catalogue else None
    if strategy is not None:
        return strategy.describe(choice.params)
    return choice.strategy + "".join(f" {k}={v}" for k, v in choice.params.items())
