import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from orchestrator_plugins.pruners.unstructured import UnstructuredPruner
from orchestrator_plugins.scorers.magnitude import MagnitudeScorer


def _prune(model, ctx, scores=None, **params):
    scores = MagnitudeScorer().score(model, ctx, {"p": 1}) if scores is None else scores
    return UnstructuredPruner().prune(model, scores, ctx, {"sparsity": 0.5, "scope": "per-layer"} | params)


def convs(model):
    """The digits CNN's prunable weights: every conv (its classifier is the output layer)."""
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def zero_fraction(weights):
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def assert_plain(model):
    """No mask left in any form: no parametrization, no *_orig / *_mask, no hooks."""
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    names = [n for n, _ in model.named_parameters()] + [n for n, _ in model.named_buffers()]
    assert not [n for n in names if "mask" in n or "orig" in n], names
    for m in model.modules():
        assert not m._forward_pre_hooks and not m._forward_hooks
        assert all(isinstance(p, nn.Parameter) for p in m._parameters.values() if p is not None)


@pytest.mark.parametrize("sparsity", [0.3, 0.9])
def test_per_layer_scope_puts_every_layer_at_the_target(make_ctx, digits_baseline, sparsity):
    model = _prune(copy.deepcopy(digits_baseline.model), make_ctx(), sparsity=sparsity)
    for conv in convs(model):
        assert abs(zero_fraction([conv.weight]) - sparsity) <= 1 / conv.weight.numel()
    assert torch.count_nonzero(model.classifier.weight) == model.classifier.weight.numel()  # the output layer


def test_global_scope_hits_the_overall_target_with_layers_differing(make_ctx, digits_baseline):
    model = _prune(copy.deepcopy(digits_baseline.model), make_ctx(), sparsity=0.8, scope="global")
    weights = [c.weight for c in convs(model)]
    assert zero_fraction(weights) == pytest.approx(0.8, abs=1e-3)
    per_layer = [zero_fraction([w]) for w in weights]
    assert max(per_layer) - min(per_layer) > 0.1, per_layer  # one ranking over all layers
    assert torch.count_nonzero(model.classifier.weight) == model.classifier.weight.numel()


def test_the_lowest_scored_weights_are_the_ones_pruned(make_ctx, digits_baseline):
    base = digits_baseline.model
    model = _prune(copy.deepcopy(base), make_ctx(), sparsity=0.6)
    for before, after in zip(convs(base), convs(model)):
        pruned = after.weight == 0
        assert before.weight[pruned].abs().max() <= before.weight[~pruned].abs().min()
        assert torch.equal(after.weight[~pruned], before.weight[~pruned])  # survivors untouched


def test_weights_left_out_of_the_scores_are_never_pruned(make_ctx, digits_baseline):
    model = copy.deepcopy(digits_baseline.model)
    ctx = make_ctx()
    scores = MagnitudeScorer().score(model, ctx, {"p": 1})
    del scores["features.0.weight"]
    pruned = _prune(model, ctx, scores=scores, sparsity=0.7, scope="global")
    first, *rest = convs(pruned)
    assert torch.count_nonzero(first.weight) == first.weight.numel()
    assert zero_fraction([c.weight for c in rest]) == pytest.approx(0.7, abs=1e-3)


def test_sparsity_zero_leaves_outputs_unchanged(make_ctx, digits_baseline, digits_data):
    model = _prune(copy.deepcopy(digits_baseline.model), make_ctx(), sparsity=0.0)
    x = digits_data.test[0][:16]
    assert torch.equal(model(x), digits_baseline.model(x))
    assert_plain(model)


def test_prune_then_finalize_without_training_holds_real_zeros(make_ctx, digits_baseline):
    ctx = make_ctx()
    pruner = UnstructuredPruner()
    model = _prune(copy.deepcopy(digits_baseline.model), ctx, sparsity=0.5)
    # the trainable tensors behind the masks are zeroed already, not only the masked view
    originals = [c.parametrizations.weight.original for c in convs(model)]
    assert zero_fraction(originals) == pytest.approx(0.5, abs=1e-3)
    final = pruner.finalize(model, ctx, {"sparsity": 0.5})
    assert_plain(final)
    assert zero_fraction([c.weight for c in convs(final)]) == pytest.approx(0.5, abs=1e-3)


