import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from orchestrator.context import TrialContext
from orchestrator.export import export_onnx, load_runner
from orchestrator.training import predict_module
from orchestrator_plugins.distillers.finetune import FineTune
from orchestrator_plugins.pruners.channel import ChannelPruner
from orchestrator_plugins.pruners.none import NoPruner
from orchestrator_plugins.quantizers.qat import FakeQuantized, QatQuantizer
from orchestrator_plugins.scorers.magnitude import MagnitudeScorer

PARAMS = dict(QatQuantizer.defaults)


def _types(model):
    return [type(m) for m in model.modules()]


@pytest.fixture(scope="module")
def qat_run(digits_task, digits_data, digits_baseline, tmp_path_factory):
    """The recipe's order on a channel-pruned digits CNN:
    prune -> prepare -> train 2 epochs -> end -> export -> quantize."""
    work = tmp_path_factory.mktemp("qat")
    ctx = TrialContext(task=digits_task, data=digits_data, teacher=digits_baseline.model, seed=0, workdir=work)
    base = copy.deepcopy(digits_baseline.model).eval()
    pruned = ChannelPruner().prune(base, MagnitudeScorer().score(base, ctx, {"p": 1}), ctx, {"ratio": 0.3}).eval()
    before = copy.deepcopy(pruned)
    q = QatQuantizer()
    wrapped = q.prepare_training(pruned, ctx, PARAMS)
    torch.manual_seed(0)
    trained = FineTune().train(wrapped, ctx, {"epochs": 2, "lr": 1e-3}).eval()
    plain = q.end_training(trained, ctx, PARAMS).eval()
    fp32 = export_onnx(plain, ctx.example_inputs(4), work / "fp32.onnx")
    int8 = q.quantize(plain, fp32, work / "int8.onnx", ctx, PARAMS)
    return dict(ctx=ctx, pruned=pruned, before=before, plain=plain, fp32=fp32, int8=int8)


def test_prepare_fake_quantizes_the_forward_pass(make_ctx, digits_baseline, digits_data):
    model = digits_baseline.model
    state = {k: v.clone() for k, v in model.state_dict().items()}
    wrapped = QatQuantizer().prepare_training(model, make_ctx(), PARAMS)
    n_layers = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())
    assert sum(isinstance(m, FakeQuantized) for m in wrapped.modules()) == n_layers
    x = digits_data.test[0]
    ref, out = predict_module(model, x), predict_module(wrapped, x)
    assert (out - ref).abs().max().item() > 1e-3  # the forward pass is quantized...
    assert (out.argmax(1) == ref.argmax(1)).float().mean().item() >= 0.95  # ...and still the same classifier
    # the model passed in is untouched: no wrappers, same weights and BatchNorm statistics
    assert not any(isinstance(m, FakeQuantized) for m in model.modules())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


def test_gradients_pass_straight_through(make_ctx, digits_baseline, digits_data):
    wrapped = QatQuantizer().prepare_training(digits_baseline.model, make_ctx(), PARAMS).train()
    x, y = digits_data.train[0][:64], digits_data.train[1][:64]
    nn.functional.cross_entropy(wrapped(x), y).backward()
    for m in wrapped.modules():
        if isinstance(m, FakeQuantized):
            assert m.layer.weight.grad is not None and m.layer.weight.grad.abs().sum() > 0


def test_observed_ranges_follow_training_and_freeze_in_eval(make_ctx, digits_baseline, digits_data):
    wrapped = QatQuantizer().prepare_training(digits_baseline.model, make_ctx(), PARAMS)
    first = next(m for m in wrapped.modules() if isinstance(m, FakeQuantized))
    lo, hi = first.input_min.item(), first.input_max.item()
    assert lo == pytest.approx(0.0) and hi == pytest.approx(1.0)  # digits pixels span [0, 1]
    with torch.no_grad():
        wrapped.eval()(digits_data.train[0][:64] * 3)
        assert first.input_max.item() == pytest.approx(hi)  # eval: frozen
        wrapped.train()(digits_data.train[0][:64] * 3)
        assert hi < first.input_max.item() < 3 * hi  # training: a moving average towards the new range


