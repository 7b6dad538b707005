"""The plugin module the ``orchestrator`` entry point names: it registers one scorer and one quantizer."""

from __future__ import annotations

from orchestrator import hookimpl

from orchestrator_obd_int4.int4 import Int4WeightQuantizer
from orchestrator_obd_int4.obd import OBDScorer


@hookimpl
def orchestrator_register_scorers(register):
    register(OBDScorer())


@hookimpl
def orchestrator_register_quantizers(register):
    register(Int4WeightQuantizer())
