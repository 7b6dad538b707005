"""``static-int8``: ONNX Runtime post-training static quantization in QDQ format.

Weights are int8 (per output channel by default), activations uint8 with ranges calibrated on
the task's training batches; the calibration method is searched: ``minmax``, ``entropy``
(KL-divergence thresholds, as in TensorRT's calibrator) or ``percentile`` (99.999th).
See Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-
Arithmetic-Only Inference" (CVPR 2018).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Mapping

from orchestrator import hookimpl
from orchestrator.export import quiet_ort
from orchestrator.params import Choice, Int
from orchestrator.strategies import Quantizer

_METHODS = ("minmax", "entropy", "percentile")


class StaticInt8Quantizer(Quantizer):
    name = "static-int8"
    min_bytes_per_weight = 1.0
    runtimes = ("onnxruntime",)
    space = {"calibration": Choice(_METHODS), "per_channel": Choice([True, False]),
             "calibration_batches": Int(2, 32, log=True)}
    defaults = {"calibration": "minmax", "per_channel": True, "calibration_batches": 8}

    def quantize(self, model, fp32_path: Path, out_path: Path, ctx: Any, params: Mapping[str, Any]) -> Path:
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                              quantize_static)
        from onnxruntime.quantization.shape_inference import quant_pre_process

        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[params.get("calibration", "minmax")]
        batches = ctx.calibration_batches(int(params.get("calibration_batches", 8)), 64)
        input_name = ctx.task.input_name

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._it = iter([{input_name: b.numpy()} for b in batches])

            def get_next(self):
                return next(self._it, None)

        with tempfile.TemporaryDirectory() as tmp, quiet_ort():
            prepared = Path(tmp) / "prepared.onnx"
            quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
            quantize_static(str(prepared), str(out_path), Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=bool(params.get("per_channel", True)), activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, calibrate_method=method,
                            extra_options={"CalibTensorRangeSymmetric": False})
        return out_path

    def describe(self, params: Mapping[str, Any]) -> str:
        pc = "" if params.get("per_channel", True) else " per-tensor"
        return f"static-int8 {params.get('calibration', 'minmax')}{pc}"


@hookimpl
def orchestrator_register_quantizers(register):
    register(StaticInt8Quantizer())
