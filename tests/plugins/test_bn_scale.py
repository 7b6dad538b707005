import copy

import torch
from torch import nn
from torch.nn import functional as F

from orchestrator.strategies import Scorer
from orchestrator_plugins.pruners.channel import ChannelPruner
from orchestrator_plugins.scorers import bn_scale as bn_scale_plugin
from orchestrator_plugins.scorers.bn_scale import BNScaleScorer

IMPORTANT = 5


def _planted_model():
    """conv -> BN -> ReLU -> linear, every gamma small but channel 5's (and a negative one)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 8 * 8, 10)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.linspace(0.1, 0.3, 8))
        model[1].weight[IMPORTANT] = 4.0
        model[1].weight[2] = -0.9  # |gamma| counts, not its sign
    return model


class PreActivation(nn.Module):
    """conv -> functional ReLU -> BN: the BatchNorm does not read the conv's output directly."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn, self.head = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Linear(4 * 64, 3)

    def forward(self, x):
        return self.head(self.bn(F.relu(self.conv(x))).flatten(1))


class Residual(nn.Module):
    """A BatchNorm fed by a sum has no single producer."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(1, 4, 1)
        self.bn, self.head = nn.BatchNorm2d(4), nn.Linear(4 * 64, 3)

    def forward(self, x):
        return self.head(self.bn(self.a(x) + self.b(x)).flatten(1))


def test_registers_a_scorer_named_bn_scale():
    registered = []
    bn_scale_plugin.orchestrator_register_scorers(registered.append)
    assert [type(s) for s in registered] == [BNScaleScorer]
    assert isinstance(registered[0], Scorer) and registered[0].name == "bn-scale"


def test_inapplicable_without_batchnorm(make_ctx, digits_baseline):
    ctx = make_ctx()
    no_bn = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 10))
    reason = BNScaleScorer().applicable(no_bn, ctx)
    assert reason and "BatchNorm" in reason
    no_scale = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8, affine=False))
    assert "affine" in BNScaleScorer().applicable(no_scale, ctx)
    assert BNScaleScorer().applicable(digits_baseline.model, ctx) is None
    assert BNScaleScorer().applicable(_planted_model(), ctx) is None


def test_gamma_scores_the_batchnorm_and_the_filters_that_feed_it(make_ctx):
    model = _planted_model()
    scores = BNScaleScorer().score(model, make_ctx(), {})
    gamma = model[1].weight.detach().abs()
    assert set(scores) == {"0.weight", "0.bias", "1.weight", "1.bias"}  # the linear head is left out
    assert torch.equal(scores["1.weight"], gamma) and torch.equal(scores["1.bias"], gamma)
    assert scores["0.weight"].shape == model[0].weight.shape
    assert torch.equal(scores["0.weight"], gamma.view(-1, 1, 1, 1).expand(-1, 1, 3, 3))
    assert torch.equal(scores["0.bias"], gamma)
    assert scores["0.weight"].flatten(1)[:, 0].argmax().item() == IMPORTANT
    assert all((s >= 0).all() for s in scores.values())
    assert scores["1.weight"][2] == 0.9


def test_every_digits_conv_gets_the_gamma_of_its_batchnorm(make_ctx, digits_baseline):
    model = copy.deepcopy(digits_baseline.model)
    scores = BNScaleScorer().score(model, make_ctx(), {})
    params = dict(model.named_parameters())
    for conv, bn in (("features.0", "features.1"), ("features.3", "features.4"), ("features.6", "features.7")):
        gamma = params[f"{bn}.weight"].detach().abs()
        assert torch.equal(scores[f"{bn}.weight"], gamma)
        assert scores[f"{conv}.weight"].shape == params[f"{conv}.weight"].shape
        assert torch.equal(scores[f"{conv}.weight"].flatten(1), gamma[:, None].expand(-1, params[f"{conv}.weight"][0].numel()))
    assert not any(name.startswith("classifier") for name in scores)


def test_the_producer_is_found_through_an_activation(make_ctx):
    model = PreActivation().eval()
    with torch.no_grad():
        model.bn.weight.copy_(torch.tensor([0.1, 2.0, 0.3, 0.4]))
    scores = BNScaleScorer().score(model, make_ctx(), {})
    assert torch.equal(scores["conv.weight"].flatten(1)[:, 0], torch.tensor([0.1, 2.0, 0.3, 0.4]))


def test_direct_pairs_are_still_found_when_the_dependency_graph_fails(make_ctx, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("untraceable")

    monkeypatch.setattr(bn_scale_plugin, "_trace_producers", broken)
    messages = []
    model = _planted_model()
    scores = BNScaleScorer().score(model, make_ctx(log=messages.append), {})
    assert torch.equal(scores["0.weight"].flatten(1)[:, 0], model[1].weight.detach().abs())
    assert any("untraceable" in m for m in messages)


def test_a_batchnorm_after_a_sum_scores_only_itself(make_ctx):
    scores = BNScaleScorer().score(Residual().eval(), make_ctx(), {})
    assert set(scores) == {"bn.weight", "bn.bias"}


def test_a_masked_conv_is_scored_under_its_parameter_name(make_ctx):
    from torch.nn.utils import parametrize

    class Mask(nn.Module):
        def forward(self, weight):
            return weight * (weight.abs() > 0.05)

    model = _planted_model()
    parametrize.register_parametrization(model[0], "weight", Mask())
    scores = BNScaleScorer().score(model, make_ctx(), {})
    gamma = model[1].weight.detach().abs()
    assert torch.equal(scores["0.parametrizations.weight.original"].flatten(1)[:, 0], gamma)


def test_channel_pruning_keeps_the_channel_with_the_large_gamma(make_ctx):
    model = _planted_model()
    marker = model[0].weight[IMPORTANT].detach().clone()
    ctx = make_ctx()
    pruned = ChannelPruner().prune(model, BNScaleScorer().score(model, ctx, {}), ctx, {"ratio": 0.5})
    assert pruned[0].weight.shape[0] == 4 and pruned[1].num_features == 4
    assert any(torch.equal(k, marker) for k in pruned[0].weight)
    kept = sorted(pruned[1].weight.detach().abs().tolist())
    assert kept == sorted(_planted_model()[1].weight.detach().abs().tolist())[-4:]  # the four largest |gamma|
    assert pruned(ctx.example_inputs(3)).shape == (3, 10)


def test_channel_pruning_the_digits_model_runs(make_ctx, digits_baseline, digits_data):
    ctx = make_ctx()
    model = copy.deepcopy(digits_baseline.model)
    pruned = ChannelPruner().prune(model, BNScaleScorer().score(model, ctx, {}), ctx, {"ratio": 0.5})
    assert [m.out_channels for m in pruned.modules() if isinstance(m, nn.Conv2d)] == [4, 8, 8]
    assert pruned(digits_data.test[0][:5]).shape == (5, 10)
