"""Optuna samplers by name. The default is TPE, each parameter modelled on the trials that have it,
which is how it handles the conditional space; ``multivariate`` models them jointly, group by group."""

from __future__ import annotations

import warnings

import numpy as np
import optuna

from orchestrator.config import SamplerConfig


def derived_seed(seed: int, n: int) -> int:
    """The seed of a run's n-th derived random stream (a resumed session's sampler, the redraw of a
    repeated proposal at trial n). ``seed + n`` would make them the streams of the runs seeded
    seed + 1, seed + 2, ..., one step apart; these are independent of every other seed's."""
    return int(np.random.SeedSequence([seed, n]).generate_state(1)[0])


def make_sampler(cfg: SamplerConfig, seed: int) -> optuna.samplers.BaseSampler:
    if cfg.name == "tpe":
        with warnings.catch_warnings():
            # ``multivariate``, ``group`` and ``constant_liar`` are marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(multivariate=cfg.multivariate, group=cfg.multivariate, seed=seed,
                                              constant_liar=True, n_startup_trials=cfg.n_startup_trials)
    if cfg.name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=cfg.population_size, seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)
