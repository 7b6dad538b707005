"""The metrics every trial reports, with their natural direction and unit."""

from __future__ import annotations

METRICS: dict[str, tuple[str, str]] = {
    # name: (direction, description)
    "accuracy": ("maximize", "task metric on the validation split, measured on the shipped artifact"),
    "accuracy_drop": ("minimize", "baseline accuracy minus this accuracy, in percentage points"),
    "test_accuracy": ("maximize", "task metric on the held-out test split, measured on the shipped artifact; "
                      "reported, not for searching"),
    "params": ("minimize", "non-zero parameters of the compressed model"),
    "macs": ("minimize", "multiply-accumulates of one example"),
    "size_mb": ("minimize", "bytes of the deployable file as written, in MB (10^6 bytes)"),
    "gzip_mb": ("minimize", "the deployable file compressed with gzip -9, in MB"),
    "latency_ms": ("minimize", "median wall time of one batch on the target runtime"),
    "latency_iqr_ms": ("minimize", "interquartile range of the latency repetitions"),
    "latency_slowdown": ("minimize", "how much slower than its best the latency canary ran around the kept reading "
                         "(1.0: the machine at full speed; over 1.1: a slow spell lasted through every retake)"),
}
