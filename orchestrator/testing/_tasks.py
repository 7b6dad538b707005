"""The built-in fixture set of the contract suites: tiny models of three shapes on synthetic data.

Each trains in well under a second on one CPU core and needs nothing downloaded. ``cnn`` has
convolutions, BatchNorm and a linear head (every built-in strategy applies to it); ``mlp`` is
linear layers only (no BatchNorm, no convolution); ``encoder`` embeds tokens and runs an
``nn.TransformerEncoder`` (attention, LayerNorm, integer inputs).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from orchestrator.baseline import Baseline, train_baseline
from orchestrator.task import Task, TaskData, TrainSettings

SHAPES = ("cnn", "mlp", "encoder")
N_CLASSES = 4


class TinyCNN(nn.Module):
    """Two conv-BatchNorm-ReLU blocks on 1x8x8 images and a linear classifier."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU())
        self.classifier = nn.Linear(2 * width * 4 * 4, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class TinyMLP(nn.Module):
    def __init__(self, n_features: int = 16, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, N_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TinyEncoder(nn.Module):
    """Token embeddings and a learned position embedding through one encoder layer, mean-pooled."""

    def __init__(self, vocab: int = 16, length: int = 8, hidden: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, hidden)
        self.positions = nn.Parameter(torch.zeros(1, length, hidden))
        layer = nn.TransformerEncoderLayer(hidden, heads, dim_feedforward=2 * hidden, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.classifier = nn.Linear(hidden, N_CLASSES)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(self.tokens(ids) + self.positions).mean(dim=1))


def _wide() -> nn.Module:
    return TinyMLP(hidden=256)


_MODELS = {"cnn": TinyCNN, "mlp": TinyMLP, "encoder": TinyEncoder, "wide": _wide}


class TinyTask(Task):
    """A four-class task on synthetic data for one of :data:`SHAPES`, or ``wide`` (the ``mlp`` with
    256-wide hidden layers: 70k weights, which dominate its file): 192 training, 64 validation and
    64 test samples; the baseline trains for 10 epochs."""

    name = "contract"
    baseline_training = TrainSettings(epochs=10, lr=1e-2, batch_size=64, weight_decay=1e-4)

    def __init__(self, shape: str = "cnn") -> None:
        if shape not in _MODELS:
            raise ValueError(f"shape must be one of {', '.join(_MODELS)}, not {shape!r}")
        super().__init__(shape=shape)
        self.shape = shape

    def build_model(self) -> nn.Module:
        return _MODELS[self.shape]()

    def load_data(self, seed: int) -> TaskData:
        g = torch.Generator().manual_seed(seed)
        n = 320
        if self.shape == "cnn":
            x = torch.randn(n, 1, 8, 8, generator=g)
            top_brighter = x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))
            y = top_brighter.long() + 2 * (x[:, 0, :, :4].mean((1, 2)) > 0).long()
        elif self.shape in ("mlp", "wide"):
            x = torch.randn(n, 16, generator=g)
            y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
        else:
            x = torch.randint(0, 16, (n, 8), generator=g)
            y = x[:, 0] % N_CLASSES
        return TaskData(train=(x[:192], y[:192]), val=(x[192:256], y[192:256]), test=(x[256:], y[256:]))


_BASELINES: dict[tuple[str, int], tuple[TaskData, Baseline]] = {}


def trained(task: Task, seed: int = 0) -> tuple[TaskData, Baseline]:
    """The task's data and its baseline trained with its ``baseline_training`` settings, once per
    (task, seed) in this process; nothing is written to disk. Callers copy what they may change."""
    key = (f"{type(task).__module__}.{type(task).__qualname__}-{task.fingerprint()}", seed)
    if key not in _BASELINES:
        data = task.load_data(seed)
        _BASELINES[key] = (data, train_baseline(task, data, seed))
    return _BASELINES[key]


def describe_shape(task: Any) -> str:
    return getattr(task, "shape", type(task).__name__)
