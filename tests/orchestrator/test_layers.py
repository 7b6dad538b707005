"""The per-layer record of a trial: width and weights kept against the baseline, zeros, and the
precision each layer's weights ship in, read from the file."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from orchestrator.layers import layer_table, shipped_precisions


def _initializers(path, named):
    tensors = [numpy_helper.from_array(np.asarray(value), name) for name, value in named.items()]
    graph = helper.make_graph([], "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], tensors)
    onnx.save(helper.make_model(graph), path)
    return path


def test_precisions_come_from_the_file_whatever_the_quantizer_named_the_weight(tmp_path):
    path = _initializers(tmp_path / "m.onnx", {
        "fc1.weight": np.zeros((2, 2), np.float32),                           # float, as exported
        "fc2.weight_quantized": np.zeros((2, 2), np.int8),                     # ONNX Runtime int8
        "fc2.weight_scale": np.ones(2, np.float32),
        "head.weight_Transposed_quantized": np.zeros((2, 2), np.uint8),        # a transposed MatMul weight
        "emb.weight_Transposed_Q4": np.zeros((2, 1), np.uint8),                # MatMulNBits packs 4-bit pairs
        "emb.weight_Transposed_scales": np.ones(2, np.float32),
        "half.weight": np.zeros((2, 2), np.float16),
    })
    assert shipped_precisions(path) == {"fc1.weight": "fp32", "fc2.weight": "int8", "head.weight": "uint8",
                                        "emb.weight": "int4", "half.weight": "fp16"}


def test_a_pruned_layer_shows_the_width_and_weights_it_kept_and_its_zeros():
    baseline = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 2))
    pruned = copy.deepcopy(baseline)
    pruned[0] = nn.Linear(8, 3)  # half the hidden units removed, as channel pruning does
    pruned[2] = nn.Linear(3, 2)
    with torch.no_grad():
        pruned[2].weight[0].zero_()
    rows = {r["name"]: r for r in layer_table(baseline, pruned, None)}
    assert rows["0"]["shape"] == [3, 8] and rows["0"]["base_shape"] == [6, 8] and rows["0"]["width_kept"] == 0.5
    assert rows["0"]["params"] == 27 and rows["0"]["base_params"] == 54
    assert rows["2"]["width_kept"] == 1.0 and rows["2"]["sparsity"] == 0.5
    assert {r["precision"] for r in rows.values()} == {"fp32"}
