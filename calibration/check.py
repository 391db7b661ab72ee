"""Check a Q/DQ ONNX model against TensorRT's explicit-quantization rules (TensorRT 8.5 on Xavier and later).

Rules checked (docs/calibration.md explains each):

- ``opset``: the default-domain opset is at most 17 (the ONNX parser of TensorRT 8.5).
- ``domain``: QuantizeLinear / DequantizeLinear are standard ONNX ops (not ``com.microsoft`` contrib ops).
- ``int8``: quantized data is int8 (an omitted zero-point means uint8, also a violation).
- ``zero-point``: every zero-point is exactly 0 (symmetric quantization).
- ``scale``: every scale is finite and > 0.
- ``per-channel``: per-channel scales only on weights (constants); activations are per-tensor.
- ``convtranspose-axis``: ConvTranspose weights are per-tensor or per-channel on axis 0.
- ``bias``: biases of Conv / ConvTranspose / Gemm stay float (not dequantized from int32).
- ``int8-weights`` (TensorRT < 10 only): no INT8 initializer feeds a DequantizeLinear. onnx-tensorrt 8.5 makes
  such an initializer an INT8 constant, which TensorRT 8.x rejects ("invalid weights type of Int8",
  NVIDIA/TensorRT#2163); weights must be float initializers through QuantizeLinear -> DequantizeLinear.

    violations = check_qdq("model.onnx")
    if violations:
        print(format_violations(violations))
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np

from jetseg.onnxgraph import QDQ_OPS, default_opset
from jetseg.optional import require
from jetseg.trtcompat import DEFAULT_TRT_VERSION, opset_problem

_BIASED = ("Conv", "ConvTranspose", "Gemm")


@dataclass
class Violation:
    """One broken rule: which rule, at which node, and what was found."""

    rule: str
    node: str
    message: str

    def __str__(self) -> str:
        return "[%s] %s: %s" % (self.rule, self.node or "<model>", self.message)


def format_violations(violations: List[Violation], limit: int = 20) -> str:
    lines = [str(v) for v in violations[:limit]]
    if len(violations) > limit:
        lines.append("... and %d more" % (len(violations) - limit))
    return "\n".join(lines)


def _constants(model: Any) -> Dict[str, np.ndarray]:
    numpy_helper = require("onnx.numpy_helper", "the Q/DQ checker")
    out = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    out[node.output[0]] = numpy_helper.to_array(attr.t)
    return out


def _axis(node: Any) -> int:
    for attr in node.attribute:
        if attr.name == "axis":
            return int(attr.i)
    return 1  # the ONNX default


def check_qdq(model: Union[str, Path, Any], trt_version: str = DEFAULT_TRT_VERSION) -> List[Violation]:
    """Return every violation of TensorRT's Q/DQ rules in ``model`` (a path or a ModelProto); empty = passes.

    Args:
        trt_version: the TensorRT the model is meant for; INT8 weight initializers are refused below 10.
    """
    from packaging.version import Version

    onnx = require("onnx", "the Q/DQ checker")
    int8_constants_ok = Version(trt_version).release[0] >= 10
    proto: Any = model if hasattr(model, "graph") else onnx.load(str(model))
    out: List[Violation] = []
    problem = opset_problem(default_opset(proto))
    if problem:
        out.append(Violation("opset", "", problem))
    consts = _constants(proto)
    producers = {o: n for n in proto.graph.node for o in n.output}
    consumers: Dict[str, List[Any]] = {}
    for node in proto.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def is_weight(node: Any) -> bool:
        """A Q/DQ node whose data is a constant (directly, or through a Q fed by a constant)."""
        src = node.input[0]
        if src in consts:
            return True
        prev = producers.get(src)
        return prev is not None and prev.op_type == "QuantizeLinear" and prev.input[0] in consts

    for node in proto.graph.node:
        if node.op_type not in QDQ_OPS:
            continue
        name = node.name or node.output[0]
        if node.domain not in ("", "ai.onnx"):
            out.append(Violation("domain", name, "%s from domain %r; TensorRT parses only the standard ONNX op"
                                 % (node.op_type, node.domain)))
        scale = consts.get(node.input[1]) if len(node.input) > 1 else None
        zero = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if scale is None:
            out.append(Violation("scale", name, "scale %r is not a constant" % (node.input[1:2] or ["?"])[0]))
        elif not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
            out.append(Violation("scale", name, "scale has values <= 0 or not finite (min %g)"
                                 % float(np.min(scale))))
        if zero is None:
            if len(node.input) > 2 and node.input[2]:
                out.append(Violation("zero-point", name, "zero-point %r is not a constant" % node.input[2]))
            else:
                out.append(Violation("int8", name, "no zero-point: ONNX then uses uint8; give an int8 zero-point 0"))
        else:
            if zero.dtype != np.int8:
                out.append(Violation("int8", name, "quantized type is %s; TensorRT needs int8" % zero.dtype))
            if np.any(zero != 0):
                out.append(Violation("zero-point", name, "zero-point is not 0 (found %s); TensorRT needs "
                                     "symmetric quantization" % _brief(zero)))
        if (node.op_type == "DequantizeLinear" and not int8_constants_ok and node.input[0] in consts
                and consts[node.input[0]].dtype in (np.int8, np.uint8)):
            out.append(Violation("int8-weights", name, "initializer %r is %s data feeding DequantizeLinear; "
                                 "TensorRT %s rejects INT8 constants (NVIDIA/TensorRT#2163): keep weights float "
                                 "with a QuantizeLinear -> DequantizeLinear pair ('jetseg calibrate --target "
                                 "tensorrt' writes that)" % (node.input[0], consts[node.input[0]].dtype,
                                                             trt_version)))
        per_channel = scale is not None and scale.size > 1
        if scale is not None and per_channel and not is_weight(node):
            out.append(Violation("per-channel", name, "activation %r has %d per-channel scales; TensorRT "
                                 "needs per-tensor scales for activations" % (node.input[0], scale.size)))
        if per_channel and node.op_type == "DequantizeLinear":
            for user in consumers.get(node.output[0], []):
                if user.op_type == "ConvTranspose" and user.input[1] == node.output[0] and _axis(node) != 0:
                    out.append(Violation("convtranspose-axis", name, "ConvTranspose %r weights are per-channel on "
                                         "axis %d; TensorRT needs axis 0 or per-tensor"
                                         % (user.name, _axis(node))))
    for node in proto.graph.node:
        if node.op_type in _BIASED and len(node.input) > 2 and node.input[2]:
            prev = producers.get(node.input[2])
            if prev is not None and prev.op_type == "DequantizeLinear":
                out.append(Violation("bias", node.name or node.output[0], "bias %r is quantized (%s); TensorRT "
                                     "expects a float bias" % (node.input[2], prev.name)))
    return out


def _brief(values: np.ndarray) -> str:
    flat = np.asarray(values).ravel()
    text = ", ".join(str(int(v)) for v in flat[:4])
    return "[%s%s]" % (text, ", ..." if flat.size > 4 else "")


def summary(model: Union[str, Path, Any]) -> Dict[str, Optional[int]]:
    """Counts of Q/DQ nodes in a model (for the calibration report)."""
    onnx = require("onnx", "the Q/DQ checker")
    if not hasattr(model, "graph"):
        model = onnx.load(str(model))
    ops = [n.op_type for n in model.graph.node]
    return {"quantize": ops.count("QuantizeLinear"), "dequantize": ops.count("DequantizeLinear"),
            "qlinear": sum(1 for o in ops if o.startswith("QLinear")), "nodes": len(ops)}
