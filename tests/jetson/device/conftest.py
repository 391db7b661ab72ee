"""Fixtures for the device tests: tiny real ONNX models and bundles written in the test."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from jetseg.bundle import save_bundle  # noqa: E402
from jetseg.spec import Spec  # noqa: E402

SIZE = 32


def tiny_model(seed: int = 0) -> "onnx.ModelProto":
    """input (1,1,32,32) -> Conv 3x3 (2 channels) -> logits (1,2,32,32)."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.normal(size=(2, 1, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(2, np.float32), "b")
    node = helper.make_node("Conv", ["input", "w", "b"], ["logits"], name="conv", pads=[1, 1, 1, 1])
    graph = helper.make_graph([node], "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, SIZE, SIZE])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2, SIZE, SIZE])], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def tiny_spec() -> Spec:
    return Spec.from_dict({"name": "tiny", "input": {"name": "input", "size": [SIZE, SIZE], "channels": 1},
                           "output": {"name": "logits", "kind": "softmax"}, "classes": ["background", "target"]})


def make_bundle(path, model=None, precision="fp32", extra=None):
    model = model if model is not None else tiny_model()
    return save_bundle(path, model.SerializeToString(), tiny_spec(), precision=precision, extra_files=extra)


@pytest.fixture
def tiny_bundle(tmp_path):
    return make_bundle(tmp_path / "tiny")
