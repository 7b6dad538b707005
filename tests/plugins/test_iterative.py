import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from orchestrator_plugins.pruners import iterative
from orchestrator_plugins.pruners.iterative import IterativePruner, schedule
from orchestrator_plugins.scorers.magnitude import MagnitudeScorer

FAST = {"granularity": "unstructured", "sparsity": 0.8, "ratio": 0.5, "scope": "per-layer", "steps": 3,
        "schedule": "cubic", "epochs_per_step": 1, "lr": 3e-3}


def _prune(model, ctx, **params):
    scores = MagnitudeScorer().score(model, ctx, {"p": 1})
    return IterativePruner().prune(model, scores, ctx, FAST | params)


def convs(model):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def zero_fraction(weights):
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


@pytest.fixture
def fine_tunes(monkeypatch):
    """Records the model at each fine-tuning between steps (the real training still runs)."""
    seen = []
    real_fit = iterative.fit

    def recording_fit(model, *args, **kwargs):
        seen.append(copy.deepcopy(model))
        return real_fit(model, *args, **kwargs)

    monkeypatch.setattr(iterative, "fit", recording_fit)
    return seen


@pytest.mark.parametrize("steps", [2, 3, 5, 10])
def test_cubic_schedule_follows_zhu_and_gupta(steps):
    final = 0.8
    plan = schedule("cubic", final, steps)
    assert plan == pytest.approx([final + (0 - final) * (1 - t / steps) ** 3 for t in range(1, steps + 1)])
    assert plan[-1] == pytest.approx(final)
    assert all(a < b for a, b in zip(plan, plan[1:]))
    gains = [b - a for a, b in zip([0.0] + plan, plan)]
    assert all(a > b for a, b in zip(gains, gains[1:]))  # most is pruned early, least at the end
    assert schedule("linear", final, steps) == pytest.approx([final * t / steps for t in range(1, steps + 1)])


def test_unstructured_steps_follow_the_schedule_and_reach_the_target(make_ctx, digits_baseline, fine_tunes):
    ctx = make_ctx()
    model = _prune(copy.deepcopy(digits_baseline.model), ctx, steps=3, schedule="cubic", sparsity=0.8)
    plan = schedule("cubic", 0.8, 3)
    assert len(fine_tunes) == 2  # between the steps; the train stage follows the last one
    for seen, target in zip(fine_tunes, plan):
        for conv in convs(seen):
            assert abs(zero_fraction([conv.weight]) - target) <= 1 / conv.weight.numel()
    for conv in convs(model):  # per-layer scope: every layer at the final sparsity
        assert abs(zero_fraction([conv.weight]) - 0.8) <= 1 / conv.weight.numel()
    # masks only grow: what one step pruned stays pruned, although fine-tuning ran in between
    for earlier, later in zip(fine_tunes + [model], fine_tunes[1:] + [model]):
        for a, b in zip(convs(earlier), convs(later)):
            assert not b.weight[a.weight == 0].any()


def test_global_scope_reaches_the_overall_target(make_ctx, digits_baseline):
    model = _prune(copy.deepcopy(digits_baseline.model), make_ctx(), scope="global", schedule="linear", steps=2,
                   sparsity=0.85)
    weights = [c.weight for c in convs(model)]
    assert zero_fraction(weights) == pytest.approx(0.85, abs=1e-3)
    assert len({round(zero_fraction([w]), 2) for w in weights}) > 1
    assert torch.count_nonzero(model.classifier.weight) == model.classifier.weight.numel()


def test_channel_granularity_removes_channels_step_by_step(make_ctx, digits_baseline, digits_data, fine_tunes):
    widths = [c.out_channels for c in convs(digits_baseline.model)]  # 8, 16, 16
    model = _prune(copy.deepcopy(digits_baseline.model), make_ctx(), granularity="channel", ratio=0.5, steps=3)
    plan = schedule("cubic", 0.5, 3)
    # each step prunes the fraction of the remaining channels that brings the cumulative one to plan[t]
    for seen, target in zip(fine_tunes, plan):
        assert [c.out_channels for c in convs(seen)] == [int(w * (1 - target)) for w in widths]
    assert [c.out_channels for c in convs(model)] == [4, 8, 8]  # physically removed, as one-shot `channel`
    assert model(digits_data.test[0][:5]).shape == (5, 10)
    assert model.classifier.out_features == 10
    assert not any(parametrize.is_parametrized(m) for m in model.modules())


