"""Watching one forward pass: run a model with temporary hooks, removed whatever happens."""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle


def traced_forward(model: nn.Module, example: torch.Tensor, hooks: Iterable[RemovableHandle]) -> Any:
    """Run ``model(example)`` without gradients with ``hooks`` registered, then remove them."""
    handles = list(hooks)
    try:
        with torch.no_grad():
            return model(example)
    finally:
        for h in handles:
            h.remove()
