import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from orchestrator_plugins.pruners import lottery
from orchestrator_plugins.pruners.lottery import LotteryPruner, round_sparsities

FAST = {"sparsity": 0.8, "rounds": 1, "epochs_per_round": 1, "lr": 3e-3, "scope": "per-layer"}


def _prune(model, ctx, **params):
    return LotteryPruner().prune(model, None, ctx, FAST | params)


def convs(model):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def conv_names(model):
    return [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def zero_fraction(weights):
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def magnitude_mask(weight, sparsity):
    """Keep-mask of one-shot layer-wise magnitude pruning, computed here independently."""
    k = round(sparsity * weight.numel())
    keep = torch.ones(weight.numel(), dtype=torch.bool)
    keep[weight.detach().abs().flatten().argsort()[:k]] = False
    return keep.view_as(weight)


def rewound(digits_task, rewind_state):
    model = digits_task.build_model()
    model.load_state_dict(rewind_state)
    return model.eval()


def test_inapplicable_without_rewind_weights(make_ctx, digits_baseline):
    reason = LotteryPruner().applicable(digits_baseline.model, make_ctx(rewind_state=None))
    assert reason and "rewind" in reason
    assert LotteryPruner().applicable(digits_baseline.model, make_ctx()) is None
    state = dict(digits_baseline.rewind_state)
    state.pop("features.3.weight")
    assert "features.3.weight" in LotteryPruner().applicable(digits_baseline.model, make_ctx(rewind_state=state))


def test_one_round_masks_the_trained_weights_by_magnitude_and_rewinds_the_survivors(make_ctx, digits_baseline):
    ctx = make_ctx()
    rewind = digits_baseline.rewind_state
    model = _prune(copy.deepcopy(digits_baseline.model), ctx, sparsity=0.8, rounds=1)
    for name, trained, pruned in zip(conv_names(model), convs(digits_baseline.model), convs(model)):
        keep = magnitude_mask(trained.weight, 0.8)
        assert torch.equal(pruned.weight != 0, keep)  # the mask: magnitude pruning of the trained weights
        assert torch.equal(pruned.weight[keep], rewind[name][keep])  # the survivors: back at the rewind point
    # everything else is rewound too: batch-norm parameters and statistics; the (unpruned) classifier
    assert torch.equal(model.features[1].running_mean, rewind["features.1.running_mean"])
    assert torch.equal(model.classifier.weight, rewind["classifier.weight"])
    assert not torch.equal(model.classifier.weight, digits_baseline.model.classifier.weight)


def test_rounds_prune_the_same_fraction_of_the_remaining_weights(make_ctx, digits_baseline, monkeypatch):
    seen = []
    real_fit = lottery.fit

    def recording_fit(model, *args, **kwargs):
        seen.append(copy.deepcopy(model))
        return real_fit(model, *args, **kwargs)

    monkeypatch.setattr(lottery, "fit", recording_fit)
    ctx = make_ctx()
    rewind = digits_baseline.rewind_state
    model = _prune(copy.deepcopy(digits_baseline.model), ctx, sparsity=0.75, rounds=2)
    assert round_sparsities(0.75, 2) == pytest.approx([0.5, 0.75])
    (round2,) = seen  # round 2 trains from the rewound weights under round 1's mask
    for name, trained, during in zip(conv_names(model), convs(digits_baseline.model), convs(round2)):
        keep = magnitude_mask(trained.weight, 0.5)
        assert torch.equal(during.weight != 0, keep)
        assert torch.equal(during.weight[keep], rewind[name][keep])
    for name, first, final in zip(conv_names(model), convs(round2), convs(model)):
        assert abs(zero_fraction([final.weight]) - 0.75) <= 1 / final.weight.numel()
        assert not final.weight[first.weight == 0].any()  # pruned in round 1 stays pruned
        keep = final.weight != 0
        assert torch.equal(final.weight[keep], rewind[name][keep])


def test_global_scope_hits_the_overall_target(make_ctx, digits_baseline):
    model = _prune(copy.deepcopy(digits_baseline.model), make_ctx(), sparsity=0.9, scope="global")
    assert zero_fraction([c.weight for c in convs(model)]) == pytest.approx(0.9, abs=1e-3)


def test_sparsity_zero_gives_the_rewound_dense_network(make_ctx, digits_baseline, digits_task, digits_data):
    model = _prune(copy.deepcopy(digits_baseline.model), make_ctx(), sparsity=0.0)
    x = digits_data.test[0][:16]
    assert torch.equal(model(x), rewound(digits_task, digits_baseline.rewind_state)(x))
    assert not any(parametrize.is_parametrized(m) for m in model.modules())


def test_training_the_ticket_keeps_the_mask_and_finalize_exports(make_ctx, digits_baseline, digits_task,
                                                                  digits_data, tmp_path):
    from orchestrator.export import export_onnx, load_runner
    from orchestrator.training import evaluate_module
    from orchestrator_plugins.distillers.finetune import FineTune

    ctx = make_ctx()
    pruner = LotteryPruner()
    model = _prune(copy.deepcopy(digits_baseline.model), ctx, sparsity=0.8)
    masks = [c.weight == 0 for c in convs(model)]
    tuned = FineTune().train(model, ctx, {"epochs": 2, "lr": 3e-3})
    assert all(not c.weight[m].any() for c, m in zip(convs(tuned), masks))
    assert evaluate_module(tuned, digits_task, *digits_data.test) > 0.5  # the sparse ticket trains
    final = pruner.finalize(tuned, ctx, FAST).eval()
    assert not any(parametrize.is_parametrized(m) for m in final.modules())
    assert not [n for n, _ in list(final.named_buffers()) + list(final.named_parameters())
                if "mask" in n or "orig" in n]
    assert all(torch.equal(c.weight == 0, m) for c, m in zip(convs(final), masks))
    path = export_onnx(final, ctx.example_inputs(4), tmp_path / "m.onnx")
    x = ctx.example_inputs(32)
    assert torch.allclose(load_runner(path)(x), final(x).detach(), atol=1e-4)


def test_needs_no_scorer_and_declares_its_space():
    pruner = LotteryPruner()
    assert not pruner.needs_scores
    assert (pruner.space["rounds"].low, pruner.space["rounds"].high) == (1, 5)
    assert set(pruner.defaults) == set(pruner.space)
    assert all(pruner.space[k].contains(v) for k, v in pruner.defaults.items())
