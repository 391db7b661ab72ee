"""Which tensors of the accepted model stay float (jetson/trt/floatlayers.py), on the U-Net-like test model."""
from __future__ import annotations

from jetseg.jetson.trt.floatlayers import float_keep
from tests.fixtures.models import unet_like


def test_float_keep_of_the_unet():
    keep = float_keep(unet_like(), ["dec_conv"])
    assert keep.layers == ["dec_conv"] and keep.outputs == ["c3"]
    assert keep.tensors == ["cat", "logits"]  # written in FP16: the float layer's input, the graph output
    assert keep.uncached == ["logits", "cat"]  # 'cat' is read by dec_conv only
    both = float_keep(unet_like(), ["enc_conv", "mid_conv"])
    assert both.uncached == ["logits", "input", "p1"]  # each read by a float layer only
    assert float_keep(unet_like(), []).uncached == ["logits"]  # no fallback: the logits still stay float
