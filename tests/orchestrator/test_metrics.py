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
                            "latency_iqr_ms", "latency_slowdown"}


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


class ScriptedCanary:
    """A canary whose times follow a script (then stay at 1 ms); it has learnt its best (1 ms)."""

    def __init__(self, times=(), learnt_s=10.0):
        self.times, self.calls, self.best, self.learnt_s = list(times), 0, 1.0, learnt_s

    def time_ms(self):
        self.calls += 1
        return self.times.pop(0) if self.times else 1.0

    def slowdown(self, ms):
        return ms / self.best

    def slow(self, ms):
        return self.slowdown(ms) > 1.1


def sleeping_runners(loads, plan):
    """load_runner replaced: the n-th session loaded sleeps plan[n] seconds a run (then 2 ms)."""
    import time

    def load_runner(path, threads=1):
        seconds = plan[len(loads)] if len(loads) < len(plan) else 0.002
        loads.append(seconds)
        return lambda x: time.sleep(seconds)
    return load_runner


def test_a_disturbed_measurement_is_taken_again_and_a_steady_one_is_not(tmp_path, monkeypatch):
    """Half the sessions ran slow (a neighbour busy on the machine): the repetitions spread wide, so
    the meter times the file again and keeps the undisturbed reading."""
    from orchestrator.metrics import meter

    monkeypatch.setenv("ORCHESTRATOR_LOCK_DIR", str(tmp_path))
    monkeypatch.setattr(meter, "canary", lambda threads: ScriptedCanary())
    loads: list[float] = []
    config = LatencyConfig(warmup_s=0, warmup=1, repeats=5, sessions=4)
    monkeypatch.setattr(meter, "load_runner", sleeping_runners(loads, [0.030, 0.030, 0.002, 0.002]))
    stats = meter.LatencyMeter().measure(tmp_path / "model.onnx", torch.zeros(1), config)
    assert len(loads) == 8 and stats.readings == 2  # a second round of 4 sessions
    assert 1.5 < stats.median_ms < 10 and stats.iqr_ms < 0.2 * stats.median_ms

    loads.clear()
    monkeypatch.setattr(meter, "load_runner", sleeping_runners(loads, []))
    steady = meter.LatencyMeter().measure(tmp_path / "model.onnx", torch.zeros(1), config)
    assert len(loads) == 4 and steady.readings == 1 and 1.5 < steady.median_ms < 10


@pytest.mark.parametrize("canary_times", [[1.0, 1.5], [1.0, 1.0, 1.5]],
                         ids=["the canary ran slow just before the reading", "the canary ran slow just after it"])
def test_a_reading_taken_in_a_slow_spell_is_taken_again_and_the_fastest_kept(tmp_path, monkeypatch, canary_times):
    """The machine ran slow for a whole reading: every session alike, so the spread is narrow and
    only the canary, 50 % over its best around the reading, tells (its first time is the warm-up's
    check, then the one just before the reading, then the one just after). Without the canary the
    slow reading is what the trial would record."""
    from orchestrator.metrics import meter

    monkeypatch.setenv("ORCHESTRATOR_LOCK_DIR", str(tmp_path))
    config = LatencyConfig(warmup_s=0, warmup=1, repeats=5, sessions=2)
    spell = [0.006, 0.006]  # the first reading's two sessions run 3x slow

    loads: list[float] = []
    slow = ScriptedCanary(times=canary_times)
    monkeypatch.setattr(meter, "canary", lambda threads: slow)
    monkeypatch.setattr(meter, "load_runner", sleeping_runners(loads, spell))
    stats = meter.LatencyMeter().measure(tmp_path / "model.onnx", torch.zeros(1), config)
    assert stats.readings == 2 and len(loads) == 4
    assert stats.median_ms < 4 and stats.slowdown <= 1.1

    loads.clear()
    unchecked = meter.LatencyMeter().measure(tmp_path / "model.onnx", torch.zeros(1),
                                             config.model_copy(update={"canary": False}))
    assert unchecked.readings == 1 and unchecked.median_ms > 5  # the spell's reading, kept


def test_an_undisturbed_reading_is_kept_over_a_disturbed_one(tmp_path, monkeypatch):
    """The first reading's canary ran slow (its median, oddly, was the lower); the retake was
    clean: the clean reading is the one recorded, with the canary at its best."""
    from orchestrator.metrics import meter

    monkeypatch.setenv("ORCHESTRATOR_LOCK_DIR", str(tmp_path))
    monkeypatch.setattr(meter, "canary", lambda threads: ScriptedCanary(times=[1.0, 1.0, 1.5]))
    monkeypatch.setattr(meter, "load_runner", sleeping_runners([], [0.002, 0.002, 0.004, 0.004]))
    stats = meter.LatencyMeter().measure(tmp_path / "model.onnx", torch.zeros(1),
                                         LatencyConfig(warmup_s=0, warmup=1, repeats=5, sessions=2))
    assert stats.readings == 2 and stats.median_ms > 3.5 and stats.slowdown == 1.0


def test_the_warm_up_ends_once_the_canary_runs_at_its_best(tmp_path, monkeypatch):
    """A warm core needs no warm-up: with a canary that has learnt its best and runs at it, timing
    starts at once; a canary still learning (the meter's first reading) or off warms for all of
    warmup_s."""
    import time

    from orchestrator.metrics import meter

    monkeypatch.setenv("ORCHESTRATOR_LOCK_DIR", str(tmp_path))
    monkeypatch.setattr(meter, "load_runner", sleeping_runners([], []))
    config = LatencyConfig(warmup_s=0.6, warmup=1, repeats=3, sessions=1)

    def seconds(config, check):
        monkeypatch.setattr(meter, "canary", lambda threads: check)
        start = time.perf_counter()
        meter.LatencyMeter().measure(tmp_path / "model.onnx", torch.zeros(1), config)
        return time.perf_counter() - start

    assert seconds(config, ScriptedCanary()) < 0.3
    learning = ScriptedCanary(learnt_s=0.0)
    assert seconds(config, learning) >= 0.6
    assert learning.learnt_s >= 0.6  # what it warmed counts towards learning its best
    assert seconds(config.model_copy(update={"canary": False}), ScriptedCanary()) >= 0.6


def test_the_canary_runs_and_knows_its_recent_best(monkeypatch):
    from orchestrator.metrics import canary as module

    check = module.Canary(threads=1)
    first = check.time_ms()
    assert first > 0 and check.best == first and check.slowdown(first) == 1.0
    assert check.slow(1.5 * check.best) and not check.slow(1.05 * check.best)
    # a machine that became slower for good: once the fast readings are old, its best is learnt anew
    monkeypatch.setattr(module, "RECENT", 3)
    check = module.Canary(threads=1)
    check._recent.extend([0.5, 1.0, 1.0])
    assert check.best == 0.5
    check._recent.append(1.0)
    assert check.best == 1.0
