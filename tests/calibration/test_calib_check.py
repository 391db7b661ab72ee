"""The TensorRT Q/DQ checker: passes our tensorrt output, catches each broken rule with the node's name."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from jetseg.calibration import quantize as q
from jetseg.calibration.check import check_qdq, format_violations


@pytest.fixture(scope="module")
def quantized(unet_ranges, tmp_path_factory):
    """{target: quantized ModelProto} of the tiny U-Net."""
    prepared, data = unet_ranges
    work = tmp_path_factory.mktemp("check")
    out = {}
    for target in ("tensorrt", "cpu"):
        q.quantize(prepared, work / (target + ".onnx"), data, target)
        out[target] = onnx.load(str(work / (target + ".onnx")))
    return out


def _rules(model):
    return {(v.rule, v.node) for v in check_qdq(model)}


def _initializer(model, name):
    return next(i for i in model.graph.initializer if i.name == name)


def _set(model, name, array):
    init = _initializer(model, name)
    init.CopyFrom(numpy_helper.from_array(array, name))


def test_tensorrt_output_passes(quantized, tmp_path: Path):
    assert check_qdq(quantized["tensorrt"]) == []
    onnx.save(quantized["tensorrt"], str(tmp_path / "m.onnx"))
    assert check_qdq(tmp_path / "m.onnx") == []  # also from a path
    ops = [n.op_type for n in quantized["tensorrt"].graph.node]
    # Inputs of the weighted layers only (enc, mid, up, dec, head), and their float weights through Q -> DQ.
    assert ops.count("QuantizeLinear") == 10


def test_cpu_output_breaks_tensorrt_rules(quantized):
    found = check_qdq(quantized["cpu"])
    rules = {v.rule for v in found}
    assert {"int8", "zero-point", "bias"} <= rules
    text = format_violations(found, limit=100)
    assert "[bias] mid_conv: bias" in text
    # the cpu target keeps the 1-channel first Conv in float (cpulayout.cpu_float_nodes): its weights are a
    # plain float initializer, not behind a DequantizeLinear; the ConvTranspose became a quantized 1x1 Conv
    assert "convtranspose-axis" not in rules
    nodes = {n.name: n for n in quantized["cpu"].graph.node}
    inits = {i.name for i in quantized["cpu"].graph.initializer}
    assert nodes["enc_conv"].input[1] in inits
    assert nodes["mid_conv"].input[1] not in inits and nodes["up"].input[1] not in inits
    assert nodes["up"].op_type == "Conv"


def test_asymmetric_zero_point_is_caught(quantized):
    model = onnx.ModelProto()
    model.CopyFrom(quantized["tensorrt"])
    _set(model, "cat_zero_point", np.array(3, dtype=np.int8))
    found = [v for v in check_qdq(model) if v.rule == "zero-point"]
    assert {v.node for v in found} == {"cat_QuantizeLinear", "cat_DequantizeLinear"}
    assert "zero-point is not 0 (found [3]); TensorRT needs symmetric quantization" in found[0].message


def test_per_channel_activation_is_caught(quantized):
    model = onnx.ModelProto()
    model.CopyFrom(quantized["tensorrt"])
    scale = numpy_helper.to_array(_initializer(model, "cat_scale"))
    _set(model, "cat_scale", np.full(8, float(scale), dtype=np.float32))
    _set(model, "cat_zero_point", np.zeros(8, dtype=np.int8))
    found = [v for v in check_qdq(model) if v.rule == "per-channel"]
    assert {v.node for v in found} == {"cat_QuantizeLinear", "cat_DequantizeLinear"}
    assert "activation 'cat' has 8 per-channel scales; TensorRT needs per-tensor scales" in found[0].message


def test_convtranspose_axis_one_is_caught(quantized):
    model = onnx.ModelProto()
    model.CopyFrom(quantized["tensorrt"])
    dq = next(n for n in model.graph.node if n.name == "wt_DequantizeLinear")
    weights = numpy_helper.to_array(_initializer(model, "wt"))  # float (cin=8, cout=4, 2, 2) through Q/DQ, axis 0
    assert weights.shape == (8, 4, 2, 2) and numpy_helper.to_array(_initializer(model, "wt_scale")).shape == (8,)
    _set(model, "wt_scale", np.full(4, 0.01, dtype=np.float32))
    _set(model, "wt_zero_point", np.zeros(4, dtype=np.int8))
    for attr in dq.attribute:
        if attr.name == "axis":
            attr.i = 1
    assert ("convtranspose-axis", "wt_DequantizeLinear") in _rules(model)


def test_opset_scale_and_uint8_default(quantized):
    model = onnx.ModelProto()
    model.CopyFrom(quantized["tensorrt"])
    model.opset_import[0].version = 18
    _set(model, "input_scale", np.array(0.0, dtype=np.float32))
    node = next(n for n in model.graph.node if n.name == "input_QuantizeLinear")
    del node.input[2]  # no zero-point: ONNX means uint8
    rules = _rules(model)
    assert ("opset", "") in rules and ("scale", "input_QuantizeLinear") in rules
    assert ("int8", "input_QuantizeLinear") in rules
    text = format_violations(check_qdq(model))
    assert "[opset] <model>: opset 18; TensorRT 8.5 parses opset <= 17" in text


def test_methods_give_ranges_for_every_tensor(tmp_path: Path):
    from tests.fixtures.models import unet_like

    onnx.save(unet_like(), str(tmp_path / "fp32.onnx"))
    q.prepare_model(tmp_path / "fp32.onnx", tmp_path / "prepared.onnx")
    frames = [np.random.default_rng(i).random((1, 1, 32, 32)).astype(np.float32) for i in range(4)]
    ranges = {m: q.ranges_of(q.compute_ranges(tmp_path / "prepared.onnx", "input", frames, m, tmp_path,
                                              progress=False)) for m in q.METHODS}
    names = {"input", "c1", "r1", "p1", "c2", "r2", "u1", "cat", "c3", "r3", "logits"}
    for method, table in ranges.items():
        assert names <= set(table), method
        assert all(np.isfinite(v).all() and v[0] <= v[1] for v in table.values())
    # min-max covers everything seen; the others may clip the tails
    for name in names:
        amax = max(abs(v) for v in ranges["minmax"][name])
        assert max(abs(v) for v in ranges["percentile"][name]) <= amax * 1.01
    with pytest.raises(Exception, match="calibration method 'kl' is unknown; expected one of entropy, minmax"):
        q.compute_ranges(tmp_path / "prepared.onnx", "input", frames, "kl", tmp_path)
