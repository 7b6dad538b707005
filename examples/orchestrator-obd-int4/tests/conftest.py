"""Fixtures: a small Linear-heavy classifier trained once, its fp32 ONNX file as the orchestrator exports
it, and the TrialContext a strategy receives."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from orchestrator import Task, TaskData


class ClustersTask(Task):
    """Ten classes in 32 dimensions, each the union of three overlapping Gaussian clusters: not linearly
    separable; the MLP below reaches about 95% on the test split."""

    name = "clusters"

    def build_model(self) -> nn.Module:
        return nn.Sequential(nn.Linear(32, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))

    def load_data(self, seed: int) -> TaskData:
        g = torch.Generator().manual_seed(0)
        centers = torch.randn(30, 32, generator=g) * 0.6
        cluster = torch.randint(0, 30, (6000,), generator=g)
        x = centers[cluster] + torch.randn(6000, 32, generator=g) * 0.75
        y = cluster % 10
        return TaskData(train=(x[:3500], y[:3500]), val=(x[3500:4000], y[3500:4000]), test=(x[4000:], y[4000:]))


def train(model: nn.Module, data: TaskData, epochs: int = 30, lr: float = 3e-3) -> nn.Module:
    torch.manual_seed(0)
    x, y = data.train
    opt = torch.optim.AdamW(model.parameters(), lr, weight_decay=1e-4)
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 128):
            idx = order[start : start + 128]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def clusters():
    """(task, data, trained MLP)."""
    task = ClustersTask()
    data = task.load_data(seed=0)
    return task, data, train(task.build_model(), data)


@pytest.fixture(scope="session")
def clusters_onnx(clusters, tmp_path_factory) -> Path:
    """The trained MLP as the orchestrator exports it for a quantizer (nn.Linear becomes Gemm)."""
    from orchestrator.export import export_onnx

    task, data, model = clusters
    return export_onnx(model, data.test[0][:8], tmp_path_factory.mktemp("fp32") / "model.onnx", task.input_name)


@pytest.fixture
def make_ctx(tmp_path):
    """A TrialContext for ``task``/``data``/``model``; keyword arguments override its fields."""
    from orchestrator.context import TrialContext

    def make(task: Task, data: TaskData, model: nn.Module, **overrides) -> TrialContext:
        fields = dict(task=task, data=data, teacher=model, seed=0, workdir=tmp_path / "work")
        return TrialContext(**(fields | overrides))

    return make
