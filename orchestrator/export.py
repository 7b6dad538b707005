"""Writing the deployable artifact and loading it back to run it.

ONNX files come from torch's ``torch.export``-based exporter (the TorchScript exporter is
deprecated); ``torch`` runtime artifacts are ``torch.export`` programs (``.pt2``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

ONNX_SUFFIX = ".onnx"
TORCH_SUFFIX = ".pt2"

Runner = Callable[[torch.Tensor], torch.Tensor]


@contextlib.contextmanager
def quiet_exporter():
    """Silence the exporter's progress lines and the warnings torch raises about its own internals."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
            with contextlib.redirect_stdout(io.StringIO()):
                yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def quiet_ort():
    """Silence onnxruntime's quantization tools: they print to stdout and log advice on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path, input_name: str = "input") -> Path:
    """Export ``model`` to a single self-contained ONNX file with a dynamic batch dimension."""
    model = model.eval()
    batch = torch.export.Dim("batch", min=1)
    with quiet_exporter(), torch.inference_mode(False), torch.no_grad():
        program = torch.onnx.export(model, (example,), None, input_names=[input_name], output_names=["logits"],
                                    dynamic_shapes=({0: batch},), dynamo=True, verbose=False, optimize=True)
        program.save(str(path), external_data=False)
    return path


def export_torch(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Save a ``torch.export`` program with a dynamic batch dimension."""
    batch = torch.export.Dim("batch", min=1)
    with quiet_exporter(), torch.no_grad():
        program = torch.export.export(model.eval(), (example,), dynamic_shapes=({0: batch},))
        torch.export.save(program, str(path))
    return path


def load_runner(path: Path, threads: int = 1) -> Runner:
    """A callable running the artifact on a batch of inputs, on the artifact's own runtime."""
    path = Path(path)
    if path.suffix == ONNX_SUFFIX:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        in_type = session.get_inputs()[0].type

        def run_onnx(x: torch.Tensor) -> torch.Tensor:
            arr = x.numpy()
            if in_type == "tensor(float16)":
                arr = arr.astype(np.float16)
            return torch.from_numpy(np.asarray(session.run(None, {name: arr})[0], dtype=np.float32))

        return run_onnx
    if path.suffix == TORCH_SUFFIX:
        module = torch.export.load(str(path)).module()

        def run_torch(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return module(x).float()

        return run_torch
    raise ValueError(f"unknown artifact type '{path.suffix}' ({path}); expected {ONNX_SUFFIX} or {TORCH_SUFFIX}")


def export_for_runtime(model: nn.Module, example: torch.Tensor, workdir: Path, runtime: str,
                       input_name: str = "input") -> Path:
    if runtime == "onnxruntime":
        return export_onnx(model, example, workdir / f"model-fp32{ONNX_SUFFIX}", input_name)
    return export_torch(model, example, workdir / f"model-fp32{TORCH_SUFFIX}")
