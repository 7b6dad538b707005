"""Optuna samplers by name. The default handles conditional spaces: TPE, multivariate and grouped."""

from __future__ import annotations

import warnings

import optuna

from orchestrator.config import SamplerConfig

def make_sampler(cfg: SamplerConfig, seed: int) -> optuna.samplers.BaseSampler:
    if cfg.name == "tpe":
        with warnings.catch_warnings():
            # ``group`` is marked experimental, but it is what makes TPE model a conditional space
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(multivariate=True, group=True, seed=seed, constant_liar=True,
                                              n_startup_trials=cfg.n_startup_trials)
    if cfg.name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=cfg.population_size, seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)
