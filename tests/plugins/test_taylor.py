import copy

import torch
from torch import nn

from orchestrator.params import Int
from orchestrator.strategies import Scorer
from orchestrator.task import TaskData
from orchestrator_plugins.pruners.channel import ChannelPruner
from orchestrator_plugins.scorers import taylor as taylor_plugin
from orchestrator_plugins.scorers.random import RandomScorer
from orchestrator_plugins.scorers.taylor import TaylorScorer


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    def ranks(x):
        r = torch.empty(len(x), dtype=torch.float64)
        r[x.argsort()] = torch.arange(len(x), dtype=torch.float64)
        return r - r.mean()

    ra, rb = ranks(a), ranks(b)
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def test_registers_a_scorer_named_taylor_with_a_batches_parameter():
    registered = []
    taylor_plugin.orchestrator_register_scorers(registered.append)
    [scorer] = registered
    assert isinstance(scorer, TaylorScorer) and isinstance(scorer, Scorer) and scorer.name == "taylor"
    assert isinstance(scorer.space["batches"], Int) and scorer.space["batches"].log
    assert scorer.space["batches"].contains(scorer.defaults["batches"])


def test_scores_every_parameter_non_negative_and_reproducibly(make_ctx, digits_baseline):
    model = copy.deepcopy(digits_baseline.model)
    scores = TaylorScorer().score(model, make_ctx(), {"batches": 2})
    assert set(scores) == {n for n, _ in model.named_parameters()}
    for name, param in model.named_parameters():
        assert scores[name].shape == param.shape
        assert (scores[name] >= 0).all()
        assert not scores[name].requires_grad
    again = TaylorScorer().score(model, make_ctx(), {"batches": 2})
    assert all(torch.equal(scores[n], again[n]) for n in scores)
    more = TaylorScorer().score(model, make_ctx(), {"batches": 8})
    assert sum(s.sum() for s in more.values()) > sum(s.sum() for s in scores.values())  # accumulated


def test_leaves_the_model_bit_identical_in_eval_mode_without_gradients(make_ctx, digits_baseline):
    model = copy.deepcopy(digits_baseline.model).train()  # even a model handed over in train mode
    model.features[0].weight.requires_grad_(False)  # and a frozen parameter stays frozen
    before = {k: v.clone() for k, v in model.state_dict().items()}  # weights and BatchNorm statistics
    scores = TaylorScorer().score(model, make_ctx(), {"batches": 4})
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert not model.features[0].weight.requires_grad
    assert scores["features.0.weight"].sum() > 0  # still scored


def test_a_weight_on_a_dead_input_is_unimportant_however_large(make_ctx, digits_task):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 3, generator=gen)
    x[:, 1] = 0.0  # feature 1 is always zero: its weights never change the output
    y = (x[:, 0] > 0).long()
    data = TaskData(train=(x, y), val=(x, y), test=(x, y))
    model = nn.Linear(3, 2).eval()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-1.0, 5.0, 0.01], [1.0, -5.0, -0.01]]))
    score = TaylorScorer().score(model, make_ctx(data=data, task=digits_task), {"batches": 4})["weight"]
    assert (score[:, 1] == 0).all()  # the largest weights, yet removing them changes nothing
    assert (score[:, 0] > score[:, 2]).all() and (score[:, 0] > 0).all()


def test_predicts_the_loss_increase_of_removing_a_weight_better_than_random(make_ctx, digits_baseline,
                                                                            digits_task, digits_data):
    ctx = make_ctx(seed=0)
    model = copy.deepcopy(digits_baseline.model).eval()
    taylor = TaylorScorer().score(model, ctx, {"batches": 8})
    rand = RandomScorer().score(model, ctx, {})
    x, y = digits_data.val  # a fixed batch the scorer has not seen
    gen = torch.Generator().manual_seed(0)
    predicted, guessed, actual = [], [], []
    with torch.no_grad():
        base = digits_task.loss(model(x), y).item()
        for name, param in model.named_parameters():
            if param.dim() != 4:
                continue
            flat = param.view(-1)
            for i in torch.randperm(flat.numel(), generator=gen)[:60].tolist():
                old = flat[i].item()
                flat[i] = 0.0
                actual.append(digits_task.loss(model(x), y).item() - base)
                flat[i] = old
                predicted.append(taylor[name].view(-1)[i].item())
                guessed.append(rand[name].view(-1)[i].item())
    actual = torch.tensor(actual)
    taylor_rho = _spearman(torch.tensor(predicted), actual)
    random_rho = _spearman(torch.tensor(guessed), actual)
    assert taylor_rho > 0.4, taylor_rho  # about 0.6 here, random about 0
    assert taylor_rho > random_rho + 0.3, (taylor_rho, random_rho)


def test_channel_pruning_with_taylor_scores_runs(make_ctx, digits_baseline, digits_data):
    ctx = make_ctx()
    model = copy.deepcopy(digits_baseline.model)
    pruned = ChannelPruner().prune(model, TaylorScorer().score(model, ctx, {"batches": 4}), ctx, {"ratio": 0.5})
    assert [m.out_channels for m in pruned.modules() if isinstance(m, nn.Conv2d)] == [4, 8, 8]
    assert pruned(digits_data.test[0][:5]).shape == (5, 10)


def test_a_masked_weight_scores_zero(make_ctx, digits_baseline):
    from torch.nn.utils import parametrize

    class Mask(nn.Module):
        def __init__(self, mask):
            super().__init__()
            self.register_buffer("mask", mask)

        def forward(self, weight):
            return weight * self.mask

    model = copy.deepcopy(digits_baseline.model)
    mask = torch.ones_like(model.features[3].weight)
    mask[:, :, 0] = 0.0
    parametrize.register_parametrization(model.features[3], "weight", Mask(mask))
    scores = TaylorScorer().score(model, make_ctx(), {"batches": 2})
    score = scores["features.3.parametrizations.weight.original"]
    assert (score[:, :, 0] == 0).all() and (score[:, :, 1:] > 0).any()
