import copy

import pytest
import torch

from orchestrator.config import LatencyConfig
from orchestrator.export import export_onnx
from orchestrator.metrics import artifact_sizes, count_macs, count_nonzero_params, measure_candidate, measure_latency


def test_size_is_the_files_bytes_and_gzip_pays_off_on_zeros(tmp_path):
    dense, sparse = tmp_path / "dense.bin", tmp_path / "sparse.bin"
    dense.write_bytes(torch.randn(50_000).numpy().tobytes())
    sparse.write_bytes(torch.zeros(50_000).numpy().tobytes())
    assert artifact_sizes(dense)["size_mb"] == pytest.approx(0.2)
    assert artifact_sizes(sparse)["size_mb"] == pytest.approx(0.2)
    assert artifact_sizes(sparse)["gzip_mb"] < 0.01 * artifact_sizes(dense)["gzip_mb"]


def test_params_count_only_nonzero_weights():
    model = torch.nn.Linear(10, 10)
    total = count_nonzero_params(model)
    with torch.no_grad():
        model.weight[:5] = 0
    assert count_nonzero_params(model) == total - 50


def test_macs_of_a_linear_layer():
    assert count_macs(torch.nn.Linear(8, 4, bias=False), torch.zeros(3, 8)) == 32


def test_latency_median_and_spread():
    stats = measure_latency(lambda x: sum(range(2000)), torch.zeros(1), warmup=1, repeats=9)
    assert stats.median_ms > 0 and stats.iqr_ms >= 0 and stats.repeats == 9


def test_latency_ranks_a_bigger_batch_slower():
    mlp = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256))
    small = measure_latency(mlp, torch.randn(4, 256), repeats=15)
    big = measure_latency(mlp, torch.randn(1024, 256), repeats=15)
    assert big.median_ms > small.median_ms


def test_accuracy_is_measured_on_the_artifact_not_the_model(make_ctx, digits_baseline, tmp_path):
    ctx = make_ctx()
    broken = copy.deepcopy(digits_baseline.model)
    with torch.no_grad():
        broken.classifier.weight.zero_()
        broken.classifier.bias.copy_(torch.arange(10.0))  # always predicts class 9
    artifact = export_onnx(broken, ctx.example_inputs(4), tmp_path / "broken.onnx")
    latency = LatencyConfig(batch_size=16, repeats=3, warmup=0)
    metrics = measure_candidate(digits_baseline.model, artifact, ctx, latency, baseline_accuracy=digits_baseline.test_metric)
    assert metrics["accuracy"] < 0.2 and metrics["test_accuracy"] < 0.2
    assert metrics["accuracy_drop"] == pytest.approx((digits_baseline.test_metric - metrics["accuracy"]) * 100)
    assert metrics["size_mb"] == pytest.approx(artifact.stat().st_size / 1e6)
    assert set(metrics) == {"accuracy", "test_accuracy", "accuracy_drop", "params", "macs", "size_mb", "gzip_mb", "latency_ms",
                            "latency_iqr_ms"}


def test_one_slow_runtime_session_is_outvoted():
    import time

    def runner(seconds):
        return lambda x: time.sleep(seconds)

    sessions = iter([runner(0.030), runner(0.002)])
    stats = measure_latency(runner(0.002), torch.zeros(1), warmup=1, repeats=5, sessions=3,
                            new_session=lambda: next(sessions))
    assert len(stats.session_medians_ms) == 3 and max(stats.session_medians_ms) > 25
    assert 1.5 < stats.median_ms < 10  # the slow session's 30 ms is voted out
    assert stats.repeats == 15


def test_a_disturbed_measurement_is_taken_again_and_a_steady_one_is_not(tmp_path, monkeypatch):
    """Half the sessions ran slow (a neighbour busy on the machine): the repetitions spread wide, so
    the meter times the file again and keeps the undisturbed reading."""
    import time

    from orchestrator.metrics import meter

    monkeypatch.setenv("ORCHESTRATOR_LOCK_DIR", str(tmp_path))
    loads: list[float] = []

    def timed(plan):
        def load_runner(path, threads=1):
            seconds = plan[len(loads)] if len(loads) < len(plan) else 0.002
            loads.append(seconds)
            return lambda x: time.sleep(seconds)
        return load_runner

    config = LatencyConfig(warmup_s=0, warmup=1, repeats=5, sessions=4)
    monkeypatch.setattr(meter, "load_runner", timed([0.030, 0.030, 0.002, 0.002]))
    stats = meter.LatencyMeter().measure(tmp_path / "model.onnx", torch.zeros(1), config)
    assert len(loads) == 8  # a second round of 4 sessions
    assert 1.5 < stats.median_ms < 10 and stats.iqr_ms < 0.2 * stats.median_ms

    loads.clear()
    monkeypatch.setattr(meter, "load_runner", timed([]))
    steady = meter.LatencyMeter().measure(tmp_path / "model.onnx", torch.zeros(1), config)
    assert len(loads) == 4 and 1.5 < steady.median_ms < 10
