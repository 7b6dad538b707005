"""The ``int4-weight`` quantizer: smaller than int8, accurate, honest about its size bound and about what it
cannot quantize."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

int4 = pytest.importorskip("orchestrator_obd_int4.int4", reason="the example plugin is not installed: "
                           "pip install -e examples/orchestrator-obd-int4")
Int4WeightQuantizer = int4.Int4WeightQuantizer


def _run(path: Path, x: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def _accuracy(path: Path, data) -> float:
    x, y = data.test
    return float((_run(path, x).argmax(1) == y.numpy()).mean())


def _nodes(path: Path, op_type: str) -> list[onnx.NodeProto]:
    return [n for n in onnx.load(str(path)).graph.node if n.op_type == op_type]


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def test_int4_file_is_smaller_than_int8_and_as_accurate_as_fp32(clusters, clusters_onnx, make_ctx, tmp_path):
    from orchestrator_plugins.quantizers.dynamic_int8 import DynamicInt8Quantizer

    task, data, model = clusters
    ctx = make_ctx(task, data, model)
    q4 = Int4WeightQuantizer()
    int4_path = q4.quantize(model, clusters_onnx, tmp_path / "int4.onnx", ctx, q4.defaults)
    int8_path = DynamicInt8Quantizer().quantize(model, clusters_onnx, tmp_path / "int8.onnx", ctx,
                                                DynamicInt8Quantizer.defaults)
    fp32, int8, int4_bytes = (p.stat().st_size for p in (clusters_onnx, int8_path, int4_path))
    # measured: 314 kB fp32, 85 kB int8, 56 kB int4 (g32, with zero points)
    assert int4_bytes < 0.7 * int8 and int4_bytes < 0.2 * fp32, (fp32, int8, int4_bytes)
    nodes = _nodes(int4_path, "MatMulNBits")
    assert len(nodes) == 3 and not _nodes(int4_path, "Gemm")  # every Linear, the classifier included
    assert all(_attrs(n)["bits"] == 4 and _attrs(n)["block_size"] == 32 for n in nodes)
    baseline = _accuracy(clusters_onnx, data)
    assert baseline > 0.9
    assert abs(_accuracy(int4_path, data) - baseline) <= 0.01  # measured: 0.947 against 0.948


@pytest.mark.parametrize("params", [
    {"block_size": 16, "symmetric": True, "accuracy_level": 4},
    {"block_size": 128, "symmetric": False, "accuracy_level": 0},
])
def test_every_setting_runs_close_to_fp32_and_never_under_the_declared_bytes_per_weight(clusters, clusters_onnx,
                                                                                      make_ctx, tmp_path, params):
    from orchestrator.precheck import weights_in_use

    task, data, model = clusters
    q4 = Int4WeightQuantizer()
    params = {**q4.defaults, **params}
    path = q4.quantize(model, clusters_onnx, tmp_path / "int4.onnx", make_ctx(task, data, model), params)
    for node in _nodes(path, "MatMulNBits"):
        assert _attrs(node)["block_size"] == params["block_size"]
        assert _attrs(node).get("accuracy_level", 0) == params["accuracy_level"]
        assert (len(node.input) == 4) != params["symmetric"]  # zero points only when asymmetric
    # the pre-check rejects recipes with weights_in_use x min_bytes_per_weight above size_mb's max
    assert path.stat().st_size >= weights_in_use(model, data.test[0][:2]) * q4.min_bytes_per_weight
    x = data.test[0][:256]
    reference = _run(clusters_onnx, x)
    assert np.abs(_run(path, x) - reference).max() < 0.1 * np.abs(reference).max()
    assert (_run(path, x).argmax(1) == reference.argmax(1)).mean() > 0.97


class _Bag(nn.Module):
    """Token ids -> mean of their embeddings -> a linear classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(400, 64)
        self.head = nn.Linear(64, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.tokens(ids).mean(dim=1))


