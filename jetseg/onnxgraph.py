"""Facts about ONNX graphs that several layers read: tensor dimensions and the Q/DQ operators.

Works on ``onnx`` protobuf objects (``ValueInfoProto``, ``ModelProto``) without importing ``onnx`` itself.
"""
from __future__ import annotations

from typing import Any, List, Union

#: The explicit-quantization operators (ONNX's standard domain).
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")

#: A dimension as :func:`dims` gives it: an int where static, a name where symbolic.
Dim = Union[int, str]


def dims(value_info: Any) -> List[Dim]:
    """An ONNX tensor's dimensions: ``dim_value`` where static, else its ``dim_param`` name (``"N"``), else
    ``"?"`` (unknown). ``isinstance(d, int)`` tells a static dimension."""
    return [int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
            for d in value_info.type.tensor_type.shape.dim]


def is_static(shape: List[Dim]) -> bool:
    """True when every dimension of ``shape`` (from :func:`dims`) is a number."""
    return all(isinstance(d, int) for d in shape)


def default_opset(model: Any) -> int:
    """The default-domain (``""`` or ``ai.onnx``) opset a ModelProto imports (0 when it imports none)."""
    return max([int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")] or [0])


def has_qdq(model: Any) -> bool:
    """True when the ONNX model (a ModelProto) contains QuantizeLinear/DequantizeLinear nodes."""
    return any(node.op_type in QDQ_OPS for node in model.graph.node)
