"""``digits``: a small 2-D CNN on scikit-learn's bundled 8x8 handwritten digits (1,797 images)."""

from __future__ import annotations

import torch
from torch import nn

from orchestrator import hookimpl
from orchestrator.task import Task, TaskData, TrainSettings


class DigitsNet(nn.Module):
    def __init__(self, width: int = 16, n_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU())
        self.classifier = nn.Linear(2 * width * 16, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class DigitsTask(Task):
    name = "digits"
    baseline_training = TrainSettings(epochs=25, lr=5e-3, batch_size=64, weight_decay=1e-4)

    def __init__(self, width: int = 16) -> None:
        super().__init__(width=width)
        self.width = width

    def build_model(self) -> nn.Module:
        return DigitsNet(self.width)

    def load_data(self, seed: int) -> TaskData:
        try:
            from sklearn.datasets import load_digits
        except ImportError as exc:
            raise ImportError("task 'digits' needs scikit-learn: pip install 'compression-orchestrator[tasks]'") from exc
        digits = load_digits()
        x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        y = torch.tensor(digits.target, dtype=torch.long)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))  # a fixed split
        x, y = x[order], y[order]
        n_test, n_val = len(x) // 5, len(x) // 10
        return TaskData(test=(x[:n_test], y[:n_test]), val=(x[n_test : n_test + n_val], y[n_test : n_test + n_val]),
                        train=(x[n_test + n_val :], y[n_test + n_val :]))


@hookimpl
def orchestrator_register_tasks(register):
    register("digits", DigitsTask)
