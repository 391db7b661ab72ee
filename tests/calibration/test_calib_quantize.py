"""The model signature calibration compares before and after quantization (jetseg.calibration.quantize)."""
from __future__ import annotations

from jetseg.calibration.quantize import io_signature
from tests.fixtures.models import batch_conv


def test_io_signature_names_symbolic_dims():
    assert io_signature(batch_conv("N")) == {"inputs": {"input": ["N", 1, 8, 8]}, "outputs": {"logits": ["N", 2, 8, 8]}}
    assert io_signature(batch_conv(1))["inputs"] == {"input": [1, 1, 8, 8]}