def test_training_through_prepare_and_end_keeps_accuracy(qat_run, digits_task, digits_data):
    x, y = digits_data.test
    acc_pruned = digits_task.metric(predict_module(qat_run["before"], x), y)
    acc_fp32 = digits_task.metric(load_runner(qat_run["fp32"])(x), y)
    acc_int8 = digits_task.metric(load_runner(qat_run["int8"])(x), y)
    assert acc_fp32 >= acc_pruned - 0.02
    assert acc_int8 > 0.9
    assert abs(acc_fp32 - acc_int8) <= 0.02


def test_end_training_leaves_the_original_module_types(qat_run):
    assert _types(qat_run["plain"]) == _types(qat_run["before"])
    assert not any(isinstance(m, FakeQuantized) for m in qat_run["plain"].modules())
    # the channel-pruned widths (not the baseline's) survive, with trained (changed) weights
    assert qat_run["plain"].classifier.in_features < qat_run["ctx"].teacher.classifier.in_features
    shapes = {k: v.shape for k, v in qat_run["before"].state_dict().items()}
    assert {k: v.shape for k, v in qat_run["plain"].state_dict().items()} == shapes
    assert not torch.equal(qat_run["plain"].classifier.weight, qat_run["before"].classifier.weight)
    # prepare_training worked on a copy: the pruned model it was given is unchanged
    assert _types(qat_run["pruned"]) == _types(qat_run["before"])


def test_shipped_file_holds_int8_weights(qat_run):
    import onnx

    graph = onnx.load(str(qat_run["int8"])).graph
    assert {init.data_type for init in graph.initializer if len(init.dims) >= 2} == {onnx.TensorProto.INT8}
    assert any(n.op_type == "QuantizeLinear" for n in graph.node)


class Mask(nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, w):
        return w * self.mask


def test_weights_masked_by_a_parametrization_stay_masked(make_ctx, digits_baseline):
    """A pruner's masks (kept as parametrizations until finalize) hold through QAT training."""
    model = copy.deepcopy(digits_baseline.model)
    mask = (torch.rand_like(model.classifier.weight) > 0.5).float()
    parametrize.register_parametrization(model.classifier, "weight", Mask(mask))
    ctx = make_ctx()
    q = QatQuantizer()
    wrapped = q.prepare_training(model, ctx, PARAMS)
    FineTune().train(wrapped, ctx, {"epochs": 1, "lr": 3e-3})
    plain = q.end_training(wrapped, ctx, PARAMS)
    assert parametrize.is_parametrized(plain.classifier, "weight")
    assert torch.all(plain.classifier.weight[mask == 0] == 0)


def test_applicable_is_honest(make_ctx, digits_baseline):
    q = QatQuantizer()
    assert q.applicable(digits_baseline.model, make_ctx()) is None
    reason = q.applicable(digits_baseline.model, make_ctx(runtime="torch"))
    assert reason and "onnxruntime" in reason
    reason = q.applicable(nn.Sequential(nn.LSTM(8, 8)), make_ctx())
    assert reason and "Linear" in reason


def test_the_pipeline_runs_qat_end_to_end(make_ctx, digits_baseline, capfd):
    """Through the core's run_recipe: qat prepare -> fine-tune -> end -> export -> int8 -> measure."""
    from orchestrator.config import LatencyConfig
    from orchestrator.pipeline import run_recipe
    from orchestrator.pluginmanager import Catalogue
    from orchestrator.recipe import Recipe

    catalogue = Catalogue()
    catalogue.strategies["pruner"]["none"] = NoPruner()
    catalogue.strategies["distiller"]["none"] = FineTune()
    catalogue.strategies["quantizer"]["qat"] = QatQuantizer()
    recipe = Recipe.model_validate({"train": {"strategy": "none", "params": {"epochs": 1, "lr": 1e-3}},
                                    "quantize": {"strategy": "qat", "params": PARAMS}})
    candidate = run_recipe(recipe, make_ctx(), catalogue, LatencyConfig(batch_size=32, warmup=1, repeats=3),
                           digits_baseline.val_metric)
    assert capfd.readouterr().out == ""  # nothing printed on the way
    assert candidate.artifact.suffix == ".onnx"
    assert not any(isinstance(m, FakeQuantized) for m in candidate.model.modules())
    assert candidate.metrics["accuracy_drop"] <= 2.0  # percentage points below the fp32 baseline
