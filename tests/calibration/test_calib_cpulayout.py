"""The cpu target's graph form (jetseg.calibration.cpulayout): the up-sampling ConvTranspose as a 1x1 Conv and a
pixel shuffle, exact in float and all INT8 on ONNX Runtime's CPU provider."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

from jetseg.calibration import quantize as q
from jetseg.calibration.cpulayout import shuffle_upsampling
from tests.fixtures.models import upsampler

ort = pytest.importorskip("onnxruntime")


def _run(model, x, path: Path, level=None):
    onnx.save(model, str(path))
    opts = ort.SessionOptions()
    if level is not None:
        opts.graph_optimization_level = level
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


class _Ranges:  # what shuffle_upsampling reads of ONNX Runtime's TensorsData: ``.data``
    def __init__(self, data):
        self.data = data


def test_shuffle_is_the_convtranspose_in_float(tmp_path: Path):
    model = upsampler()
    x = np.random.default_rng(1).normal(size=(1, 3, 4, 6)).astype(np.float32)
    want = _run(model, x, tmp_path / "ct.onnx")
    ranges = _Ranges({"input": (-3.0, 3.0), "up": (-9.0, 9.0)})
    shuffled = onnx.shape_inference.infer_shapes(upsampler())
    data, done = shuffle_upsampling(shuffled, ranges)
    assert done == ["up"]
    ops = [n.op_type for n in shuffled.graph.node]
    assert ops == ["Conv", "Transpose", "Reshape", "Transpose", "Reshape", "Transpose"]
    assert shuffled.graph.node[0].name == "up" and shuffled.graph.node[-1].output[0] == "up"
    got = _run(shuffled, x, tmp_path / "shuffled.onnx")
    assert got.shape == want.shape == (1, 5, 8, 12)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # every new tensor gets the output's range; the caller's ranges are not changed
    assert set(data.data) - set(ranges.data) == {"up_shuffle_%d" % i for i in range(5)}
    assert all(data.data[name] == (-9.0, 9.0) for name in data.data if name.startswith("up_shuffle"))
    assert set(ranges.data) == {"input", "up"}


def test_a_kept_convtranspose_is_not_rewritten():
    model = onnx.shape_inference.infer_shapes(upsampler())
    _, done = shuffle_upsampling(model, _Ranges({"input": (0.0, 1.0), "up": (0.0, 1.0)}), keep=["up"])
    assert done == [] and [n.op_type for n in model.graph.node] == ["ConvTranspose"]


def _optimized_ops(path: Path, tmp_path: Path) -> Counter:
    """Op types of the graph ONNX Runtime's CPU provider runs (ORT_ENABLE_ALL, as the onnxrt runner), a
    DequantizeLinear of a constant not counted."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    graph = onnx.load(str(tmp_path / "optimized.onnx")).graph
    consts = {i.name for i in graph.initializer}
    return Counter(n.op_type for n in graph.node if not (n.op_type == "DequantizeLinear" and n.input[0] in consts))


def test_cpu_target_runs_the_upsampling_in_int8(unet_ranges, tmp_path: Path):
    prepared, data = unet_ranges
    q.quantize(prepared, tmp_path / "cpu.onnx", data, "cpu")
    ops = _optimized_ops(tmp_path / "cpu.onnx", tmp_path)
    # mid_conv, the shuffled up, dec_conv and head fuse into QLinearConv; enc_conv (1 channel) stays float
    assert "ConvTranspose" not in ops and ops["QLinearConv"] == 4 and ops["Conv"] == 1, ops
    # the shuffle moves uint8 data: no dequantize/quantize pair around it (one Q after the float first
    # layer, one DQ of the logits)
    assert ops["DequantizeLinear"] == 1 and ops["QuantizeLinear"] == 1, ops
    x = np.random.default_rng(7).random((1, 1, 32, 32)).astype(np.float32)
    fp32 = _run(onnx.load(str(prepared)), x, tmp_path / "fp32.onnx")
    int8 = _run(onnx.load(str(tmp_path / "cpu.onnx")), x, tmp_path / "int8.onnx")
    assert (fp32.argmax(1) == int8.argmax(1)).mean() > 0.99


def test_fallback_keeps_the_convtranspose_float(unet_ranges, tmp_path: Path):
    prepared, data = unet_ranges
    q.quantize(prepared, tmp_path / "cpu.onnx", data, "cpu", exclude=["up"])
    nodes = {n.name: n for n in onnx.load(str(tmp_path / "cpu.onnx")).graph.node}
    assert nodes["up"].op_type == "ConvTranspose"


def test_a_dynamic_batch_is_shuffled_too(tmp_path: Path):
    model = upsampler(batch="N")
    x = np.random.default_rng(2).normal(size=(3, 3, 4, 6)).astype(np.float32)
    want = _run(model, x, tmp_path / "ct.onnx")
    shuffled = onnx.shape_inference.infer_shapes(upsampler(batch="N"))
    _, done = shuffle_upsampling(shuffled, _Ranges({"input": (-3.0, 3.0), "up": (-9.0, 9.0)}))
    assert done == ["up"]
    got = _run(shuffled, x, tmp_path / "shuffled.onnx")
    assert got.shape == want.shape == (3, 5, 8, 12)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
