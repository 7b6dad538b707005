"""``fp16``: a half-precision (IEEE 754 binary16) artifact.

Not integer quantization: every float32 weight and activation becomes float16, halving the file
and the memory traffic. Micikevicius et al., "Mixed Precision Training" (ICLR 2018) showed that
networks keep their accuracy in this format.

* ``onnxruntime``: the fp32 ONNX file is converted with the ``onnx`` package — float
  initializers, constants and casts become float16; the model's float32 inputs and outputs are
  kept, with ``Cast`` nodes at the boundary, so callers feed and read float32 as before. Ops
  whose ONNX schema has no float16 form (``Range``, ``Resize`` scales, the random generators,
  ``ai.onnx.ml``, contrib ops) keep running in float32 between casts.
* ``torch``: a ``torch.export`` program of the half model; the input is cast to float16 and
  the output back to float32 inside the program.

Latency is measured, never assumed: CPUs without native float16 arithmetic run most float16
ops through conversions (ONNX Runtime's CPU provider inserts casts around ops it has no float16
kernel for), so on a CPU the fp16 artifact is often *slower* than fp32; it pays off on GPUs and
on CPUs with float16 units (recent ARM cores), and always in file size.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from orchestrator import hookimpl
from orchestrator.export import ONNX_SUFFIX, TORCH_SUFFIX, export_torch
from orchestrator.strategies import Quantizer

#: Ops whose ONNX schema has no float16 form (or that are not ours to retype): they run in float32.
FLOAT32_OPS = frozenset({
    "Range", "Resize", "Upsample", "NonMaxSuppression", "RandomNormal", "RandomUniform", "RandomNormalLike",
    "RandomUniformLike", "Multinomial", "Bernoulli", "EyeLike", "STFT", "MelWeightMatrix", "HannWindow",
    "HammingWindow", "BlackmanWindow",
})
_FP16_MAX = float(np.finfo(np.float16).max)


class HalfPrecision(nn.Module):
    """Runs ``model`` in float16 between a float32 input and a float32 output."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.half() if x.is_floating_point() else x).float()


class Fp16Quantizer(Quantizer):
    name = "fp16"
    min_bytes_per_weight = 2.0
    runtimes = ("onnxruntime", "torch")

    def quantize(self, model, fp32_path: Path, out_path: Path, ctx: Any, params: Mapping[str, Any]) -> Path:
        if Path(fp32_path).suffix == TORCH_SUFFIX:
            half = self.torch_equivalent(model, params)
            # clone: a slice of the task's data would carry its whole storage into the program's sample inputs
            return export_torch(half, ctx.example_inputs(8).clone(), Path(out_path))
        if Path(fp32_path).suffix != ONNX_SUFFIX:
            raise ValueError(f"fp16: unknown artifact type '{Path(fp32_path).suffix}'")
        import onnx

        half = convert_onnx_to_fp16(onnx.load(str(fp32_path)))
        onnx.save(half, str(out_path))
        check_session(Path(out_path))
        return Path(out_path)

    def torch_equivalent(self, model: nn.Module, params: Mapping[str, Any]) -> nn.Module:
        # measured: a torch float16 model gives the ONNX Runtime float16 file's accuracy on the
        # built-in and test tasks; an export checks it again on the task's validation split
        return HalfPrecision(copy.deepcopy(model).float().eval())


def check_session(path: Path, timeout_s: float = 300.0) -> None:
    """Create an onnxruntime CPU session for ``path`` in a child process first.

    onnxruntime's CPU provider has crashed the whole process (SIGSEGV) on some float16 graphs
    while creating the session; a crash here fails this trial with an error instead of killing
    the search that measures the artifact next.
    """
    code = ("import sys, onnxruntime as ort; o = ort.SessionOptions(); o.log_severity_level = 3; "
            "ort.InferenceSession(sys.argv[1], o, providers=['CPUExecutionProvider'])")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise RuntimeError(f"onnxruntime cannot load the float16 graph {path.name}: {detail[0]}")


