import torch

from orchestrator.export import export_onnx, load_runner
from orchestrator_plugins.pruners.channel import ChannelPruner
from orchestrator_plugins.scorers.magnitude import MagnitudeScorer
from orchestrator_plugins.tasks.tiny_text import N_SIGNALS, TinyTextTask, make_sequences


def test_labels_are_the_most_frequent_signal_token():
    ids, labels = make_sequences(200, 16, 32, seed=1)
    for row, label in zip(ids, labels):
        counts = torch.bincount(row[row < N_SIGNALS], minlength=N_SIGNALS)
        assert counts.sum() >= 1 and label == counts.argmax()


def test_data_is_generated_locally_and_reproducibly():
    task = TinyTextTask(num_samples=500)
    a, b = task.load_data(seed=0), task.load_data(seed=3)
    assert torch.equal(a.train[0], b.train[0])  # the data set does not depend on the run's seed
    assert len(a.train[0]) + len(a.val[0]) + len(a.test[0]) == 500


class _Ctx:
    def __init__(self, x):
        self.x = x

    def example_inputs(self, n):
        return self.x[:n]


def test_heads_and_widths_prune_consistently_and_export(tmp_path):
    task = TinyTextTask(num_samples=200, hidden=32, heads=4)
    x = task.load_data(0).test[0]
    for prune_heads, heads_left in ((False, 4), (True, 2)):
        model = task.build_model().eval()
        before = sum(p.numel() for p in model.parameters())
        ChannelPruner().prune(model, MagnitudeScorer().score(model, None, {"p": 1}), _Ctx(x),
                              {"ratio": 0.5, "prune_heads": prune_heads})
        attention = model.layers[0].attention
        assert attention.num_attention_heads == heads_left
        assert attention.all_head_size == attention.query.out_features
        assert sum(p.numel() for p in model.parameters()) < 0.6 * before
        path = export_onnx(model, x[:4], tmp_path / f"heads-{prune_heads}.onnx")
        with torch.no_grad():
            assert torch.allclose(load_runner(path)(x[:32]), model(x[:32]), atol=1e-4)


def test_head_pruning_keeps_a_head_in_every_layer_or_says_why_not(tmp_path):
    """At 90 % Torch-Pruning would remove ceil(0.9 x 4) = 4 heads of a layer: one must stay. Ranked
    globally, heads may all go from one layer: then the trial is inapplicable, with the reason."""
    from types import SimpleNamespace

    import pytest

    from orchestrator.errors import InapplicableError
    from orchestrator_plugins.pruners.channel import sync_attention

    task = TinyTextTask(num_samples=200, hidden=32, heads=4)
    x = task.load_data(0).test[0]
    for global_pruning in (False, True):
        model = task.build_model().eval()
        ChannelPruner().prune(model, MagnitudeScorer().score(model, None, {"p": 1}), _Ctx(x),
                              {"ratio": 0.9, "prune_heads": True, "global_pruning": global_pruning})
        assert [layer.attention.num_attention_heads for layer in model.layers] == [1] * len(model.layers)
        path = export_onnx(model, x[:4], tmp_path / f"one-head-{global_pruning}.onnx")
        with torch.no_grad():
            assert torch.allclose(load_runner(path)(x[:32]), model(x[:32]), atol=1e-4)
    emptied = SimpleNamespace(num_heads={model.layers[0].attention.query: 0})
    with pytest.raises(InapplicableError, match=r"removed every attention head of layers\.0\.attention\.query"):
        sync_attention(model, emptied)
