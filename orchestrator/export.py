"""Writing the deployable artifact and loading it back to run it.

ONNX files come from torch's ``torch.export``-based exporter (the TorchScript exporter is
deprecated); ``torch`` runtime artifacts are ``torch.export`` programs (``.pt2``). TorchScript
files (``.pt``) are written only when a user exports a trial in that format: torch 2.13 deprecates
``torch.jit``.

Each trial also keeps its float model (``model-float.pth``): the ``nn.Module`` after pruning,
training and ``finalize``, before quantization, saved with ``torch.save``. It is what ``orchestrator
export`` converts to another format; loading it needs the task's model code importable.
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
TORCHSCRIPT_SUFFIX = ".pt"
FLOAT_MODEL = "model-float.pth"
#: torch 2.13 warns on every torch.jit call (trace, save, load): the format is deprecated, not broken
_JIT_DEPRECATED = r"`torch\.jit\.\w+` is deprecated"

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
    strip_debug_info(path)
    return path


def strip_debug_info(path: Path) -> None:
    """Drop what the exporter records for debugging: per-node metadata (stack traces with absolute
    source paths, FX node text) and doc strings. They are no part of the model, a quarter of a
    small model's file, and local paths have no place in a file that ships."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    graphs = [model.graph] + [f for f in model.functions]
    for graph in graphs:
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
    model.graph.doc_string = ""
    model.doc_string = ""
    onnx.save(model, str(path))


def export_torch(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Save a ``torch.export`` program with a dynamic batch dimension."""
    batch = torch.export.Dim("batch", min=1)
    with quiet_exporter(), torch.no_grad():
        program = torch.export.export(model.eval(), (example,), dynamic_shapes=({0: batch},))
        torch.export.save(program, str(path))
    return path


def export_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Save a TorchScript module traced on ``example`` (shapes other than the batch stay fixed)."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", message=_JIT_DEPRECATED, category=DeprecationWarning)
        # tracing reads every attribute of a Hugging Face model, a deprecated alias among them; its
        # attention's branch on the sequence length is fixed by the trace, as every non-batch shape is
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"transformers\.")
        traced = torch.jit.trace(model.eval(), (example,))
        torch.jit.save(traced, str(path))
    return path


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_JIT_DEPRECATED, category=DeprecationWarning)
        return torch.jit.load(str(path)).eval()


def save_float_model(model: nn.Module, path: Path) -> str | None:
    """Pickle the whole module (its pruned shapes included) with ``torch.save``: a few milliseconds.

    Not atomic: it lies in the trial's own folder, which a trial that does not finish loses.
    Returns why it could not be saved (a model class defined inside a function cannot be
    pickled), None once saved: the trial does not depend on it.
    """
    try:
        torch.save(model, str(path))
    except Exception as exc:  # pickling errors come as several types
        Path(path).unlink(missing_ok=True)
        return f"{type(exc).__name__}: {exc}"
    return None


def load_float_model(path: Path) -> nn.Module:
    """The module :func:`save_float_model` wrote: a file this orchestrator wrote, so unpickling is trusted."""
    return torch.load(str(path), weights_only=False).eval()


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
    if path.suffix == TORCHSCRIPT_SUFFIX:
        script = load_torchscript(path)

        def run_script(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return script(x).float()

        return run_script
    raise ValueError(f"unknown artifact type '{path.suffix}' ({path}); expected {ONNX_SUFFIX}, {TORCH_SUFFIX} "
                     f"or {TORCHSCRIPT_SUFFIX}")


def export_for_runtime(model: nn.Module, example: torch.Tensor, workdir: Path, runtime: str,
                       input_name: str = "input") -> Path:
    if runtime == "onnxruntime":
        return export_onnx(model, example, workdir / f"model-fp32{ONNX_SUFFIX}", input_name)
    return export_torch(model, example, workdir / f"model-fp32{TORCH_SUFFIX}")
