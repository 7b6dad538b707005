"""Tiny models of the shapes people compress, each wrapped in a task with synthetic data.

Used by the combination matrix: a CNN with residual additions, BatchNorm, a depth-wise
convolution and a concatenation; an MLP; a transformer encoder built from ``nn.TransformerEncoder``;
and a BERT-style model built from a Hugging Face config with random weights (nothing downloaded).
"""

from __future__ import annotations

import torch
from torch import nn

from orchestrator import Task, TaskData, TrainSettings


class ResidualCNN(nn.Module):
    def __init__(self, width: int = 8, n_classes: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                   nn.ReLU(), nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))
        self.depthwise = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False),
                                       nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, width, 1))
        self.fuse = nn.Sequential(nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.ReLU())
        self.classifier = nn.Linear(2 * width * 4 * 4, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        h = torch.relu(h + self.block(h))  # residual addition
        h = torch.cat([h, self.depthwise(h)], dim=1)  # concatenation
        return self.classifier(self.fuse(h).flatten(1))


class MLP(nn.Module):
    def __init__(self, n_features: int = 16, hidden: int = 32, n_classes: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class EncoderClassifier(nn.Module):
    """``nn.TransformerEncoder`` over token embeddings, mean-pooled."""

    def __init__(self, vocab: int = 16, length: int = 8, hidden: int = 16, heads: int = 2, n_classes: int = 4) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, hidden)
        self.positions = nn.Parameter(torch.zeros(1, length, hidden))
        layer = nn.TransformerEncoderLayer(hidden, heads, dim_feedforward=2 * hidden, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(self.tokens(ids) + self.positions).mean(dim=1))


class BertClassifier(nn.Module):
    """A BERT-style encoder from a Hugging Face config, random weights, classifying the first token."""

    def __init__(self, vocab: int = 16, length: int = 8, hidden: int = 16, heads: int = 2, n_classes: int = 4) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        config = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=heads,
                            intermediate_size=2 * hidden, max_position_embeddings=length, hidden_dropout_prob=0.0,
                            attention_probs_dropout_prob=0.0)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.bert(input_ids=ids).last_hidden_state[:, 0])


class Wide(nn.Module):
    """An MLP on 8x8 images big enough that weights, not graph overhead, dominate its file."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                                 nn.Linear(512, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ShapeTask(Task):
    """A tiny synthetic classification task for one model shape."""

    name = "shape"
    baseline_training = TrainSettings(epochs=1, lr=3e-3, batch_size=32)

    def __init__(self, shape: str) -> None:
        super().__init__(shape=shape)
        self.shape = shape

    def build_model(self) -> nn.Module:
        return {"cnn": ResidualCNN, "mlp": MLP, "encoder": EncoderClassifier, "bert": BertClassifier}[self.shape]()

    def load_data(self, seed: int) -> TaskData:
        g = torch.Generator().manual_seed(seed)
        n = 192
        if self.shape == "cnn":
            x = torch.randn(n, 1, 8, 8, generator=g)
            y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long() + 2 * (x[:, 0, :, :4].mean((1, 2)) > 0).long()
        elif self.shape == "mlp":
            x = torch.randn(n, 16, generator=g)
            y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
        else:
            x = torch.randint(0, 16, (n, 8), generator=g)
            y = x[:, 0] % 4
        return TaskData(train=(x[:128], y[:128]), val=(x[128:160], y[128:160]), test=(x[160:], y[160:]))


SHAPES = ("cnn", "mlp", "encoder", "bert")
