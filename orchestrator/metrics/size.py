"""What a compressed model costs to store and to compute."""

from __future__ import annotations

import gzip
from pathlib import Path

import torch
from torch import nn

MB = 1e6


def artifact_sizes(path: Path) -> dict[str, float]:
    """``size_mb``: the file's bytes as written; ``gzip_mb``: the same bytes through gzip -9."""
    data = Path(path).read_bytes()
    return {"size_mb": len(data) / MB, "gzip_mb": len(gzip.compress(data, compresslevel=9, mtime=0)) / MB}


def count_nonzero_params(model: nn.Module) -> int:
    return int(sum(int(torch.count_nonzero(p)) for p in model.parameters()))


def count_macs(model: nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of one example, counted by torch-pruning's op counter."""
    import torch_pruning as tp

    macs, _ = tp.utils.count_ops_and_params(model, example[:1])
    return int(macs)
