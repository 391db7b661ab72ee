"""The tensorrt target's weight layout and the onnxruntime range it is claimed for (issue 10, defects 2 and 3).

TensorRT 8.5's ONNX parser turns an INT8 initializer feeding DequantizeLinear into an INT8 constant, which
TensorRT 8.x rejects ("invalid weights type of Int8", NVIDIA/TensorRT#2163): the tensorrt target must write
float weights -> QuantizeLinear -> DequantizeLinear, and the checker must refuse INT8 weights below 10.
``quant_utils.update_opset_version`` exists only from onnxruntime 1.23; JetPack 5 gets 1.19.2.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from jetseg.calibration import quantize as q
from jetseg.calibration.check import check_qdq


def _weight_dq_sources(model):
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    out = []
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        src = node.input[0]
        if src in inits:
            out.append(("initializer", inits[src].dtype))
        elif src in producers and producers[src].input[0] in inits:
            out.append(("quantize", inits[producers[src].input[0]].dtype))
    return out


def test_tensorrt_weights_are_float_with_qdq_pairs(unet_ranges, tmp_path):
    prepared, data = unet_ranges
    q.quantize(prepared, tmp_path / "trt.onnx", data, "tensorrt")
    model = onnx.load(str(tmp_path / "trt.onnx"))
    sources = _weight_dq_sources(model)
    assert len(sources) == 5  # enc, mid, up (ConvTranspose), dec, head weights
    assert all(kind == "quantize" and dtype == np.float32 for kind, dtype in sources), sources
    assert check_qdq(model, trt_version="8.5.2") == []
    # ConvTranspose weights: per-channel on axis 0, also through the Q/DQ pair.
    up_dq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear"
                 and any(u.op_type == "ConvTranspose" and u.input[1] == n.output[0] for u in model.graph.node))
    assert next(a.i for a in up_dq.attribute if a.name == "axis") == 0


def test_checker_refuses_int8_weight_initializers_below_trt10(unet_ranges, tmp_path):
    prepared, data = unet_ranges
    q.quantize(prepared, tmp_path / "cpu.onnx", data, "cpu")  # ONNX Runtime's layout: INT8 weights
    model = onnx.load(str(tmp_path / "cpu.onnx"))
    found = [v for v in check_qdq(model, trt_version="8.5.2") if v.rule == "int8-weights"]
    assert found, "INT8 weight initializers must be flagged for TensorRT 8.5"
    assert "TensorRT 8.5.2 rejects INT8 constants (NVIDIA/TensorRT#2163)" in str(found[0])
    assert not [v for v in check_qdq(model, trt_version="10.3.0") if v.rule == "int8-weights"]


def test_quantize_without_update_opset_version(unet_ranges, monkeypatch, tmp_path):
    """onnxruntime < 1.23 (JetPack 5: 1.19.2) has no quant_utils.update_opset_version."""
    from onnxruntime.quantization import quant_utils

    prepared, data = unet_ranges
    monkeypatch.delattr(quant_utils, "update_opset_version", raising=False)
    q.quantize(prepared, tmp_path / "old.onnx", data, "tensorrt")
    assert check_qdq(tmp_path / "old.onnx") == []


def test_installed_onnxruntime_is_within_the_supported_range():
    import onnxruntime
    from packaging.version import Version

    version = Version(onnxruntime.__version__.split("+")[0])
    assert Version(q.MIN_ORT) <= version
    assert version.release[:2] <= Version(q.MAX_TESTED_ORT).release[:2]
