"""``none``: ships the fp32 artifact the core exported."""

from __future__ import annotations

from orchestrator import hookimpl
from orchestrator.strategies import Quantizer


class NoQuantizer(Quantizer):
    name = "none"
    min_bytes_per_weight = 4.0
    runtimes = ("onnxruntime", "torch")

    def quantize(self, model, fp32_path, out_path, ctx, params):
        return fp32_path

    def torch_equivalent(self, model, params):
        return model


@hookimpl
def orchestrator_register_quantizers(register):
    register(NoQuantizer())
