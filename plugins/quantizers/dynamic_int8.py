"""``dynamic-int8``: ONNX Runtime post-training dynamic quantization.

Weights are stored as int8; activations are quantized on the fly, batch by batch, from their
observed range (``DynamicQuantizeLinear``), so no calibration data is needed. ONNX Runtime
rewrites the fully connected and recurrent layers — ``MatMul``/``Gemm`` (``nn.Linear``, the
projections inside ``nn.MultiheadAttention``), ``LSTM`` and embedding ``Gather`` — into
integer kernels (``MatMulInteger``, ``DynamicQuantizeLSTM``). Convolutions are left in float:
that is what the method is for (Linear-, LSTM- and attention-heavy models, where the weights
dominate and activation ranges vary from input to input); ``static-int8`` or ``qat`` cover CNNs.
The scheme is that of Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference" (CVPR 2018), with activation ranges taken per batch at run
time as in PyTorch's and ONNX Runtime's dynamic quantization.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Mapping

from torch import nn

from orchestrator import hookimpl
from orchestrator.export import quiet_ort
from orchestrator.params import Choice
from orchestrator.strategies import Quantizer

#: The ONNX ops ONNX Runtime's dynamic quantizer turns into integer kernels (Gemm is rewritten
#: to MatMul first); Conv is deliberately left out, see the module docstring.
OP_TYPES = ("MatMul", "Gemm", "Attention", "LSTM", "Gather")
#: The torch layers whose weights end up in those ops. GRU and plain RNN export to ONNX ops
#: ONNX Runtime has no dynamic integer kernel for, so they do not count.
QUANTIZABLE_LAYERS = (nn.Linear, nn.LSTM, nn.MultiheadAttention, nn.Embedding)


class DynamicInt8Quantizer(Quantizer):
    name = "dynamic-int8"
    min_bytes_per_weight = 1.0
    runtimes = ("onnxruntime",)
    space = {"per_channel": Choice([False, True]), "reduce_range": Choice([False, True])}
    defaults = {"per_channel": False, "reduce_range": False}

    def applicable(self, model: nn.Module, ctx: Any) -> str | None:
        reason = super().applicable(model, ctx)
        if reason:
            return reason
        if not any(isinstance(m, QUANTIZABLE_LAYERS) for m in model.modules()):
            return ("the model has no Linear, LSTM, MultiheadAttention or Embedding layer for dynamic "
                    "quantization (convolutions are left to static-int8 and qat)")
        return None

    def quantize(self, model, fp32_path: Path, out_path: Path, ctx: Any, params: Mapping[str, Any]) -> Path:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process

        with tempfile.TemporaryDirectory() as tmp, quiet_ort():
            prepared = Path(tmp) / "prepared.onnx"
            quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
            quantize_dynamic(str(prepared), str(out_path), op_types_to_quantize=list(OP_TYPES),
                             per_channel=bool(params.get("per_channel", False)),
                             reduce_range=bool(params.get("reduce_range", False)), weight_type=QuantType.QInt8)
        return out_path

    def describe(self, params: Mapping[str, Any]) -> str:
        flags = [f for f in ("per_channel", "reduce_range") if params.get(f, False)]
        return "dynamic-int8" + "".join(f" {f.replace('_', '-')}" for f in flags)


@hookimpl
def orchestrator_register_quantizers(register):
    register(DynamicInt8Quantizer())
