"""Every pruner x distiller x quantizer runs end to end on every model shape.

score -> prune -> train -> quantize -> export -> measure, on tiny models of the shapes people
compress (tests/models.py). Pruning followed by quantization is where older toolkits break.
A combination may only fail by declaring itself inapplicable, with its reason.
"""

from __future__ import annotations

import itertools
import math

import onnx
import pytest
import torch

from orchestrator.baseline import prepare_baseline
from orchestrator.config import LatencyConfig
from orchestrator.context import TrialContext
from orchestrator.errors import InapplicableError
from orchestrator.export import load_runner
from orchestrator.pipeline import run_recipe
from orchestrator.recipe import Recipe, StageChoice

from models import SHAPES, ShapeTask

#: Small settings that keep each combination to about a second.
FAST = {"ratio": 0.5, "sparsity": 0.5, "steps": 2, "epochs_per_step": 1, "rounds": 2, "epochs_per_round": 1,
        "epochs": 1, "calibration_batches": 2, "batches": 1}
INT8 = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}


def _catalogue():
    from orchestrator.pluginmanager import get_host

    return get_host().catalogue


FAMILIES = {family: sorted(_catalogue().family(family)) for family in ("pruner", "distiller", "quantizer")}
COMBINATIONS = list(itertools.product(FAMILIES["pruner"], FAMILIES["distiller"], FAMILIES["quantizer"]))


@pytest.fixture(scope="module", params=SHAPES)
def shape(request, tmp_path_factory):
    if request.param == "bert":
        pytest.importorskip("transformers")
    task = ShapeTask(request.param)
    data = task.load_data(seed=0)
    base = prepare_baseline(task, data, seed=0, log=lambda m: None)
    return task, data, base


def _choice(family: str, name: str) -> StageChoice:
    strategy = _catalogue().family(family)[name]
    params = {k: FAST.get(k, v) for k, v in strategy.defaults.items()}
    return StageChoice(strategy=name, params=params)


@pytest.mark.parametrize("pruner, distiller, quantizer", COMBINATIONS, ids=["-".join(c) for c in COMBINATIONS])
def test_combination_runs_end_to_end(shape, pruner, distiller, quantizer, tmp_path):
    task, data, base = shape
    catalogue = _catalogue()
    needs_scores = catalogue.family("pruner")[pruner].needs_scores
    recipe = Recipe(score=_choice("scorer", "magnitude") if needs_scores else StageChoice(),
                    prune=_choice("pruner", pruner), train=_choice("distiller", distiller),
                    quantize=_choice("quantizer", quantizer))
    ctx = TrialContext(task=task, data=data, teacher=base.model, seed=0, workdir=tmp_path,
                       rewind_state=base.rewind_state)
    try:
        candidate = run_recipe(recipe, ctx, catalogue, LatencyConfig(batch_size=8, repeats=1, warmup=0), 0.5)
    except InapplicableError as exc:
        assert str(exc), "an inapplicable combination must say why"
        pytest.skip(f"declared inapplicable: {exc}")
    metrics = candidate.metrics
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    x = data.test[0][:5]
    assert load_runner(candidate.artifact)(x).shape == (5, 4)  # the shipped file runs
    baseline_params = sum(int(torch.count_nonzero(p)) for p in base.model.parameters())
    if pruner != "none":
        assert metrics["params"] < baseline_params
    if quantizer in ("static-int8", "dynamic-int8", "qat"):
        dtypes = {init.data_type for init in onnx.load(str(candidate.artifact)).graph.initializer}
        assert dtypes & INT8
