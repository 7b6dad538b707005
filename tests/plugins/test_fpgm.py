import copy

import torch
from torch import nn

from orchestrator.strategies import Scorer
from orchestrator_plugins.pruners.channel import ChannelPruner
from orchestrator_plugins.scorers import fpgm as fpgm_plugin
from orchestrator_plugins.scorers.fpgm import FPGMScorer

FAR, DUPLICATES = 7, (4, 5, 6)


def _planted_model():
    """Conv filters around one centre: four distinct, three near-duplicates of the centre (the
    redundant ones the geometric median sits among) and one far from all the others."""
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10)).eval()
    centre = torch.randn(1, 3, 3, generator=gen)
    with torch.no_grad():
        for i in range(8):
            model[0].weight[i] = centre + torch.randn(1, 3, 3, generator=gen) * (
                10.0 if i == FAR else 0.01 if i in DUPLICATES else 1.0)
    return model


def _per_filter(score):
    return score.flatten(1)[:, 0]


def test_registers_a_scorer_named_fpgm():
    registered = []
    fpgm_plugin.orchestrator_register_scorers(registered.append)
    assert [type(s) for s in registered] == [FPGMScorer]
    assert isinstance(registered[0], Scorer) and registered[0].name == "fpgm"


def test_scores_conv_and_linear_filters_and_leaves_norms_out(make_ctx, digits_baseline):
    model = copy.deepcopy(digits_baseline.model)
    scores = FPGMScorer().score(model, make_ctx(), {})
    params = dict(model.named_parameters())
    weights = {n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert set(scores) == {f"{n}.weight" for n in weights} | {"classifier.bias"}  # the convs have no bias
    for name, score in scores.items():
        assert score.shape == params[name].shape
        assert (score >= 0).all()
        flat = score.flatten(1) if score.dim() > 1 else score[:, None]
        assert torch.equal(flat, flat[:, :1].expand_as(flat))  # one value per filter
    assert torch.equal(scores["classifier.bias"], _per_filter(scores["classifier.weight"]))


def test_value_is_the_sum_of_distances_to_the_other_filters(make_ctx):
    model = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]]))
    score = FPGMScorer().score(model, make_ctx(), {})["weight"]
    expected = torch.tensor([5.0 + 1.0, 5.0 + (9 + 9) ** 0.5, 1.0 + (9 + 9) ** 0.5])
    assert torch.allclose(score[:, 0], expected) and torch.allclose(score[:, 1], expected)


def test_far_filter_ranks_first_and_redundant_duplicates_last(make_ctx):
    model = _planted_model()
    per_filter = _per_filter(FPGMScorer().score(model, make_ctx(), {})["0.weight"])
    assert per_filter.argmax().item() == FAR
    assert set(per_filter.argsort()[:3].tolist()) == set(DUPLICATES)


def test_transposed_convolution_scores_its_output_channels(make_ctx):
    model = nn.ConvTranspose2d(4, 6, 3)  # weight: (in, out, k, k)
    with torch.no_grad():
        model.weight[:, 2] += 5.0  # output channel 2 is far from the others
    scores = FPGMScorer().score(model, make_ctx(), {})
    per_out = scores["weight"].transpose(0, 1).flatten(1)
    assert scores["weight"].shape == model.weight.shape
    assert torch.equal(per_out, per_out[:, :1].expand_as(per_out))
    assert per_out[:, 0].argmax().item() == 2
    assert torch.equal(scores["bias"], per_out[:, 0])


def test_channel_pruning_drops_the_duplicates_and_keeps_the_far_filter(make_ctx):
    model = _planted_model()
    original = model[0].weight.detach().clone()
    ctx = make_ctx()
    pruned = ChannelPruner().prune(model, FPGMScorer().score(model, ctx, {}), ctx, {"ratio": 3 / 8})
    kept = pruned[0].weight
    assert kept.shape[0] == 5
    kept_ids = {i for i in range(8) if any(torch.equal(original[i], k) for k in kept)}
    assert kept_ids == set(range(8)) - set(DUPLICATES)
    assert pruned(ctx.example_inputs(3)).shape == (3, 10)


def test_channel_pruning_the_digits_model_runs(make_ctx, digits_baseline, digits_data):
    ctx = make_ctx()
    model = copy.deepcopy(digits_baseline.model)
    pruned = ChannelPruner().prune(model, FPGMScorer().score(model, ctx, {}), ctx, {"ratio": 0.5})
    assert [m.out_channels for m in pruned.modules() if isinstance(m, nn.Conv2d)] == [4, 8, 8]
    assert pruned(digits_data.test[0][:5]).shape == (5, 10)


class _Mask(nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, weight):
        return weight * self.mask


def test_a_masked_weight_is_scored_on_its_effective_value_under_its_parameter_name(make_ctx):
    from torch.nn.utils import parametrize

    model = _planted_model()
    expected = FPGMScorer().score(copy.deepcopy(model), make_ctx(), {})["0.weight"]
    parametrize.register_parametrization(model[0], "weight", _Mask(torch.ones_like(model[0].weight)))
    scores = FPGMScorer().score(model, make_ctx(), {})
    assert "0.parametrizations.weight.original" in scores and "0.weight" not in scores
    assert torch.allclose(scores["0.parametrizations.weight.original"], expected)
    mask = torch.ones_like(model[0].weight)
    mask[FAR] = 0.0  # the far filter pruned away: as zeros it is no longer far from the others
    model[0].parametrizations.weight[0].mask.copy_(mask)
    masked = FPGMScorer().score(model, make_ctx(), {})["0.parametrizations.weight.original"]
    assert masked.flatten(1)[:, 0].argmax().item() != FAR