def test_embedding_tables_become_4_bit_lookups_unless_asked_not_to(make_ctx, clusters, tmp_path):
    from orchestrator.export import export_onnx
    from orchestrator.precheck import weights_in_use

    task, data, _ = clusters
    torch.manual_seed(0)
    model = _Bag().eval()
    ids = torch.randint(0, 400, (64, 12))
    fp32 = export_onnx(model, ids[:4], tmp_path / "fp32.onnx")
    q4 = Int4WeightQuantizer()
    ctx = make_ctx(task, data, model)
    with_tables = q4.quantize(model, fp32, tmp_path / "tables.onnx", ctx, q4.defaults)
    without = q4.quantize(model, fp32, tmp_path / "plain.onnx", ctx, {**q4.defaults, "embeddings": False})
    assert len(_nodes(with_tables, "GatherBlockQuantized")) == 1 and not _nodes(with_tables, "Gather")
    assert not _nodes(without, "GatherBlockQuantized") and len(_nodes(without, "Gather")) == 1
    assert _nodes(with_tables, "MatMulNBits") and _nodes(without, "MatMulNBits")
    sizes = [p.stat().st_size for p in (fp32, without, with_tables)]
    assert sizes[2] < 0.2 * sizes[0] < sizes[1], sizes  # the table is 25,600 of the 25,856 weights
    assert sizes[2] >= weights_in_use(model, ids[:2]) * q4.min_bytes_per_weight
    # 4-bit tables need opset 21: the model is converted to it, not merely relabelled, and keeps the
    # intermediate shapes the exporter wrote, so its size compares fairly with other files
    converted, original = onnx.load(str(with_tables)), onnx.load(str(fp32))
    assert [o.version for o in converted.opset_import if o.domain == ""] == [21]
    shapes = {v.name for v in original.graph.value_info}
    assert shapes and shapes <= {v.name for v in converted.graph.value_info} | {i.name for i in
                                                                                converted.graph.initializer}
    reference = _run(fp32, ids)
    assert np.abs(_run(with_tables, ids) - reference).max() < 0.1 * np.abs(reference).max()


class _ConvOnly(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 10, 1),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_a_model_without_linear_layers_is_inapplicable_and_never_shipped_as_fp32(make_ctx, clusters, tmp_path):
    from orchestrator.export import export_onnx

    task, data, mlp = clusters
    q4 = Int4WeightQuantizer()
    model = _ConvOnly().eval()
    reason = q4.applicable(model, make_ctx(task, data, model))
    assert reason and "no Linear or attention layer" in reason
    assert q4.applicable(mlp, make_ctx(task, data, mlp)) is None
    fp32 = export_onnx(model, torch.randn(2, 1, 8, 8), tmp_path / "conv.onnx")
    with pytest.raises(RuntimeError, match="found no MatMul with a constant 2-D weight"):
        q4.quantize(model, fp32, tmp_path / "int4.onnx", make_ctx(task, data, model), q4.defaults)


def test_quantizing_prints_and_logs_nothing(clusters, clusters_onnx, make_ctx, tmp_path, capfd):
    task, data, model = clusters
    q4 = Int4WeightQuantizer()
    q4.quantize(model, clusters_onnx, tmp_path / "int4.onnx", make_ctx(task, data, model), q4.defaults)
    assert capfd.readouterr() == ("", "")


def test_targets_onnxruntime_only(make_ctx, clusters):
    task, data, model = clusters
    reason = Int4WeightQuantizer().applicable(model, make_ctx(task, data, model, runtime="torch"))
    assert reason and "onnxruntime" in reason and "torch" in reason


def test_describe_names_the_setting_in_words():
    q4 = Int4WeightQuantizer()
    assert q4.describe(q4.defaults) == "int4-weight g32 asym"
    assert q4.describe({"block_size": 128, "symmetric": True, "accuracy_level": 4, "embeddings": False}) == (
        "int4-weight g128 sym int8-compute float-embeddings")
