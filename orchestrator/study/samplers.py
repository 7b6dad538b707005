"""Optuna samplers by name. The default is TPE, each parameter modelled on the trials that have it,
which is how it handles the conditional space; ``multivariate`` models them jointly, group by group."""

from __future__ import annotations

import warnings

import optuna

from orchestrator.config import SamplerConfig

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
