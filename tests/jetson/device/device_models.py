"""Tiny real ONNX models and bundles for the device tests (a uniquely named module, imported by the tests)."""
from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from jetseg.bundle import save_bundle
from jetseg.spec import Spec

SIZE = 32
#: This machine is a Jetson / has TensorRT: tests that describe a machine without them skip there.
ON_JETSON = os.path.exists("/etc/nv_tegra_release")


def tiny_model(seed: int = 0) -> onnx.ModelProto:
    """input (1,1,32,32) -> Conv 3x3 (2 channels) -> logits (1,2,32,32)."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.normal(size=(2, 1, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(2, np.float32), "b")
    node = helper.make_node("Conv", ["input", "w", "b"], ["logits"], name="conv", pads=[1, 1, 1, 1])
    graph = helper.make_graph([node], "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, SIZE, SIZE])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2, SIZE, SIZE])], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def qdq_model():
    """input -> Q -> DQ -> Conv(DQ(int8 weights)) -> logits: what an INT8 bundle's model.onnx looks like."""
    rng = np.random.default_rng(1)
    wq = numpy_helper.from_array(rng.integers(-127, 127, size=(2, 1, 3, 3)).astype(np.int8), "w_q")
    inits = [wq, numpy_helper.from_array(np.array([0.01, 0.02], np.float32), "w_scale"),
             numpy_helper.from_array(np.zeros(2, np.int8), "w_zero"),
             numpy_helper.from_array(np.array(0.05, np.float32), "x_scale"),
             numpy_helper.from_array(np.array(0, np.int8), "x_zero"),
             numpy_helper.from_array(np.zeros(2, np.float32), "b")]
    nodes = [helper.make_node("QuantizeLinear", ["input", "x_scale", "x_zero"], ["input_q"], name="q_in"),
             helper.make_node("DequantizeLinear", ["input_q", "x_scale", "x_zero"], ["input_dq"], name="dq_in"),
             helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"], name="dq_w", axis=0),
             helper.make_node("Conv", ["input_dq", "w", "b"], ["logits"], name="conv", pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "tiny_qdq", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 32, 32])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2, 32, 32])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def tiny_spec() -> Spec:
    return Spec.from_dict({"name": "tiny", "input": {"name": "input", "size": [SIZE, SIZE], "channels": 1},
                           "output": {"name": "logits", "kind": "softmax"}, "classes": ["background", "target"]})


def make_bundle(path, model=None, precision="fp32", extra=None):
    model = model if model is not None else tiny_model()
    return save_bundle(path, model.SerializeToString(), tiny_spec(), precision=precision, extra_files=extra)
