"""Every built-in strategy passes its family's contract suite from ``orchestrator.testing``.

The suites are parametrized over the built-in catalogue, so a strategy added to
``orchestrator_plugins.BUILTIN_PLUGINS`` is held to its contract without another line here.
"""

from __future__ import annotations

import pytest

from orchestrator.testing import (DistillerContract, PrunerContract, QuantizerContract, ScorerContract,
                                  default_params)

#: Settings that keep every run to a fraction of a second; the rest are the strategy's defaults.
CHEAP = {"batches": 1, "steps": 2, "epochs_per_step": 1, "rounds": 2, "epochs_per_round": 1, "epochs": 2,
         "calibration_batches": 2}


def builtin(family: str) -> list[str]:
    from orchestrator.pluginmanager import get_host

    catalogue = get_host().catalogue
    return sorted(name for name in catalogue.family(family)
                  if catalogue.owners[(family, name)].startswith("builtin."))


def _strategy(request: pytest.FixtureRequest, family: str):
    from orchestrator.pluginmanager import get_host

    return get_host().catalogue.family(family)[request.param]


def _cheap(strategy) -> dict:
    return {k: CHEAP.get(k, v) for k, v in default_params(strategy).items()}


class TestBuiltinScorers(ScorerContract):
    @pytest.fixture(params=builtin("scorer"))
    def strategy(self, request):
        return _strategy(request, "scorer")

    @pytest.fixture
    def params(self, strategy):
        return _cheap(strategy)


class TestBuiltinPruners(PrunerContract):
    @pytest.fixture(params=builtin("pruner"))
    def strategy(self, request):
        return _strategy(request, "pruner")

    @pytest.fixture
    def params(self, strategy):
        return _cheap(strategy)

    @pytest.fixture
    def prunes(self, strategy):
        return strategy.name != "none"


class TestBuiltinDistillers(DistillerContract):
    @pytest.fixture(params=builtin("distiller"))
    def strategy(self, request):
        return _strategy(request, "distiller")

    @pytest.fixture
    def params(self, strategy):
        return _cheap(strategy)


class TestBuiltinQuantizers(QuantizerContract):
    @pytest.fixture(params=builtin("quantizer"))
    def strategy(self, request):
        return _strategy(request, "quantizer")

    @pytest.fixture
    def params(self, strategy):
        return _cheap(strategy)

    @pytest.fixture
    def tolerance(self, strategy):
        # int8 rounds weights and activations; half precision keeps about three significant digits
        return {"none": 1e-5, "fp16": 1e-2}.get(strategy.name, 0.1)