def convert_onnx_to_fp16(model: "onnx.ModelProto") -> "onnx.ModelProto":
    """A float16 copy of ``model`` whose graph inputs and outputs stay as they were (float32)."""
    import onnx
    from onnx import TensorProto, helper

    model = copy.deepcopy(model)
    if model.functions:
        from onnx import inliner

        model = inliner.inline_local_functions(model)
    # element types of every value, from the float32 graph, to know which edges carry floats
    typed = onnx.shape_inference.infer_shapes(model)
    types: dict[str, int] = {}
    for vi in [*typed.graph.input, *typed.graph.output, *typed.graph.value_info]:
        if vi.type.HasField("tensor_type"):
            types[vi.name] = vi.type.tensor_type.elem_type
    for init in typed.graph.initializer:
        types[init.name] = init.data_type

    graph = model.graph
    taken = _all_names(graph)
    fresh = _Namer(taken)
    nodes: list = []

    # float32 graph inputs: cast once to float16 and feed that to the graph's nodes
    renamed: dict[str, str] = {}
    constants = {init.name for init in graph.initializer}
    for inp in graph.input:
        if inp.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        if inp.name in constants:  # an initializer also listed as an input (IR < 4): a float16 constant now
            inp.type.tensor_type.elem_type = TensorProto.FLOAT16
        else:
            half = fresh(f"{inp.name}_fp16")
            nodes.append(helper.make_node("Cast", [inp.name], [half], to=TensorProto.FLOAT16, name=fresh("cast_in")))
            renamed[inp.name] = half

    # float32 graph outputs: the graph produces float16 under a new name, cast back at the end
    outputs = {o.name for o in graph.output if o.type.tensor_type.elem_type == TensorProto.FLOAT}
    out_renamed = {name: fresh(f"{name}_fp16") for name in outputs}
    tail = [helper.make_node("Cast", [out_renamed[n]], [n], to=TensorProto.FLOAT, name=fresh("cast_out"))
            for n in outputs]
    for old, new in [*renamed.items(), *out_renamed.items()]:
        types[new] = types.get(old, TensorProto.UNDEFINED)

    consumers: dict[str, set[str]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, set()).add(node.op_type)
    consumed = {**renamed, **out_renamed}
    for node in graph.node:
        feeds = set().union(*(consumers.get(o, set()) for o in node.output))
        _rename_inputs(node, consumed)
        node.output[:] = [out_renamed.get(o, o) for o in node.output]
        if _stays_float32(node, feeds):
            # feed float32, hand float16 on: casts around the node
            for k, name in enumerate(node.input):
                if name and types.get(name) == TensorProto.FLOAT:
                    f32 = fresh(f"{name}_fp32")
                    nodes.append(helper.make_node("Cast", [name], [f32], to=TensorProto.FLOAT, name=fresh("cast")))
                    node.input[k] = f32
            nodes.append(node)
            for k, name in enumerate(node.output):
                if name and types.get(name) == TensorProto.FLOAT:
                    f32 = fresh(f"{name}_fp32")
                    node.output[k] = f32
                    nodes.append(helper.make_node("Cast", [f32], [name], to=TensorProto.FLOAT16, name=fresh("cast")))
            continue
        _retype_node(node)
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes + tail)

    for init in graph.initializer:
        _to_fp16(init)
    del graph.value_info[:]  # float32 annotations are stale; onnxruntime infers the types again
    onnx.checker.check_model(model)
    return model


def _stays_float32(node, feeds: set[str]) -> bool:
    """Whether ``node`` runs in float32 between casts; ``feeds``: the op types consuming its outputs."""
    if node.domain not in ("", "ai.onnx") or node.op_type in FLOAT32_OPS:
        return True
    # onnxruntime 1.32's CPU provider crashes (SIGSEGV in its NCHWc layout pass) creating a session
    # for a float16 Transpose feeding a MatMul/Gemm; a float32 Transpose between casts avoids it
    return node.op_type == "Transpose" and bool(feeds & {"MatMul", "Gemm"})


def _retype_node(node) -> None:
    """Float16 versions of a node's float32 constants, casts and subgraphs."""
    from onnx import TensorProto, helper

    if node.op_type == "ConstantOfShape" and not any(a.name == "value" for a in node.attribute):
        zero = helper.make_tensor("value", TensorProto.FLOAT16, [1], [0])  # the default is a float32 zero
        node.attribute.append(helper.make_attribute("value", zero))
    for k, attr in enumerate(node.attribute):
        if attr.name == "to" and node.op_type == "Cast" and attr.i == TensorProto.FLOAT:
            attr.i = TensorProto.FLOAT16
        elif attr.type == attr.TENSOR:
            _to_fp16(attr.t)
        elif attr.type == attr.GRAPH:
            _retype_graph(attr.g)
        elif attr.type == attr.GRAPHS:
            for g in attr.graphs:
                _retype_graph(g)
        elif node.op_type == "Constant" and attr.name in ("value_float", "value_floats"):
            values = [attr.f] if attr.name == "value_float" else list(attr.floats)
            dims = [] if attr.name == "value_float" else [len(values)]
            tensor = helper.make_tensor("value", TensorProto.FLOAT16, dims, np.asarray(values, np.float16).tolist())
            node.attribute[k].CopyFrom(helper.make_attribute("value", tensor))


def _rename_inputs(node, names: Mapping[str, str]) -> None:
    """Point a node's inputs, and its subgraphs' references to outer values, at the renamed values."""
    node.input[:] = [names.get(i, i) for i in node.input]
    for attr in node.attribute:
        for g in [attr.g] if attr.type == attr.GRAPH else list(attr.graphs):
            local = {v.name for v in g.input} | {n for sub in g.node for n in sub.output}
            inner = {k: v for k, v in names.items() if k not in local}
            for sub in g.node:
                _rename_inputs(sub, inner)
            for out in g.output:
                out.name = inner.get(out.name, out.name)


def _retype_graph(graph) -> None:
    """A subgraph (If/Loop/Scan body) runs wholly in float16, its float inputs and outputs too."""
    from onnx import TensorProto

    for node in graph.node:
        _retype_node(node)
    for init in graph.initializer:
        _to_fp16(init)
    for vi in [*graph.input, *graph.output]:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = TensorProto.FLOAT16
    del graph.value_info[:]


def _to_fp16(tensor) -> None:
    """Convert a float32 TensorProto to float16 in place (values clipped to float16's range)."""
    from onnx import TensorProto, numpy_helper

    if tensor.data_type != TensorProto.FLOAT:
        return
    values = np.clip(numpy_helper.to_array(tensor), -_FP16_MAX, _FP16_MAX).astype(np.float16)
    tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))


def _all_names(graph) -> set[str]:
    names = {v.name for v in [*graph.input, *graph.output, *graph.value_info]}
    names |= {i.name for i in graph.initializer}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        names.add(node.name)
    return names


class _Namer:
    """Fresh value and node names that collide with nothing in the graph."""

    def __init__(self, taken: Iterable[str]) -> None:
        self.taken = set(taken)

    def __call__(self, base: str) -> str:
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name


@hookimpl
def orchestrator_register_quantizers(register):
    register(Fp16Quantizer())