def test_fine_tuning_does_not_regrow_and_finalize_exports(make_ctx, digits_baseline, tmp_path):
    from orchestrator.export import export_onnx, load_runner
    from orchestrator_plugins.distillers.finetune import FineTune

    ctx = make_ctx()
    params = {"sparsity": 0.8, "scope": "global"}
    model = _prune(copy.deepcopy(digits_baseline.model), ctx, **params)
    masks = [c.weight == 0 for c in convs(model)]
    n_zeros = sum(int(m.sum()) for m in masks)
    tuned = FineTune().train(model, ctx, {"epochs": 2, "lr": 3e-3})
    for conv, mask in zip(convs(tuned), masks):
        assert not conv.weight[mask].any()  # pruned weights stayed at zero
        assert conv.weight[~mask].ne(0).all()
    assert not torch.equal(tuned.features[1].weight, digits_baseline.model.features[1].weight)  # it did train
    final = UnstructuredPruner().finalize(tuned, ctx, params).eval()
    assert_plain(final)
    assert sum(int((c.weight == 0).sum()) for c in convs(final)) == n_zeros
    path = export_onnx(final, ctx.example_inputs(4), tmp_path / "m.onnx")
    x = ctx.example_inputs(32)
    assert torch.allclose(load_runner(path)(x), final(x).detach(), atol=1e-4)


def test_sparse_onnx_file_gzips_much_smaller_at_the_same_dense_size(make_ctx, tmp_path):
    from orchestrator.export import export_onnx
    from orchestrator.metrics import artifact_sizes

    torch.manual_seed(0)
    dense = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 10)).eval()
    ctx = make_ctx(teacher=dense)
    pruner = UnstructuredPruner()
    sparse = pruner.finalize(_prune(copy.deepcopy(dense), ctx, sparsity=0.9), ctx, {}).eval()
    assert zero_fraction([sparse[1].weight, sparse[3].weight]) == pytest.approx(0.9, abs=1e-3)
    example = ctx.example_inputs(4)
    d = artifact_sizes(export_onnx(dense, example, tmp_path / "dense.onnx"))
    s = artifact_sizes(export_onnx(sparse, example, tmp_path / "sparse.onnx"))
    assert s["gzip_mb"] < 0.35 * d["gzip_mb"], (s, d)
    assert s["size_mb"] == pytest.approx(d["size_mb"], rel=0.02)  # stored densely: no smaller on disk


class TinyAttention(nn.Module):
    """Rows of a digit as 8 tokens of width 8, one self-attention layer, mean-pooled classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        tokens = x.flatten(1, 2)  # (N, 1, 8, 8) -> (N, 8, 8)
        out, _ = self.attn(tokens, tokens, tokens, need_weights=False)
        return self.head(out.mean(1))


def test_attention_projections_are_pruned_and_stay_pruned(make_ctx):
    from orchestrator_plugins.distillers.finetune import FineTune

    torch.manual_seed(0)
    model = TinyAttention().eval()
    ctx = make_ctx(teacher=model)
    bias = model.attn.in_proj_bias.detach().clone()
    pruned = _prune(model, ctx, sparsity=0.5)
    weights = lambda m: [m.attn.in_proj_weight, m.attn.out_proj.weight]  # noqa: E731
    masks = [w == 0 for w in weights(pruned)]
    assert [float(m.float().mean()) for m in masks] == [0.5, 0.5]
    assert torch.equal(pruned.attn.in_proj_bias, bias)  # biases are never pruned
    assert torch.count_nonzero(pruned.head.weight) == pruned.head.weight.numel()  # nor the output layer
    tuned = FineTune().train(pruned, ctx, {"epochs": 1, "lr": 3e-3})
    final = UnstructuredPruner().finalize(tuned, ctx, {}).eval()
    assert_plain(final)
    assert all(torch.equal(w == 0, m) for w, m in zip(weights(final), masks))


def test_runs_through_the_pipeline_with_finalize_after_training(make_ctx, digits_baseline):
    from orchestrator.export import load_runner
    from orchestrator.pipeline import compress
    from orchestrator.pluginmanager import Catalogue, get_host
    from orchestrator.recipe import Recipe

    base = get_host().catalogue
    catalogue = Catalogue(strategies={f: dict(s) for f, s in base.strategies.items()})
    catalogue.strategies["pruner"].setdefault("unstructured", UnstructuredPruner())
    recipe = Recipe.model_validate({"score": {"strategy": "magnitude", "params": {"p": 1}},
                                    "prune": {"strategy": "unstructured", "params": {"sparsity": 0.7}},
                                    "train": {"strategy": "none", "params": {"epochs": 1, "lr": 3e-3}}})
    ctx = make_ctx()
    candidate = compress(recipe, ctx, catalogue)
    assert_plain(candidate.model)
    assert zero_fraction([c.weight for c in convs(candidate.model)]) == pytest.approx(0.7, abs=1e-3)
    x = ctx.example_inputs(16)
    assert torch.allclose(load_runner(candidate.artifact)(x), candidate.model(x).detach(), atol=1e-4)


def test_registers_itself_and_describes_its_setting():
    from orchestrator_plugins.pruners import unstructured

    registered = []
    unstructured.orchestrator_register_pruners(registered.append)
    (pruner,) = registered
    assert pruner.name == "unstructured" and pruner.needs_scores
    assert set(pruner.defaults) == set(pruner.space)
    assert all(pruner.space[k].contains(v) for k, v in pruner.defaults.items())
    assert pruner.describe({"sparsity": 0.9, "scope": "global"}) == "unstructured 90% global"
