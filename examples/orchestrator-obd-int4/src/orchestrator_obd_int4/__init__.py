"""Two compression strategies for compression-orchestrator, installed as a third-party plugin.

* scorer ``obd``: Optimal Brain Damage saliency with the empirical Fisher's diagonal as the Hessian;
* quantizer ``int4-weight``: ONNX Runtime's block-wise 4-bit weight-only quantization.

The ``orchestrator`` entry point names :mod:`orchestrator_obd_int4.plugin`.
"""

from orchestrator_obd_int4.int4 import Int4WeightQuantizer
from orchestrator_obd_int4.obd import OBDScorer

__version__ = "0.1.0"
__all__ = ["Int4WeightQuantizer", "OBDScorer", "__version__"]
