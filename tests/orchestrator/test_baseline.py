import torch

from orchestrator.baseline import cache_dir, prepare_baseline


def test_baseline_is_trained_once_then_loaded_from_the_cache(digits_task, digits_data, digits_baseline):
    again = prepare_baseline(digits_task, digits_data, seed=0, log=lambda m: None)
    assert again.cached
    for a, b in zip(again.model.state_dict().values(), digits_baseline.model.state_dict().values()):
        assert torch.equal(a, b)
    assert again.test_metric == digits_baseline.test_metric > 0.9
    assert list((cache_dir() / "baselines").glob("digits-*-seed0.pt"))


def test_another_seed_trains_another_baseline(digits_task, digits_data):
    messages = []
    other = prepare_baseline(digits_task, digits_data, seed=1, log=messages.append)
    assert not other.cached and "training the digits baseline" in messages[0]
