"""The one reader of ONNX tensor dimensions (jetseg.onnxgraph) and its users' handling of symbolic dims."""
from __future__ import annotations

import pytest

from jetseg.bundle import check_shapes
from jetseg.errors import BundleError
from jetseg.onnxgraph import dims, has_qdq, is_static

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def _value(shape):
    return helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)


def test_dims_static_symbolic_and_unknown():
    value = _value([1, "N", 32, None])
    assert dims(value) == [1, "N", 32, "?"]
    assert not is_static(dims(value))
    assert is_static(dims(_value([1, 1, 32, 32]))) and all(type(d) is int for d in dims(_value([1, 1, 32, 32])))


def test_check_shapes_takes_symbolic_dims_as_dynamic_and_shows_their_names():
    # a symbolic batch is never compared; a symbolic spatial dim is dynamic (accepted)
    check_shapes("b", {"input": ["N", 1, 32, "W"]}, {"logits": [1, 2, 32, 32]}, "input", (1, 1, 32, 32),
                 "logits", (1, 2, 32, 32))
    with pytest.raises(BundleError, match=r"input 'input' has shape \['N', 3, 32, 32\] but spec.yaml expects"):
        check_shapes("b", {"input": ["N", 3, 32, 32]}, {"logits": [1, 2, 32, 32]}, "input", (1, 1, 32, 32),
                     "logits", (1, 2, 32, 32))
    # ONNX Runtime's shapes (None for dynamic) still work
    check_shapes("b", {"input": [None, 1, 32, 32]}, {"logits": None}, "input", (1, 1, 32, 32), "logits", (1, 2, 32, 32))


def test_has_qdq():
    from tests.fixtures.models import conv_model, qdq_model

    assert has_qdq(qdq_model()) and not has_qdq(conv_model())
