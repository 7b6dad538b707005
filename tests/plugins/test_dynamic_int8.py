import pytest
import torch
from torch import nn

from orchestrator.export import export_onnx, load_runner
from orchestrator.metrics import artifact_sizes
from orchestrator.training import fit
from orchestrator_plugins.quantizers.dynamic_int8 import DynamicInt8Quantizer

from models import Wide


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="module")
def trained_mlp(digits_task, digits_data, tmp_path_factory):
    """An MLP trained briefly on digits, with its fp32 ONNX file."""
    torch.manual_seed(0)
    model = Mlp()
    fit(model, digits_task, digits_data, epochs=4, lr=1e-2, batch_size=64, seed=0)
    path = export_onnx(model.eval(), digits_data.test[0][:4], tmp_path_factory.mktemp("mlp") / "fp32.onnx")
    return model, path


def test_int8_file_is_about_four_times_smaller(make_ctx, tmp_path):
    ctx = make_ctx()
    model = Wide().eval()
    fp32 = export_onnx(model, ctx.example_inputs(4), tmp_path / "fp32.onnx")
    q = DynamicInt8Quantizer().quantize(model, fp32, tmp_path / "int8.onnx", ctx, DynamicInt8Quantizer.defaults)
    ratio = artifact_sizes(fp32)["size_mb"] / artifact_sizes(q)["size_mb"]
    assert 3.5 < ratio < 4.1


@pytest.mark.parametrize("per_channel,reduce_range", [(False, False), (True, False), (False, True)])
def test_int8_accuracy_stays_close_to_fp32(make_ctx, trained_mlp, digits_task, digits_data, tmp_path,
                                           per_channel, reduce_range, capfd):
    model, fp32 = trained_mlp
    params = {"per_channel": per_channel, "reduce_range": reduce_range}
    q = DynamicInt8Quantizer().quantize(model, fp32, tmp_path / "int8.onnx", make_ctx(), params)
    assert capfd.readouterr().out == ""  # onnxruntime's tools print nothing through us
    x, y = digits_data.test
    acc_fp32 = digits_task.metric(load_runner(fp32)(x), y)
    acc_int8 = digits_task.metric(load_runner(q)(x), y)
    assert acc_fp32 > 0.9
    assert abs(acc_fp32 - acc_int8) <= 0.02


def test_int8_graph_quantizes_the_linear_layers(make_ctx, trained_mlp, tmp_path):
    import onnx

    model, fp32 = trained_mlp
    q = DynamicInt8Quantizer().quantize(model, fp32, tmp_path / "int8.onnx", make_ctx(),
                                        DynamicInt8Quantizer.defaults)
    graph = onnx.load(str(q)).graph
    assert {init.data_type for init in graph.initializer if len(init.dims) >= 2} == {onnx.TensorProto.INT8}
    ops = [n.op_type for n in graph.node]
    assert ops.count("MatMulInteger") == 2  # both Linear layers
    assert "DynamicQuantizeLinear" in ops  # activations quantized at run time, no calibration
    assert "QuantizeLinear" not in ops


def test_convolutions_stay_float(make_ctx, digits_baseline, tmp_path):
    """On the digits CNN only the classifier is quantized; the file still runs and agrees with fp32."""
    import onnx

    ctx = make_ctx()
    model = digits_baseline.model
    fp32 = export_onnx(model, ctx.example_inputs(4), tmp_path / "fp32.onnx")
    q = DynamicInt8Quantizer().quantize(model, fp32, tmp_path / "int8.onnx", ctx, DynamicInt8Quantizer.defaults)
    ops = [n.op_type for n in onnx.load(str(q)).graph.node]
    assert "ConvInteger" not in ops and "Conv" in ops and "MatMulInteger" in ops
    x = ctx.data.test[0]
    agree = (load_runner(q)(x).argmax(1) == load_runner(fp32)(x).argmax(1)).float().mean().item()
    assert agree > 0.97


def test_applicable_is_honest(make_ctx, digits_baseline):
    q = DynamicInt8Quantizer()
    onnx_ctx = make_ctx()
    assert q.applicable(Wide(), onnx_ctx) is None
    assert q.applicable(digits_baseline.model, onnx_ctx) is None  # its classifier is a Linear layer
    assert q.applicable(nn.LSTM(8, 8), onnx_ctx) is None
    assert q.applicable(nn.Sequential(nn.MultiheadAttention(8, 2)), onnx_ctx) is None
    reason = q.applicable(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), onnx_ctx)
    assert reason and "Linear" in reason
    reason = q.applicable(nn.GRU(8, 8), onnx_ctx)  # ONNX Runtime has no dynamic int8 GRU
    assert reason
    reason = q.applicable(Wide(), make_ctx(runtime="torch"))
    assert reason and "onnxruntime" in reason


def test_the_pipeline_ships_and_measures_dynamic_int8(make_ctx, digits_baseline, capfd):
    from orchestrator.config import LatencyConfig
    from orchestrator.pipeline import run_recipe
    from orchestrator.pluginmanager import Catalogue
    from orchestrator.recipe import Recipe
    from orchestrator_plugins.distillers.finetune import FineTune
    from orchestrator_plugins.pruners.none import NoPruner

    catalogue = Catalogue()
    catalogue.strategies["pruner"]["none"] = NoPruner()
    catalogue.strategies["distiller"]["none"] = FineTune()
    catalogue.strategies["quantizer"]["dynamic-int8"] = DynamicInt8Quantizer()
    recipe = Recipe.model_validate({"train": {"strategy": "none", "params": {"epochs": 0, "lr": 1e-3}},
                                    "quantize": {"strategy": "dynamic-int8", "params": DynamicInt8Quantizer.defaults}})
    candidate = run_recipe(recipe, make_ctx(), catalogue, LatencyConfig(batch_size=32, warmup=1, repeats=3),
                           digits_baseline.val_metric)
    assert capfd.readouterr().out == ""  # nothing printed on the way
    assert candidate.artifact.suffix == ".onnx"
    assert candidate.metrics["accuracy_drop"] <= 2.0
