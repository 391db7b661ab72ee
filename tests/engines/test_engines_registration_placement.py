"""The registration net's graph on the DLA rules (TensorRT 8.5, PLATFORM.md): its U-Net runs on the DLA,
the warp (GridSample and the grid arithmetic around it) is reported as GPU fallback with the reason."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from jetseg.engines.placement import onnx_rules  # noqa: E402
from jetseg.models.archs import build_model  # noqa: E402
from jetseg.models.export import torch_to_onnx  # noqa: E402
from tests.fixtures.specs import registration_spec  # noqa: E402


def test_the_warp_falls_back_to_the_gpu_and_the_unet_stays_on_the_dla():
    with_warp = onnx.load_from_string(torch_to_onnx(build_model("vxm-tiny", warped=True),
                                                    registration_spec(size=32, warped="warped")))
    findings = onnx_rules(with_warp)
    assert {"GridSample", "Transpose"} <= {f.op for f in findings}
    grid = next(f for f in findings if f.op == "GridSample")
    assert grid.reason == "GridSample has no DLA implementation"
    assert not {"Conv", "ConvTranspose", "Concat", "MaxPool"} & {f.op for f in findings}
    field_only = onnx.load_from_string(torch_to_onnx(build_model("vxm-tiny"), registration_spec(size=32, warped=None)))
    assert onnx_rules(field_only) == []  # without the warp every layer has a DLA implementation