def test_channel_granularity_with_global_scope_reaches_the_total(make_ctx, digits_baseline):
    model = _prune(copy.deepcopy(digits_baseline.model), make_ctx(), granularity="channel", ratio=0.5, steps=4,
                   scope="global", schedule="linear")
    widths = [c.out_channels for c in convs(model)]
    assert sum(widths) == 20 and widths != [4, 8, 8]  # half of the 40 channels, ranked across layers


def test_channel_granularity_narrows_attention_models(make_ctx):
    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(8, 8)
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.head = nn.Linear(8, 10)

        def forward(self, x):
            tokens = self.embed(x.flatten(1, 2))
            return self.head(self.attn(tokens, tokens, tokens, need_weights=False)[0].mean(1))

    model = Attention().eval()
    ctx = make_ctx(teacher=model)
    pruned = _prune(model, ctx, granularity="channel", ratio=0.5)
    assert pruned.attn.embed_dim == 4 and pruned.attn.num_heads == 2  # each head narrowed, heads kept
    assert pruned(ctx.example_inputs(3)).shape == (3, 10)


@pytest.mark.parametrize("granularity", ["unstructured", "channel"])
def test_zero_target_leaves_outputs_unchanged(make_ctx, digits_baseline, digits_data, fine_tunes, granularity):
    model = _prune(copy.deepcopy(digits_baseline.model), make_ctx(), granularity=granularity, sparsity=0.0,
                   ratio=0.0)
    x = digits_data.test[0][:16]
    assert torch.equal(model(x), digits_baseline.model(x))
    assert fine_tunes == []  # nothing pruned, nothing trained


def test_first_step_uses_the_scorer_and_later_steps_rescore_the_current_model(make_ctx, digits_baseline,
                                                                                 fine_tunes):
    ctx = make_ctx()
    model = copy.deepcopy(digits_baseline.model)
    # a scorer that ranks by *inverse* magnitude: the first step must prune the largest weights
    scores = {n: 1 / (p.detach().abs() + 1e-8) for n, p in model.named_parameters()}
    rescored = []

    def rescore(m):
        rescored.append(m)
        return MagnitudeScorer().score(m, ctx, {"p": 1})

    ctx.rescore = rescore  # what the core may offer: the recipe's scorer bound to its parameters
    IterativePruner().prune(model, scores, ctx, FAST | {"steps": 3, "sparsity": 0.5})
    first = fine_tunes[0]
    for base, seen in zip(convs(digits_baseline.model), convs(first)):
        pruned = seen.weight == 0
        assert base.weight[pruned].abs().min() >= base.weight[~pruned].abs().max()
    assert len(rescored) == 2 and all(m is model for m in rescored)
    for conv in convs(model):  # the rescored (parametrized) names still reach every layer
        assert abs(zero_fraction([conv.weight]) - 0.5) <= 1 / conv.weight.numel()


def test_fine_tuning_does_not_regrow_and_finalize_exports(make_ctx, digits_baseline, tmp_path):
    from orchestrator.export import export_onnx, load_runner
    from orchestrator_plugins.distillers.finetune import FineTune

    ctx = make_ctx()
    pruner = IterativePruner()
    model = _prune(copy.deepcopy(digits_baseline.model), ctx, steps=2, sparsity=0.9)
    masks = [c.weight == 0 for c in convs(model)]
    tuned = FineTune().train(model, ctx, {"epochs": 1, "lr": 3e-3})
    assert all(not c.weight[m].any() for c, m in zip(convs(tuned), masks))
    final = pruner.finalize(tuned, ctx, FAST).eval()
    assert not any(parametrize.is_parametrized(m) for m in final.modules())
    assert not [n for n, _ in final.named_buffers() if "mask" in n]
    assert all(torch.equal(c.weight == 0, m) for c, m in zip(convs(final), masks))  # the zeros, exactly
    path = export_onnx(final, ctx.example_inputs(4), tmp_path / "m.onnx")
    x = ctx.example_inputs(32)
    assert torch.allclose(load_runner(path)(x), final(x).detach(), atol=1e-4)


def test_declares_every_hyper_parameter():
    pruner = IterativePruner()
    assert set(pruner.space) == {"granularity", "sparsity", "ratio", "scope", "steps", "schedule", "epochs_per_step",
                                 "lr"}
    assert (pruner.space["steps"].low, pruner.space["steps"].high) == (2, 10)
    assert set(pruner.defaults) == set(pruner.space)
    assert all(pruner.space[k].contains(v) for k, v in pruner.defaults.items())
    assert pruner.describe(FAST) == "iterative unstructured 80% in 3 cubic steps, 1 epochs each lr=0.003"
