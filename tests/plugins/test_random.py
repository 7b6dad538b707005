import copy

import torch
from torch import nn

from orchestrator.strategies import Scorer
from orchestrator_plugins.pruners.channel import ChannelPruner
from orchestrator_plugins.scorers import random as random_plugin
from orchestrator_plugins.scorers.random import RandomScorer


def test_registers_a_scorer_named_random():
    registered = []
    random_plugin.orchestrator_register_scorers(registered.append)
    assert [type(s) for s in registered] == [RandomScorer]
    assert isinstance(registered[0], Scorer) and registered[0].name == "random"
    assert registered[0].space == {} and registered[0].defaults == {}


def test_scores_every_parameter_uniformly_in_the_unit_interval(make_ctx, digits_baseline):
    model = copy.deepcopy(digits_baseline.model)
    scores = RandomScorer().score(model, make_ctx(), {})
    assert set(scores) == {n for n, _ in model.named_parameters()}
    for name, param in model.named_parameters():
        assert scores[name].shape == param.shape
        assert ((scores[name] >= 0) & (scores[name] < 1)).all()
    flat = torch.cat([s.flatten() for s in scores.values()])
    assert 0.45 < flat.mean().item() < 0.55  # uniform, not constant
    assert flat.unique().numel() > 0.99 * flat.numel()


def test_same_seed_same_scores_other_seed_other_scores(make_ctx, digits_baseline):
    model = digits_baseline.model
    first = RandomScorer().score(model, make_ctx(seed=3), {})
    again = RandomScorer().score(copy.deepcopy(model), make_ctx(seed=3), {})
    other = RandomScorer().score(model, make_ctx(seed=4), {})
    assert all(torch.equal(first[n], again[n]) for n in first)
    assert all(not torch.equal(first[n], other[n]) for n in first if first[n].numel() > 1)


def test_random_channel_pruning_runs_and_depends_on_the_seed(make_ctx, digits_baseline, digits_data):
    kept = []
    for seed in (0, 1):
        ctx = make_ctx(seed=seed)
        model = copy.deepcopy(digits_baseline.model)
        original = model.features[0].weight.detach().clone()
        pruned = ChannelPruner().prune(model, RandomScorer().score(model, ctx, {}), ctx, {"ratio": 0.5})
        assert pruned(digits_data.test[0][:5]).shape == (5, 10)
        first = pruned.features[0].weight
        assert first.shape[0] == 4
        kept.append({i for i in range(len(original)) if any(torch.equal(original[i], k) for k in first)})
    assert kept[0] != kept[1]
