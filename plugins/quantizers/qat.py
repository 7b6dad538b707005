"""``qat``: quantization-aware training, then an int8 QDQ artifact from ONNX Runtime.

Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-
Only Inference" (CVPR 2018): the network is fine-tuned with quantization simulated in the
forward pass, so the weights learn to sit where int8 rounding does little harm; gradients pass
through the rounding unchanged (the straight-through estimator).

``prepare_training`` wraps every convolution and linear layer (in a copy of the model) in
:class:`FakeQuantized`: the layer's weight is fake-quantized per output channel, symmetric int8
(``torch.fake_quantize_per_channel_affine``, range [-127, 127], as ONNX Runtime stores it), and
the layer's input — the activation coming from the previous layer — per tensor, asymmetric
uint8 (``torch.fake_quantize_per_tensor_affine``) over a range observed on the data: the min/max
over the calibration batches to start, then an exponential moving average of each training
batch's min/max. Per-channel symmetric weight quantization commutes with folding BatchNorm into
the convolution (a per-output-channel factor), so the unfolded model trains the weight grid the
folded int8 file will hold. ``end_training`` puts the plain layers back, with their trained weights;
``quantize`` then calibrates and writes the int8 QDQ file exactly as ``static-int8`` does
(min/max calibration, the statistic the observers tracked, per-channel weights).

The wrappers compute the layer's operation themselves on the layer's current ``weight``, so
weights parametrized by a pruner (masks kept until ``finalize``) stay masked during training.
Transposed convolutions and the projections inside ``nn.MultiheadAttention`` are not
fake-quantized during training; the ONNX Runtime step still quantizes them after it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn
from torch.nn import functional as F

from orchestrator import hookimpl
from orchestrator.params import Float, Int
from orchestrator.strategies import Quantizer

#: The layers QAT wraps (transposed convolutions are not among them).
WRAPPED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_EPS = 1e-8


class FakeQuantized(nn.Module):
    """A convolution or linear layer whose input and weight pass through fake quantization.

    ``layer`` is kept as it is (a child module), so unwrapping returns it with its trained weights.
    The input range is observed while training (and while ``calibrating``) and frozen in eval mode.
    """

    def __init__(self, layer: nn.Module, averaging_constant: float = 0.01) -> None:
        super().__init__()
        self.layer = layer
        self.averaging_constant = float(averaging_constant)
        self.calibrating = False
        device = layer.weight.device
        self.register_buffer("input_min", torch.zeros((), device=device))
        self.register_buffer("input_max", torch.zeros((), device=device))
        self.register_buffer("observed", torch.zeros((), dtype=torch.bool, device=device))

    @property
    def weight(self) -> torch.Tensor:
        return self.layer.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.layer.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or self.calibrating:
            self._observe(x)
        if bool(self.observed):
            x = fake_quantize_activation(x, self.input_min, self.input_max)
        weight = fake_quantize_weight(self.layer.weight)
        if isinstance(self.layer, nn.Linear):
            return F.linear(x, weight, self.layer.bias)
        return self.layer._conv_forward(x, weight, self.layer.bias)

    @torch.no_grad()
    def _observe(self, x: torch.Tensor) -> None:
        lo, hi = x.detach().amin().float(), x.detach().amax().float()
        if not bool(self.observed):
            self.input_min.copy_(lo)
            self.input_max.copy_(hi)
            self.observed.fill_(True)
        elif self.calibrating:  # the min/max over every calibration batch, as onnxruntime's calibrator
            self.input_min.copy_(torch.minimum(self.input_min, lo))
            self.input_max.copy_(torch.maximum(self.input_max, hi))
        else:  # an exponential moving average of the training batches' min/max
            c = self.averaging_constant
            self.input_min.add_(c * (lo - self.input_min))
            self.input_max.add_(c * (hi - self.input_max))

    def extra_repr(self) -> str:
        return f"averaging_constant={self.averaging_constant:g}"


def fake_quantize_activation(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Per-tensor asymmetric uint8 over [lo, hi] widened to include 0 (so zero is exact)."""
    lo = torch.clamp(lo, max=0.0)
    hi = torch.clamp(hi, min=0.0)
    scale = torch.clamp((hi - lo) / 255.0, min=_EPS).reshape(1).float()
    zero_point = torch.clamp(torch.round(-lo / scale), 0, 255).reshape(1).to(torch.int32)
    return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, 0, 255)


