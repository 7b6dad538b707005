"""``mnist1d``: a 1-D CNN on MNIST-1D (Greydanus, 2020), generated offline by the ``mnist1d`` package.

MNIST-1D keeps MNIST's ten classes in 40-sample 1-D signals: small enough to train in seconds
on a CPU, hard enough that a linear model reaches only ~32% while a CNN passes 90%.
"""

from __future__ import annotations

import torch
from torch import nn

from orchestrator import hookimpl
from orchestrator.task import Task, TaskData, TrainSettings


class MNIST1DNet(nn.Module):
    def __init__(self, width: int = 32, n_classes: int = 10) -> None:
        super().__init__()

        def block(cin: int, cout: int, k: int, stride: int) -> list[nn.Module]:
            return [nn.Conv1d(cin, cout, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm1d(cout), nn.ReLU()]

        self.features = nn.Sequential(*block(1, width, 5, 1), *block(width, 2 * width, 3, 2),
                                      *block(2 * width, 2 * width, 3, 2), *block(2 * width, 2 * width, 3, 2))
        self.classifier = nn.Linear(2 * width * 5, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x.unsqueeze(1)).flatten(1))


class MNIST1DTask(Task):
    name = "mnist1d"
    baseline_training = TrainSettings(epochs=30, lr=5e-3, batch_size=128, weight_decay=1e-4)

    def __init__(self, num_samples: int = 10000, width: int = 32, data_seed: int = 42) -> None:
        super().__init__(num_samples=num_samples, width=width, data_seed=data_seed)
        self.num_samples, self.width, self.data_seed = num_samples, width, data_seed

    def build_model(self) -> nn.Module:
        return MNIST1DNet(self.width)

    def load_data(self, seed: int) -> TaskData:
        try:
            from mnist1d.data import get_dataset_args, make_dataset
        except ImportError as exc:  # an optional extra
            raise ImportError("task 'mnist1d' needs the mnist1d package: "
                              "pip install 'compression-orchestrator[tasks]'") from exc
        args = get_dataset_args()
        args.num_samples, args.seed = self.num_samples, self.data_seed
        d = make_dataset(args)
        x, y = torch.tensor(d["x"], dtype=torch.float32), torch.tensor(d["y"], dtype=torch.long)
        n_val = len(x) // 10
        return TaskData(train=(x[n_val:], y[n_val:]), val=(x[:n_val], y[:n_val]),
                        test=(torch.tensor(d["x_test"], dtype=torch.float32), torch.tensor(d["y_test"], dtype=torch.long)))


@hookimpl
def orchestrator_register_tasks(register):
    register("mnist1d", MNIST1DTask)
