"""Where a compressed model kept its weight: per layer, the width and parameters kept against the
baseline, the sparsity, and the precision the layer's weights ship in.

Layers are the modules holding a weight matrix or kernel (linear, convolution, embedding, and the
packed projections of ``nn.MultiheadAttention``), matched to the baseline by their module name,
which pruning keeps. The precision is read from the shipped file itself: ONNX initializers keep
the parameter's name (``fc.weight``; ``fc.weight_quantized`` once ONNX Runtime made it int8).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

#: ONNX TensorProto data types -> the names the report prints
_ONNX_DTYPES = {1: "fp32", 2: "uint8", 3: "int8", 10: "fp16", 11: "fp64", 16: "bf16"}
_TORCH_DTYPES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.int8: "int8",
                 torch.uint8: "uint8", torch.float64: "fp64"}


def _weights(model: nn.Module) -> dict[str, tuple[str, nn.Module, str]]:
    """module name -> (kind, module, name of its weight parameter)."""
    out = {}
    for name, module in model.named_modules():
        for attr in ("weight", "in_proj_weight"):
            w = getattr(module, attr, None)
            if isinstance(w, torch.Tensor) and w.dim() >= 2:
                out[name] = (type(module).__name__, module, attr)
                break
    return out


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


def shipped_precisions(artifact: Path) -> dict[str, str]:
    """parameter name -> precision of the stored weight, read from an ONNX file ({} for other files)."""
    if Path(artifact).suffix != ".onnx":
        return {}
    import onnx

    graph = onnx.load(str(artifact), load_external_data=False).graph
    out: dict[str, str] = {}
    for init in graph.initializer:
        name = init.name
        if name.endswith(("_scale", "_zero_point", "_scales", "_zero_points")):
            continue
        packed = re.search(r"_Q(\d+)$", name)  # MatMulNBits: n-bit weights packed into bytes
        base = re.sub(r"_Q\d+$", "", name).removesuffix("_quantized").removesuffix("_Transposed")
        dtype = f"int{packed.group(1)}" if packed else _ONNX_DTYPES.get(init.data_type, str(init.data_type))
        # a quantized copy wins over any float copy of the same parameter
        if base not in out or name.endswith("_quantized") or packed:
            out[base] = dtype
    return out


def layer_table(baseline: nn.Module, model: nn.Module, artifact: Path | None) -> list[dict[str, Any]]:
    """One row per weighted layer of ``model``, compared with the same layer of ``baseline``."""
    base = _weights(baseline)
    precisions = shipped_precisions(artifact) if artifact is not None else {}
    rows = []
    for name, (kind, module, attr) in _weights(model).items():
        weight = getattr(module, attr).detach()
        param = f"{name}.{attr}" if name else attr
        row: dict[str, Any] = {
            "name": name or "(model)", "kind": kind, "shape": list(weight.shape),
            "params": _params(module), "sparsity": float((weight == 0).float().mean()),
            "precision": precisions.get(param) or (_TORCH_DTYPES.get(weight.dtype, str(weight.dtype))
                                                   if not precisions else "n/a"),
        }
        if name in base:
            _, b_module, b_attr = base[name]
            b_shape = list(getattr(b_module, b_attr).shape)
            row["base_shape"] = b_shape
            row["base_params"] = _params(b_module)
            row["width_kept"] = weight.shape[0] / b_shape[0] if b_shape[0] else 1.0
        rows.append(row)
    return rows
