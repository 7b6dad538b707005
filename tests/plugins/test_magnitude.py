import torch
from torch import nn

from orchestrator_plugins.scorers.magnitude import MagnitudeScorer


def test_scores_rank_planted_large_weights_first(make_ctx):
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.fill_(0.01)
        model.weight[1, 2] = 5.0
    scores = MagnitudeScorer().score(model, make_ctx(), {"p": 1})
    assert scores["weight"].shape == model.weight.shape
    assert scores["weight"].argmax().item() == 1 * 4 + 2
    assert (scores["weight"] >= 0).all()


def test_p2_squares_magnitudes(make_ctx):
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-3.0, 0.5]]))
    scores = MagnitudeScorer().score(model, make_ctx(), {"p": 2})
    assert torch.allclose(scores["weight"], torch.tensor([[9.0, 0.25]]))
