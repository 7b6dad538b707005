"""``int4-weight``: ONNX Runtime's block-wise 4-bit weight-only quantization.

The weights of fully connected layers — ``nn.Linear``, the projections of attention blocks — are
stored as 4-bit integers in blocks of ``block_size`` consecutive input features, each block with
its own float scale (and a 4-bit zero point unless ``symmetric``); activations stay in float. ONNX
Runtime's ``MatMulNBitsQuantizer`` rewrites each ``MatMul`` with a constant weight into its
``MatMulNBits`` kernel, which dequantizes on the fly; ``Gemm`` nodes (how the exporter writes
``nn.Linear`` on 2-D inputs) are first rewritten to ``MatMul`` + ``Add``. With ``embeddings`` the
tables of ``nn.Embedding`` lookups become ``GatherBlockQuantized``. Convolutions stay in float32.

This is round-to-nearest group-wise quantization, the scheme of GPTQ's and AWQ's storage format
(Frantar et al., ICLR 2023; Lin et al., MLSys 2024) without their calibration: small blocks keep
the error of 4 bits small, at the price of one scale per block. Its use is the file's size, and
memory traffic when a model is weight-bound; ``accuracy_level: 4`` lets the CPU kernel compute in
int8 instead of float32.

Size bound for the pre-check: every quantized weight costs at least half a byte (two per byte,
blocks padded up to ``block_size``, plus scales and zero points), every weight left alone four;
so ``min_bytes_per_weight = 0.5`` is a lower bound whatever gets quantized.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
from torch import nn

from orchestrator.params import Choice
from orchestrator.strategies import Quantizer

#: the torch layers whose weights reach a MatMul (or Gemm) with a constant weight once exported
LINEAR_LAYERS = (nn.Linear, nn.MultiheadAttention)
_FLOAT_TYPES = {1, 10, 11, 16}  # onnx.TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16
#: int4 tensors (the tables GatherBlockQuantized reads) need opset 21 of the default domain
INT4_OPSET = 21


class Int4WeightQuantizer(Quantizer):
    name = "int4-weight"
    runtimes = ("onnxruntime",)
    min_bytes_per_weight = 0.5
    space = {"block_size": Choice([16, 32, 64, 128]), "symmetric": Choice([False, True]),
             "accuracy_level": Choice([0, 4]), "embeddings": Choice([True, False])}
    defaults = {"block_size": 32, "symmetric": False, "accuracy_level": 0, "embeddings": True}

    def applicable(self, model: nn.Module, ctx: Any) -> str | None:
        reason = super().applicable(model, ctx)
        if reason:
            return reason
        if not any(isinstance(m, LINEAR_LAYERS) for m in model.modules()):
            return ("the model has no Linear or attention layer: int4-weight quantizes the weights of MatMuls "
                    "(and embedding tables alongside them); convolutions stay float32")
        return None

    def quantize(self, model: nn.Module, fp32_path: Path, out_path: Path, ctx: Any,
                 params: Mapping[str, Any]) -> Path:
        import onnx

        p = {**self.defaults, **params}
        proto = onnx.load(str(fp32_path))
        with _quiet():
            from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
            from onnxruntime.quantization.onnx_model import ONNXModel

            if p["embeddings"] and _embedding_gathers(proto.graph):
                proto = _with_opset(proto, INT4_OPSET)
            wrapped = ONNXModel(proto)
            wrapped.replace_gemm_with_matmul()
            graph = wrapped.model.graph
            for i, node in enumerate(graph.node):  # excluded by name below: every node needs one
                node.name = node.name or f"int4_node_{i}"
            tables = _embedding_gathers(graph) if p["embeddings"] else set()
            skip = [n.name for n in graph.node if n.op_type == "Gather" and n.name not in tables]
            quantizer = MatMulNBitsQuantizer(wrapped.model, bits=4, block_size=int(p["block_size"]),
                                             is_symmetric=bool(p["symmetric"]),
                                             accuracy_level=int(p["accuracy_level"]) or None, nodes_to_exclude=skip,
                                             op_types_to_quantize=("MatMul", "Gather") if tables else ("MatMul",))
            # a block of all-zero weights (pruned) has scale 0: ONNX Runtime divides by it, then
            # replaces the result (np.where); the division's warning says nothing to the user
            with np.errstate(divide="ignore", invalid="ignore"):
                quantizer.process()
            quantized = quantizer.model.model
        if not any(n.op_type == "MatMulNBits" for n in quantized.graph.node):
            raise RuntimeError("int4-weight found no MatMul with a constant 2-D weight to quantize in the exported "
                               "model; it would ship the float32 file unchanged")
        onnx.save(quantized, str(out_path))
        return out_path

    def describe(self, params: Mapping[str, Any]) -> str:
        p = {**self.defaults, **params}
        words = [f"int4-weight g{p['block_size']}", "sym" if p["symmetric"] else "asym"]
        if p["accuracy_level"]:
            words.append("int8-compute")
        if not p["embeddings"]:
            words.append("float-embeddings")
        return " ".join(words)


def _embedding_gathers(graph: Any) -> set[str]:
    """Gather nodes that look up rows of a constant 2-D float table (an embedding), by name.
    Other Gathers over constants (index tables, shapes) are not quantizable and are left alone."""
    tables = {t.name: t for t in graph.initializer}
    out = set()
    for node in graph.node:
        if node.op_type != "Gather":
            continue
        table = tables.get(node.input[0])
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if table is not None and len(table.dims) == 2 and table.data_type in _FLOAT_TYPES and axis == 0:
            out.add(node.name)
    return out


def _with_opset(proto: Any, version: int) -> Any:
    """The model at ``version`` of the default domain, converted op by op by ONNX's version converter
    (ONNX Runtime's quantizer would only relabel the opset, which can change what some ops mean)."""
    current = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), version)
    if current >= version:
        return proto
    from onnx import version_converter

    converted = version_converter.convert_version(proto, version)
    # the converter drops the intermediate shapes the exporter annotated; put them back, so that the
    # file differs from the float one only by what quantization changes
    known = {v.name for v in converted.graph.value_info}
    converted.graph.value_info.extend(v for v in proto.graph.value_info if v.name not in known)
    return converted


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ONNX Runtime's weight-only quantizer logs every node at INFO and prints to stdout; a trial's output
    is not the place. Importing its module calls ``logging.basicConfig(level=INFO)``, so the root
    logger is quietened after that import and given its level back afterwards."""
    root = logging.getLogger()
    level = root.level
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import onnxruntime.quantization.matmul_nbits_quantizer  # noqa: F401

            root.setLevel(logging.ERROR)
            yield
    finally:
        root.setLevel(level)
