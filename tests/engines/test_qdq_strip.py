"""Recovering the float network from a Q/DQ model (the DLA INT8 path), checked with ONNX Runtime."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from jetseg.engines.qdq import strip_qdq
from jetseg.errors import BundleError
from jetseg.onnxgraph import has_qdq
from tests.fixtures.models import qdq_model


def _run(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def test_strip_keeps_names_and_dequantizes_weights():
    model = qdq_model(int8_weights=True)  # the older layout: INT8 weight initializers
    assert has_qdq(model)
    flat = strip_qdq(model)
    assert not has_qdq(flat) and has_qdq(model)  # the input model is untouched
    conv = [n for n in flat.graph.node if n.op_type == "Conv"][0]
    assert list(conv.input) == ["input", "w", "b"]  # the activation keeps its float name (the cache's name)
    w = [numpy_helper.to_array(i) for i in flat.graph.initializer if i.name == "w"][0]
    wq = [numpy_helper.to_array(i) for i in model.graph.initializer if i.name == "w_q"][0]
    np.testing.assert_allclose(w, wq.astype(np.float32) * np.array([0.01, 0.02], np.float32).reshape(2, 1, 1, 1))
    assert {i.name for i in flat.graph.initializer} == {"w", "b"}
    x = np.random.default_rng(0).uniform(-1, 1, size=(1, 1, 32, 32)).astype(np.float32)
    # Float network = Q/DQ network without the activation rounding: close, not equal.
    np.testing.assert_allclose(_run(flat, x), _run(model, x), atol=0.2)
    xq = np.clip(np.round(x / 0.05), -128, 127).astype(np.float32) * 0.05
    np.testing.assert_allclose(_run(flat, xq), _run(model, x), rtol=1e-5, atol=1e-5)


def test_dq_output_that_is_a_graph_output_keeps_its_name():
    nodes = [helper.make_node("QuantizeLinear", ["input", "s", "z"], ["q"], name="q"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["out"], name="dq")]
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"), numpy_helper.from_array(np.array(0, np.int8), "z")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])], inits)
    flat = strip_qdq(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert [(n.op_type, list(n.input), list(n.output)) for n in flat.graph.node] == [("Identity", ["input"], ["out"])]


def test_unsupported_dq_input_is_a_clear_error():
    nodes = [helper.make_node("Relu", ["input"], ["r"], name="relu"),
             helper.make_node("DequantizeLinear", ["r", "s"], ["out"], name="odd_dq")]
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.INT8, [1, 4])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])], inits)
    with pytest.raises(BundleError, match="DequantizeLinear 'odd_dq' reads 'r', which is neither a constant nor a "
                                          "QuantizeLinear"):
        strip_qdq(helper.make_model(graph))
