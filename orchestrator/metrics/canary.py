"""The canary: a fixed small convolution whose time says whether the machine runs at full speed.

On a virtual machine a core can spend seconds in a slow spell: the same int8 file times
0.34 ms and then 0.50-0.58 ms, every session of a reading alike, with nothing else running in
the guest and no steal time reported (on the 2-core machine the benchmarks run on, from one in
ten to more than half of the readings taken after a second of idling, depending on the hour;
``benchmarks/slow_spells.py`` counts them). A reading taken in such a spell
is narrow, so its spread does not give it away, and nothing in the file being timed can: its
true time is what is measured. A model that never changes can. The canary is a one-layer
convolution over a batch the size of a small model's activations (16 channels, length 40, batch
256: about 0.6 MB in and out), built in memory and run on ONNX Runtime. In the slow spells we
recorded it ran 1.3-1.5x its best time while the models being timed ran 1.3-1.8x theirs; a
matrix multiply of the same size slowed by 10 % at most, so the canary is a convolution.

The meter times the canary before and after each reading and compares it with the best it has
seen lately in this process: a reading whose canary ran more than :data:`SLOW` slower than that
best was taken in a slow spell. The best is learnt while the first reading warms up, and is the
lowest of the last :data:`RECENT` canary readings. Other processes busy on the machine slow the
canary little: with both cores of the benchmark machine running tests, 34 of 40 canary readings
were within 5 % of the best it had on an idle machine, and all within 11 %.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections import deque
from typing import Any, Callable

import numpy as np

#: a canary more than this fraction slower than its best says the machine is in a slow spell
#: (undisturbed canary times on the benchmark machine stay within 4 % of their best; slow spells
#: start at 30 %)
SLOW = 0.1
#: untimed and timed runs per canary reading (about 7 ms on the benchmark machine)
WARMUP, REPEATS = 2, 10
#: the best is taken over this many recent canary readings (three or more per measurement), so a
#: machine that became slower for good (a virtual machine moved to another host) is learnt anew
#: instead of judged slow for the rest of the run
RECENT = 300
CHANNELS, LENGTH, BATCH, KERNEL = 16, 40, 256, 5


def _session(threads: int) -> Callable[[], Any]:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((CHANNELS, CHANNELS, KERNEL)) / math.sqrt(CHANNELS * KERNEL)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[KERNEL // 2, KERNEL // 2]),
         helper.make_node("Relu", ["y"], ["out"])],
        "canary", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [BATCH, CHANNELS, LENGTH])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [BATCH, CHANNELS, LENGTH])],
        [numpy_helper.from_array(weight, "w")])
    # IR version 8 (the lowest opset 17 allows): any ONNX Runtime the project supports loads it
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feed = {"x": rng.standard_normal((BATCH, CHANNELS, LENGTH)).astype(np.float32)}
    return lambda: session.run(None, feed)


class Canary:
    """The canary for one thread count, with the best time it has run lately in this process."""

    def __init__(self, threads: int) -> None:
        self._run = _session(threads)
        self._recent: deque[float] = deque(maxlen=RECENT)
        #: seconds of warm-up it has been timed across (its best is trusted from LEARN_S on)
        self.learnt_s = 0.0

    def time_ms(self) -> float:
        """The canary's median time now, in milliseconds (its best is updated)."""
        for _ in range(WARMUP):
            self._run()
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            self._run()
            times.append((time.perf_counter() - start) * 1e3)
        ms = statistics.median(times)
        self._recent.append(ms)
        return ms

    @property
    def best(self) -> float:
        """The lowest of its recent readings (infinite before the first)."""
        return min(self._recent, default=math.inf)

    def slowdown(self, ms: float) -> float:
        """How much slower than its best the canary ran: 1.0 at its best."""
        best = self.best
        return ms / best if best < math.inf else 1.0

    def slow(self, ms: float) -> bool:
        return self.slowdown(ms) > 1.0 + SLOW


_canaries: dict[tuple[int, int], Canary] = {}


def canary(threads: int) -> Canary:
    """This process's canary for ``threads`` intra-op threads (built on first use, then kept; a
    forked child builds its own)."""
    key = (os.getpid(), threads)
    if key not in _canaries:
        _canaries[key] = Canary(threads)
    return _canaries[key]
