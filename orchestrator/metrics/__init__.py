"""Measuring candidates: accuracy on the artifact, its bytes, its latency, its parameters."""

from orchestrator.metrics.latency import LatencyStats, measure_latency
from orchestrator.metrics.measure import measure_candidate
from orchestrator.metrics.size import artifact_sizes, count_macs, count_nonzero_params

__all__ = ["LatencyStats", "artifact_sizes", "count_macs", "count_nonzero_params", "measure_candidate",
           "measure_latency"]
