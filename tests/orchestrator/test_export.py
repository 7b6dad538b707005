"""Writing model files in each format and loading them back, with and without the orchestrator."""

import importlib.util
from pathlib import Path

import pytest
import torch

from orchestrator.export import export_onnx, export_torch, export_torchscript, load_runner


@pytest.mark.parametrize("export", [export_onnx, export_torch, export_torchscript], ids=["onnx", "torch", "torchscript"])
def test_artifact_gives_the_models_outputs_at_any_batch_size(export, digits_baseline, digits_data, tmp_path):
    model = digits_baseline.model
    suffix = {export_onnx: ".onnx", export_torch: ".pt2", export_torchscript: ".pt"}[export]
    path = export(model, digits_data.test[0][:4], tmp_path / f"m{suffix}")
    run = load_runner(path)
    for n in (1, 7, 300):
        x = digits_data.test[0][:n]
        with torch.no_grad():
            assert torch.allclose(run(x), model(x), atol=1e-4)


@pytest.mark.parametrize("export, suffix", [(export_onnx, ".onnx"), (export_torch, ".pt2"),
                                           (export_torchscript, ".pt")], ids=["onnx", "torch", "torchscript"])
def test_export_and_loading_back_are_silent(export, suffix, digits_baseline, digits_data, tmp_path, capfd):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # torch 2.13 deprecates torch.jit: our calls must not warn about it
        path = export(digits_baseline.model, digits_data.test[0][:4], tmp_path / f"m{suffix}")
        load_runner(path)(digits_data.test[0][:4])
    out, err = capfd.readouterr()
    assert out == "" and err == "" and [str(w.message) for w in caught] == []


def test_the_onnx_file_carries_no_debug_metadata_or_local_paths(digits_baseline, digits_data, tmp_path):
    import onnx

    path = export_onnx(digits_baseline.model, digits_data.val[0][:4], tmp_path / "m.onnx")
    model = onnx.load(str(path))
    assert not any(node.metadata_props or node.doc_string for node in model.graph.node)
    assert str(Path(__file__).resolve().parents[2]).encode() not in path.read_bytes()  # no source paths


def test_unknown_artifact_type_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown artifact type '.bin'"):
        load_runner(tmp_path / "model.bin")


#: Loads exported files with nothing but torch and onnxruntime: importing the orchestrator, its
#: plugins, the tests' model code or the libraries the models were built with fails.
LOAD_ALONE = """
import json, sys, warnings
BLOCKED = {"orchestrator", "orchestrator_plugins", "models", "helpers", "transformers", "torch_pruning"}

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ImportError(f"loading an exported model imported {name}")

sys.meta_path.insert(0, Refuse())
warnings.simplefilter("ignore")  # torch.jit.load's deprecation warning is the user's to see
import onnxruntime as ort, torch

outputs = {}
for key, path, inputs in json.loads(sys.argv[1]):
    x = torch.load(inputs)
    if path.endswith(".onnx"):
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        y = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
    elif path.endswith(".pt2"):
        y = torch.export.load(path).module()(x)
    else:
        y = torch.jit.load(path)(x)
    outputs[key] = y.detach()
assert not BLOCKED & {m.partition(".")[0] for m in sys.modules}, sorted(sys.modules)
torch.save(outputs, sys.argv[2])
"""


@pytest.fixture(scope="module")
def loaded_alone(tmp_path_factory):
    """Every catalogue model shape channel-pruned by the pipeline, which keeps its float model and writes
    its ONNX file; the kept float model written as TorchScript and as a torch.export program; all of them
    run on the validation inputs by a fresh interpreter that imports only torch and onnxruntime."""
    import json
    import subprocess
    import sys

    from orchestrator.baseline import prepare_baseline
    from orchestrator.context import TrialContext
    from orchestrator.errors import InapplicableError
    from orchestrator.export import FLOAT_MODEL, export_torchscript, load_float_model
    from orchestrator.pipeline import compress
    from orchestrator.pluginmanager import get_host
    from orchestrator.recipe import Recipe, StageChoice

    from models import SHAPES, ShapeTask

    root = tmp_path_factory.mktemp("formats")
    catalogue = get_host().catalogue
    pruned = Recipe(score=StageChoice(strategy="magnitude"), prune=StageChoice(strategy="channel",
                                                                               params={"ratio": 0.5}))
    expected, jobs = {}, []
    for shape in SHAPES:
        if shape == "bert" and importlib.util.find_spec("transformers") is None:
            continue
        task = ShapeTask(shape)
        data = task.load_data(seed=0)
        base = prepare_baseline(task, data, seed=0, log=lambda m: None)
        work = root / shape
        ctx = TrialContext(task=task, data=data, teacher=base.model, seed=0, workdir=work)
        try:
            onnx_file = compress(pruned, ctx, catalogue).artifact
        except InapplicableError:
            onnx_file = compress(Recipe(), ctx, catalogue).artifact
        model = load_float_model(work / FLOAT_MODEL)
        example = ctx.example_inputs(8)
        files = {"onnx": onnx_file, "pt": export_torch(model, example, work / "model.pt2"),
                 "torchscript": export_torchscript(model, example, work / "model.pt")}
        x, y = data.val
        torch.save(x, work / "inputs.pt")
        with torch.no_grad():
            expected[shape] = (task, model(x), y)
        jobs += [[f"{shape}/{fmt}", str(path), str(work / "inputs.pt")] for fmt, path in files.items()]
    done = subprocess.run([sys.executable, "-I", "-c", LOAD_ALONE, json.dumps(jobs), str(root / "outputs.pt")],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return expected, torch.load(root / "outputs.pt")


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "pt"])
@pytest.mark.parametrize("shape", ["cnn", "mlp", "encoder", "bert"])
def test_an_exported_model_runs_alone_and_gives_the_float_models_outputs(loaded_alone, shape, fmt):
    expected, outputs = loaded_alone
    if shape not in expected:
        pytest.skip("transformers is not installed")
    task, reference, y = expected[shape]
    got = outputs[f"{shape}/{fmt}"]
    assert got.shape == reference.shape  # the validation split's batch, not the batch of 8 it was traced with
    assert torch.allclose(got, reference, atol=1e-4, rtol=1e-4)
    assert task.metric(got, y) == task.metric(reference, y)
