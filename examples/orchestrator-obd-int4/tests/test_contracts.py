"""Both strategies pass the orchestrator's contract suites for their families (``orchestrator.testing``):
the properties every scorer and quantizer must have for a search to rely on them."""

from __future__ import annotations

import pytest

from orchestrator import testing

plugin = pytest.importorskip("orchestrator_obd_int4", reason="the example plugin is not installed: "
                             "pip install -e examples/orchestrator-obd-int4")


class TestOBDScorer(testing.ScorerContract):
    @pytest.fixture
    def strategy(self):
        return plugin.OBDScorer()

    @pytest.fixture
    def params(self):
        return {"batches": 1}


class TestInt4WeightQuantizer(testing.QuantizerContract):
    @pytest.fixture
    def strategy(self):
        return plugin.Int4WeightQuantizer()

    @pytest.fixture
    def task(self):
        return testing.TinyTask("mlp")  # the default CNN has one Linear layer; int4-weight is for Linear layers
