import math

import pytest
import torch
from torch import nn

from orchestrator.export import export_onnx, export_torch, load_runner
from orchestrator.metrics import artifact_sizes, measure_latency
from orchestrator_plugins.quantizers.fp16 import Fp16Quantizer

from models import Wide


class Attention(nn.Module):
    """Self-attention over the image rows: the exporter writes Transpose -> MatMul on constant weights."""

    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        rows = x.flatten(1).reshape(-1, 8, 8)
        y, _ = self.attn(rows, rows, rows, need_weights=False)
        return self.head(y.mean(1))


class Upsampling(nn.Module):
    """Ops with no float16 form in ONNX (Resize scales, Range) beside ones that have one."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4 * 16 * 16, 10)

    def forward(self, x):
        y = nn.functional.interpolate(self.conv(x), scale_factor=2.0, mode="nearest")
        offset = torch.arange(x.shape[0], dtype=torch.float32)[:, None] * 0.0
        return self.head(nn.functional.layer_norm(y.flatten(1), (4 * 16 * 16,))) + offset


def _quantize(model, ctx, tmp_path, runtime="onnxruntime"):
    example = ctx.example_inputs(4).clone()  # a view would save the whole test split into a .pt2
    if runtime == "onnxruntime":
        fp32 = export_onnx(model.eval(), example, tmp_path / "fp32.onnx")
    else:
        fp32 = export_torch(model.eval(), example, tmp_path / "fp32.pt2")
    half = Fp16Quantizer().quantize(model, fp32, tmp_path / f"fp16{fp32.suffix}", ctx, Fp16Quantizer.defaults)
    return fp32, half


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_fp16_file_is_about_half_the_size(make_ctx, tmp_path, runtime):
    ctx = make_ctx(runtime=runtime)
    fp32, half = _quantize(Wide(), ctx, tmp_path, runtime)
    assert half.suffix == fp32.suffix
    ratio = artifact_sizes(fp32)["size_mb"] / artifact_sizes(half)["size_mb"]
    assert 1.85 < ratio < 2.05


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_fp16_outputs_match_fp32(make_ctx, digits_baseline, digits_task, digits_data, tmp_path, runtime, capfd):
    ctx = make_ctx(runtime=runtime)
    fp32, half = _quantize(digits_baseline.model, ctx, tmp_path, runtime)
    assert capfd.readouterr().out == ""
    x, y = digits_data.test
    ref, out = load_runner(fp32)(x), load_runner(half)(x)
    assert out.dtype == torch.float32 and out.shape == ref.shape  # float32 in, float32 out
    assert (out - ref).abs().max().item() <= 0.02 * ref.abs().max().item()
    assert (out.argmax(1) == ref.argmax(1)).float().mean().item() >= 0.99
    assert abs(digits_task.metric(out, y) - digits_task.metric(ref, y)) <= 0.01


def test_fp16_onnx_graph_holds_float16_weights_behind_float32_io(make_ctx, digits_baseline, tmp_path):
    import onnx
    import onnxruntime as ort

    _, half = _quantize(digits_baseline.model, make_ctx(), tmp_path)
    graph = onnx.load(str(half)).graph
    assert {init.data_type for init in graph.initializer if len(init.dims) >= 2} == {onnx.TensorProto.FLOAT16}
    session = ort.InferenceSession(str(half), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float)"
    assert session.get_outputs()[0].type == "tensor(float)"


def test_fp16_torch_program_holds_float16_weights(make_ctx, digits_baseline, tmp_path):
    _, half = _quantize(digits_baseline.model, make_ctx(runtime="torch"), tmp_path, "torch")
    program = torch.export.load(str(half))
    dtypes = {t.dtype for name, t in program.state_dict.items() if "running" not in name and t.is_floating_point()}
    assert dtypes == {torch.float16}


@pytest.mark.parametrize("model_cls", [Attention, Upsampling])
def test_fp16_handles_attention_and_float32_only_ops(make_ctx, tmp_path, model_cls):
    """Graphs onnxruntime's CPU provider is fragile on in float16 load and agree with fp32."""
    torch.manual_seed(0)
    model = model_cls().eval()
    ctx = make_ctx()
    fp32, half = _quantize(model, ctx, tmp_path)
    x = ctx.data.test[0][:64]
    ref, out = load_runner(fp32)(x), load_runner(half)(x)
    assert (out - ref).abs().max().item() <= 0.01 * max(1.0, ref.abs().max().item())


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_fp16_latency_is_measured_not_assumed(make_ctx, digits_baseline, tmp_path, runtime):
    ctx = make_ctx(runtime=runtime)
    _, half = _quantize(digits_baseline.model, ctx, tmp_path, runtime)
    stats = measure_latency(load_runner(half), ctx.example_inputs(32), warmup=1, repeats=3)
    assert math.isfinite(stats.median_ms) and stats.median_ms > 0  # no claim that it is faster


def test_applicable_to_both_runtimes_only(make_ctx):
    q = Fp16Quantizer()
    assert q.applicable(nn.Linear(2, 2), make_ctx()) is None
    assert q.applicable(nn.Linear(2, 2), make_ctx(runtime="torch")) is None
    reason = q.applicable(nn.Linear(2, 2), make_ctx(runtime="tflite"))
    assert reason and "onnxruntime" in reason and "torch" in reason


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_the_pipeline_ships_and_measures_fp16(make_ctx, digits_baseline, capfd, runtime):
    from orchestrator.config import LatencyConfig
    from orchestrator.pipeline import run_recipe
    from orchestrator.pluginmanager import Catalogue
    from orchestrator.recipe import Recipe
    from orchestrator_plugins.distillers.finetune import FineTune
    from orchestrator_plugins.pruners.none import NoPruner

    catalogue = Catalogue()
    catalogue.strategies["pruner"]["none"] = NoPruner()
    catalogue.strategies["distiller"]["none"] = FineTune()
    catalogue.strategies["quantizer"]["fp16"] = Fp16Quantizer()
    recipe = Recipe.model_validate({"train": {"strategy": "none", "params": {"epochs": 0, "lr": 1e-3}},
                                    "quantize": {"strategy": "fp16"}})
    candidate = run_recipe(recipe, make_ctx(runtime=runtime), catalogue,
                           LatencyConfig(runtime=runtime, batch_size=32, warmup=1, repeats=3),
                           digits_baseline.val_metric)
    assert capfd.readouterr().out == ""  # nothing printed on the way
    assert candidate.artifact.suffix == (".onnx" if runtime == "onnxruntime" else ".pt2")
    assert abs(candidate.metrics["accuracy_drop"]) <= 1.0
    assert candidate.metrics["latency_ms"] > 0
