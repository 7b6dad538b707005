"""Hyper-parameter spaces declared as data by strategies, turned into Optuna distributions here.

A strategy declares ``space = {"ratio": Float(0.1, 0.9), "p": Choice([1, 2])}``. A search space
YAML may narrow any of them: a list picks choices, ``{low, high}`` narrows a range, a scalar fixes
the value. Narrowing never widens: a bound outside the declared range is a config error.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Union

import optuna.distributions as od
from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.errors import ConfigError


class _Param(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def distribution(self) -> od.BaseDistribution:  # pragma: no cover - abstract
        raise NotImplementedError

    def contains(self, value: Any) -> bool:
        if isinstance(self, Choice):
            # Optuna compares choices with ==, for which True == 1; a choice must match in type too
            return any(type(value) is type(c) and value == c for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if isinstance(self, Int) and not float(value).is_integer():
            return False
        dist = _sampled(self)
        try:
            return bool(dist._contains(dist.to_internal_repr(value)))
        except (ValueError, TypeError):
            return False


class Float(_Param):
    """A real-valued hyper-parameter in ``[low, high]``, optionally sampled on a log scale."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def __init__(self, low: float, high: float, **kw: Any) -> None:
        super().__init__(low=low, high=high, **kw)

    def distribution(self) -> od.FloatDistribution:
        return od.FloatDistribution(self.low, self.high, log=self.log, step=self.step)


class Int(_Param):
    """An integer hyper-parameter in ``[low, high]``."""

    low: int
    high: int
    step: int = 1
    log: bool = False

    def __init__(self, low: int, high: int, **kw: Any) -> None:
        super().__init__(low=low, high=high, **kw)

    def distribution(self) -> od.IntDistribution:
        return od.IntDistribution(self.low, self.high, log=self.log, step=self.step)


class Choice(_Param):
    """A categorical hyper-parameter."""

    choices: tuple[Any, ...]

    def __init__(self, choices: Any, **kw: Any) -> None:
        super().__init__(choices=tuple(choices), **kw)

    def distribution(self) -> od.CategoricalDistribution:
        return od.CategoricalDistribution(self.choices)


Param = Union[Float, Int, Choice]


def narrow(param: Param, override: Any, where: str) -> Param:
    """Apply a search-space override to a declared parameter, refusing to widen it."""
    if isinstance(override, list):
        choices = tuple(override if isinstance(param, Choice) else (_number(c, "choice", param, where) for c in override))
        if not choices:
            raise ConfigError(f"{where}: an empty list of choices")
        for c in choices:
            if not param.contains(c):
                raise ConfigError(f"{where}: {c!r} is outside the declared space {describe(param)}")
        return Choice(choices)
    if isinstance(override, dict):
        if isinstance(param, Choice):
            raise ConfigError(f"{where}: a categorical parameter takes a list of choices, not a range")
        unknown = set(override) - {"low", "high", "log", "step"}
        if unknown:
            raise ConfigError(f"{where}: unknown range key(s) {sorted(unknown)}; use low, high, log, step")
        merged = param.model_dump() | {k: _number(v, k, param, where) if k != "log" else v for k, v in override.items()}
        if merged["low"] > merged["high"]:
            raise ConfigError(f"{where}: low {merged['low']} is above high {merged['high']}")
        if merged["low"] < param.low or merged["high"] > param.high:
            raise ConfigError(f"{where}: range [{merged['low']}, {merged['high']}] widens the declared {describe(param)}")
        try:
            narrowed = type(param)(**merged)
            narrowed.distribution()
        except (ValidationError, ValueError) as exc:
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc).splitlines()[0]
            raise ConfigError(f"{where}: {reason}") from None
        return narrowed
    if isinstance(override, str) and not isinstance(param, Choice):
        override = _number(override, "value", param, where)
    if not param.contains(override):
        raise ConfigError(f"{where}: {override!r} is outside the declared space {describe(param)}")
    return Choice((override,))


