"""The model signature calibration compares before and after quantization (jetseg.calibration.quantize)."""
from __future__ import annotations

from jetseg.calibration.quantize import io_signature
from tests.fixtures.models import batch_conv


def test_io_signature_names_symbolic_dims():
    assert io_signature(batch_conv("N")) == {"inputs": {"input": ["N", 1, 8, 8]}, "outputs": {"logits": ["N", 2, 8, 8]}}
    assert io_signature(batch_conv(1))["inputs"] == {"input": [1, 1, 8, 8]}


def test_cpu_target_keeps_layers_int8_only_slows_in_float():
    from jetseg.calibration.cpulayout import cpu_float_nodes
    from jetseg.calibration.quantize import quantizable_nodes
    from tests.fixtures.models import unet_like

    model = unet_like()
    # the first conv reads 1 channel; the 2x2/stride-2 ConvTranspose "up" is rewritten (cpulayout), not kept
    assert cpu_float_nodes(model) == ["enc_conv"]
    assert "enc_conv" not in quantizable_nodes(model, "cpu")
    assert {"mid_conv", "up"} <= set(quantizable_nodes(model, "cpu"))
    assert {"enc_conv", "up"} <= set(quantizable_nodes(model, "tensorrt"))


def test_cpu_target_keeps_a_convtranspose_it_cannot_shuffle_in_float():
    from onnx import helper

    from jetseg.calibration.cpulayout import cpu_float_nodes
    from tests.fixtures.models import unet_like

    model = unet_like()
    up = next(n for n in model.graph.node if n.name == "up")
    up.attribute.append(helper.make_attribute("pads", [1, 1, 1, 1]))  # no longer one input pixel per 2x2 block
    assert cpu_float_nodes(model) == ["enc_conv", "up"]
