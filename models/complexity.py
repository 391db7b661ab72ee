"""Size and compute of an ONNX model: parameters, multiply-accumulates (MACs) per frame.

MACs are counted from the graph after ONNX shape inference, for the ops that dominate a U-Net: Conv,
ConvTranspose, Gemm and MatMul (element-wise ops, pooling and normalisation are not counted). The count
is per input batch of the static shape, so for a batch-1 model it is MACs per frame.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

from jetseg.onnxgraph import dims, is_static
from jetseg.optional import require

PathOrBytes = Union[str, bytes, Any]


def _shapes(model: Any) -> Dict[str, List[int]]:
    """Static shapes of the graph's tensors (a tensor with a symbolic or unknown dimension is left out, so the
    nodes that need its shape are reported as uncounted rather than counted as 0 MACs)."""
    out: Dict[str, List[int]] = {}
    graph = model.graph
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        shape = dims(value)
        if is_static(shape):
            out[value.name] = [int(d) for d in shape]
    for init in graph.initializer:
        out[init.name] = [int(d) for d in init.dims]
    return out


def _prod(values: List[int]) -> int:
    total = 1
    for v in values:
        total *= int(v)
    return total


def _node_macs(node: Any, shapes: Dict[str, List[int]]) -> Optional[int]:
    if node.op_type in ("Conv", "ConvTranspose"):
        w = shapes.get(node.input[1])
        if node.op_type == "Conv":
            y = shapes.get(node.output[0])
            if not w or not y:
                return None
            return _prod(y) * w[1] * _prod(w[2:])  # w: (Cout, Cin/group, kh, kw)
        x = shapes.get(node.input[0])
        if not w or not x:
            return None
        return _prod(x) * w[1] * _prod(w[2:])  # w: (Cin, Cout/group, kh, kw); every input value is spread
    if node.op_type in ("Gemm", "MatMul"):
        a, y = shapes.get(node.input[0]), shapes.get(node.output[0])
        if not a or not y:
            return None
        return _prod(y) * a[-1]
    return 0


def onnx_stats(model: PathOrBytes) -> Dict[str, Any]:
    """``{"params", "macs", "uncounted_nodes"}`` of an ONNX model (a path, bytes or a loaded ModelProto)."""
    onnx = require("onnx", "model statistics")
    if isinstance(model, bytes):
        proto = onnx.load_from_string(model)
    elif isinstance(model, onnx.ModelProto):
        proto = model
    else:
        proto = onnx.load(str(model))
    proto = onnx.shape_inference.infer_shapes(proto)
    shapes = _shapes(proto)
    macs, missing = 0, []
    for node in proto.graph.node:
        count = _node_macs(node, shapes)
        if count is None:
            missing.append(node.name or node.op_type)
        else:
            macs += count
    params = sum(_prod([int(d) for d in init.dims]) for init in proto.graph.initializer)
    return {"params": int(params), "macs": int(macs), "uncounted_nodes": missing}
