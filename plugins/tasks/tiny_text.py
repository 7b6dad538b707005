"""``tiny-text``: a small BERT-style transformer encoder classifying synthetic token sequences.

Each sequence is random filler tokens with one to three "signal" tokens planted at random
positions; the class is the signal token that occurs most often (the first one on a tie). The
model must gather evidence across positions, so attention, not a fixed window, solves it. The
encoder follows BERT's layout and attribute names (``query``/``key``/``value``,
``num_attention_heads``), so the transformer paths of the strategies are exercised by real searches.
"""

from __future__ import annotations

import math
import torch
from torch import nn

from orchestrator import hookimpl
from orchestrator.task import Task, TaskData, TrainSettings

N_SIGNALS = 4  # tokens 0..3 are signals, the rest filler


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.num_attention_heads = heads
        self.attention_head_size = hidden // heads
        self.all_head_size = hidden
        self.query, self.key, self.value = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.num_attention_heads, self.attention_head_size).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.attention_head_size), dim=-1)
        out = (weights @ v).transpose(1, 2)
        return out.reshape(out.shape[0], out.shape[1], self.all_head_size)


class EncoderLayer(nn.Module):
    def __init__(self, hidden: int, heads: int, intermediate: int) -> None:
        super().__init__()
        self.attention = SelfAttention(hidden, heads)
        self.attention_output = nn.Linear(hidden, hidden)
        self.attention_norm = nn.LayerNorm(hidden)
        self.intermediate = nn.Linear(hidden, intermediate)
        self.output = nn.Linear(intermediate, hidden)
        self.output_norm = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention_norm(x + self.attention_output(self.attention(x)))
        return self.output_norm(x + self.output(torch.relu(self.intermediate(x))))


class TinyBert(nn.Module):
    def __init__(self, vocab: int = 32, length: int = 16, hidden: int = 64, heads: int = 4, layers: int = 2,
                 intermediate: int = 128, n_classes: int = N_SIGNALS) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, hidden)
        self.positions = nn.Embedding(length, hidden)
        self.layers = nn.ModuleList(EncoderLayer(hidden, heads, intermediate) for _ in range(layers))
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.tokens(ids) + self.positions(positions)
        for layer in self.layers:
            x = layer(x)
        return self.classifier(x.mean(dim=1))


def make_sequences(n: int, length: int, vocab: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(N_SIGNALS, vocab, (n, length), generator=g)
    counts = torch.zeros(n, N_SIGNALS, dtype=torch.long)
    for i in range(n):
        k = int(torch.randint(1, 4, (1,), generator=g))
        where = torch.randperm(length, generator=g)[:k]
        signals = torch.randint(0, N_SIGNALS, (k,), generator=g)
        ids[i, where] = signals
        counts[i] += torch.bincount(signals, minlength=N_SIGNALS)
    # the most frequent signal; argmax takes the lowest token on a tie, so ties are decided by rule
    return ids, counts.argmax(dim=1)


class TinyTextTask(Task):
    name = "tiny-text"
    baseline_training = TrainSettings(epochs=20, lr=3e-3, batch_size=64, weight_decay=1e-2)

    def __init__(self, num_samples: int = 6000, length: int = 16, vocab: int = 32, hidden: int = 64, heads: int = 4,
                 layers: int = 2, data_seed: int = 42) -> None:
        super().__init__(num_samples=num_samples, length=length, vocab=vocab, hidden=hidden, heads=heads,
                         layers=layers, data_seed=data_seed)
        self.num_samples, self.length, self.vocab = num_samples, length, vocab
        self.hidden, self.heads, self.layers, self.data_seed = hidden, heads, layers, data_seed

    def build_model(self) -> nn.Module:
        return TinyBert(self.vocab, self.length, self.hidden, self.heads, self.layers, 2 * self.hidden)

    def load_data(self, seed: int) -> TaskData:
        ids, labels = make_sequences(self.num_samples, self.length, self.vocab, self.data_seed)
        n_test, n_val = self.num_samples // 5, self.num_samples // 10
        return TaskData(test=(ids[:n_test], labels[:n_test]),
                        val=(ids[n_test : n_test + n_val], labels[n_test : n_test + n_val]),
                        train=(ids[n_test + n_val :], labels[n_test + n_val :]))


@hookimpl
def orchestrator_register_tasks(register):
    register("tiny-text", TinyTextTask)