def _sampled(param: Param) -> od.BaseDistribution:
    """``param.distribution()``, whose bounds are those Optuna samples between: a high off the step's
    grid moves down onto it (Optuna warns of that once, when the space is read; not here again)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return param.distribution()


def within(inner: Any, outer: Param) -> bool:
    """Whether ``inner`` is a valid Param that allows nothing ``outer`` does not: choices ``outer``
    contains (whole numbers for an integer range), or a range inside the range, on its grid where it
    has one (another scale is fine)."""
    if inner == outer:
        return True
    if isinstance(inner, Choice):
        whole = not isinstance(outer, Int) or all(isinstance(c, int) and not isinstance(c, bool) for c in inner.choices)
        return bool(inner.choices) and whole and all(outer.contains(c) for c in inner.choices)
    if not isinstance(inner, (Float, Int)) or type(inner) is not type(outer):
        return False
    try:
        dist = _sampled(inner)
    except ValueError:
        return False
    on_grid = outer.step is None or inner.step is not None and round(inner.step / outer.step, 9).is_integer()
    return outer.contains(dist.low) and outer.contains(dist.high) and on_grid


def _number(value: Any, key: str, param: Param, where: str) -> Any:
    """Range bounds are numbers; YAML 1.1 reads ``1e-3`` as a string, so numeric strings are accepted."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{where}: {key} {value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: {key} {value!r} is not a number")
    if isinstance(param, Int) and key in ("low", "high", "step"):
        if not float(value).is_integer():
            raise ConfigError(f"{where}: {key} {value!r} is not a whole number")
        value = int(value)
    return value


def describe(param: Param) -> str:
    if isinstance(param, Choice):
        return "{" + ", ".join(repr(c) for c in param.choices) + "}"
    scale = ", log" if param.log else ""
    if param.step is not None and not (isinstance(param, Int) and param.step == 1):
        scale += f", step {param.step}"
    return f"[{param.low}, {param.high}{scale}]"


def default_value(param: Param) -> Any:
    """A representative value: the first choice, or the middle of a range (geometric on log scales)."""
    if isinstance(param, Choice):
        return param.choices[0]
    return _snap(param, (param.low * param.high) ** 0.5 if param.log else (param.low + param.high) / 2)


def _snap(param: Float | Int, value: float) -> Any:
    """``value`` on the grid the distribution samples from, inside the range."""
    if param.step:
        value = param.low + round((value - param.low) / param.step) * param.step
    value = min(max(value, param.low), param.high)
    return int(round(value)) if isinstance(param, Int) else float(value)


def is_number(value: Any) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def nearest(param: Param, value: Any) -> Any:
    """The value the space allows nearest to ``value`` (a default a narrowed space excludes): a
    range's bound or step, the closest numeric choice; ``default_value`` for anything else."""
    if param.contains(value):
        return value
    if not is_number(value):
        return default_value(param)
    if isinstance(param, Choice):
        numbers = [c for c in param.choices if is_number(c)]
        return min(numbers, key=lambda c: abs(c - value)) if numbers else default_value(param)
    return _snap(param, value)


def step(param: Param, value: Any, up: bool) -> Any:
    """One step from ``value`` towards the top (``up``) or the bottom of what the space allows:
    halfway to the range's bound (geometric on log scales; at least one step of a stepped range),
    or the next numeric choice; None when there is no room that way."""
    if not is_number(value):
        return None
    if isinstance(param, Choice):
        beyond = sorted(c for c in param.choices if is_number(c) and (c > value if up else c < value))
        return (beyond[0] if up else beyond[-1]) if beyond else None
    bound = param.high if up else param.low
    moved = _snap(param, (value * bound) ** 0.5 if param.log else (value + bound) / 2)
    if moved == value and value != bound and param.step:  # less than a step to halfway: one step
        moved = _snap(param, value + (param.step if up else -param.step))
    return moved if moved != value and param.contains(moved) else None


def halfway(param: Param, low: Any, high: Any) -> Any:
    """The value the space allows strictly between ``low`` and ``high`` nearest their middle
    (geometric on log scales); None when there is none."""
    if not (is_number(low) and is_number(high)):
        return None
    if isinstance(param, Choice):
        between = [c for c in param.choices if is_number(c) and low < c < high]
        return min(between, key=lambda c: abs(c - (low + high) / 2)) if between else None
    middle = _snap(param, (low * high) ** 0.5 if param.log else (low + high) / 2)
    if not param.contains(middle) or any(math.isclose(middle, end, rel_tol=1e-9, abs_tol=1e-12)
                                         for end in (low, high)):
        return None  # on a stepped range, the middle may snap onto an end
    return middle if low < middle < high else None