def fake_quantize_weight(w: torch.Tensor) -> torch.Tensor:
    """Per-output-channel (axis 0) symmetric int8 in [-127, 127]; the scale follows max|w| of each channel."""
    with torch.no_grad():
        scale = torch.clamp(w.detach().abs().flatten(1).amax(dim=1) / 127.0, min=_EPS).float()
        zero_point = torch.zeros_like(scale, dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(w, scale, zero_point, 0, -127, 127)


def wrap(model: nn.Module, averaging_constant: float) -> nn.Module:
    """Wrap every convolution and linear layer of ``model`` in place (the top level too); return it."""
    if isinstance(model, WRAPPED):
        return FakeQuantized(model, averaging_constant)
    for name, child in list(model.named_children()):
        if isinstance(child, WRAPPED):
            setattr(model, name, FakeQuantized(child, averaging_constant))
        elif not isinstance(child, (FakeQuantized, nn.MultiheadAttention)):  # MHA uses out_proj's weight directly
            wrap(child, averaging_constant)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """Put every wrapped layer back in place of its wrapper; return the model."""
    if isinstance(model, FakeQuantized):
        return model.layer
    for name, child in list(model.named_children()):
        if isinstance(child, FakeQuantized):
            setattr(model, name, child.layer)
        else:
            unwrap(child)
    return model


class QatQuantizer(Quantizer):
    name = "qat"
    min_bytes_per_weight = 1.0
    runtimes = ("onnxruntime",)
    space = {"averaging_constant": Float(0.001, 0.1, log=True), "calibration_batches": Int(2, 32, log=True)}
    defaults = {"averaging_constant": 0.01, "calibration_batches": 8}

    def applicable(self, model: nn.Module, ctx: Any) -> str | None:
        reason = super().applicable(model, ctx)
        if reason:
            return reason
        if not any(isinstance(m, WRAPPED) for m in model.modules()):
            return "the model has no Conv1d/2d/3d or Linear layer to train with fake quantization"
        return None

    def prepare_training(self, model: nn.Module, ctx: Any, params: Mapping[str, Any]) -> nn.Module:
        was_training = model.training
        wrapped = wrap(copy.deepcopy(model), float(params.get("averaging_constant", 0.01))).eval()
        fakes = [m for m in wrapped.modules() if isinstance(m, FakeQuantized)]
        for m in fakes:
            m.calibrating = True
        try:  # start from the ranges static calibration would find (eval mode: BatchNorm statistics untouched)
            with torch.no_grad():
                for batch in ctx.calibration_batches(int(params.get("calibration_batches", 8)), 64):
                    wrapped(batch)
        finally:
            for m in fakes:
                m.calibrating = False
        return wrapped.train(was_training)

    def end_training(self, model: nn.Module, ctx: Any, params: Mapping[str, Any]) -> nn.Module:
        return unwrap(model)

    def quantize(self, model, fp32_path: Path, out_path: Path, ctx: Any, params: Mapping[str, Any]) -> Path:
        from orchestrator_plugins.quantizers.static_int8 import StaticInt8Quantizer

        static = {"calibration": "minmax", "per_channel": True,
                  "calibration_batches": int(params.get("calibration_batches", 8))}
        return StaticInt8Quantizer().quantize(model, fp32_path, out_path, ctx, static)

    def describe(self, params: Mapping[str, Any]) -> str:
        return f"qat ema={float(params.get('averaging_constant', 0.01)):.2g}"


@hookimpl
def orchestrator_register_quantizers(register):
    register(QatQuantizer())
