import copy

import pytest
import torch
from torch import nn

from orchestrator.training import evaluate_module
from orchestrator_plugins.pruners.channel import ChannelPruner, output_layers
from orchestrator_plugins.scorers.magnitude import MagnitudeScorer


def _prune(model, ctx, **params):
    scores = MagnitudeScorer().score(model, ctx, {"p": 1})
    return ChannelPruner().prune(model, scores, ctx, {"ratio": 0.5, "global_pruning": False} | params)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_pruning_removes_channels_and_keeps_the_model_running(make_ctx, digits_baseline, digits_data):
    ctx = make_ctx()
    model = copy.deepcopy(digits_baseline.model)
    pruned = _prune(model, ctx, ratio=0.5)
    convs = [m for m in pruned.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 8]  # half of 8, 16, 16: physically removed
    assert n_params(pruned) < 0.4 * n_params(digits_baseline.model)
    out = pruned(digits_data.test[0][:5])
    assert out.shape == (5, 10)  # the classifier's outputs are never pruned


def test_ratio_zero_leaves_outputs_unchanged(make_ctx, digits_baseline, digits_data):
    ctx = make_ctx()
    model = copy.deepcopy(digits_baseline.model)
    pruned = _prune(model, ctx, ratio=0.0)
    x = digits_data.test[0][:16]
    assert torch.equal(pruned(x), digits_baseline.model(x))


def test_magnitude_keeps_the_planted_important_channel(make_ctx):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10)).eval()
    with torch.no_grad():
        model[0].weight.mul_(0.01)
        model[0].weight[5] = 1.0  # channel 5 dominates every norm
        marker = model[0].weight[5].clone()
    pruned = _prune(model, make_ctx(), ratio=0.5)
    kept = pruned[0].weight
    assert kept.shape[0] == 4
    assert any(torch.equal(k, marker) for k in kept)


def test_output_layer_is_found_and_never_pruned(make_ctx, digits_baseline):
    model = copy.deepcopy(digits_baseline.model)
    ctx = make_ctx()
    assert output_layers(model, ctx.example_inputs(2)) == [model.classifier]
    pruned = _prune(model, ctx, ratio=0.8)
    assert pruned.classifier.out_features == 10


def test_pruning_then_finetuning_recovers_accuracy(make_ctx, digits_baseline, digits_task, digits_data):
    from orchestrator_plugins.distillers.finetune import FineTune

    ctx = make_ctx()
    pruned = _prune(copy.deepcopy(digits_baseline.model), ctx, ratio=0.5)
    before = evaluate_module(pruned, digits_task, *digits_data.test)
    tuned = FineTune().train(pruned, ctx, {"epochs": 4, "lr": 3e-3})
    after = evaluate_module(tuned, digits_task, *digits_data.test)
    assert after > before
    assert after > digits_baseline.test_metric - 0.05


@pytest.mark.parametrize("global_pruning", [False, True])
def test_pruned_model_exports_to_onnx(make_ctx, digits_baseline, tmp_path, global_pruning):
    from orchestrator.export import export_onnx, load_runner

    ctx = make_ctx()
    pruned = _prune(copy.deepcopy(digits_baseline.model), ctx, ratio=0.4, global_pruning=global_pruning).eval()
    path = export_onnx(pruned, ctx.example_inputs(4), tmp_path / "m.onnx")
    x = ctx.example_inputs(32)
    assert torch.allclose(load_runner(path)(x), pruned(x).detach(), atol=1e-4)
