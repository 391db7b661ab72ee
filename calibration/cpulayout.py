"""The ``cpu`` target's graph form: what ONNX Runtime's CPU provider runs fastest in INT8.

ONNX Runtime fuses a Q/DQ ``Conv`` into ``QLinearConv`` and drops the Q/DQ pairs around ``Reshape`` and
``Transpose`` (its QDQ selector-action transformer, ``onnxruntime/core/optimizer/qdq_transformer/
selectors_actions/qdq_selector_action_transformer.cc``: ``ConvQDQRules`` registers ``Conv`` only,
``DropQDQNodesRules`` ``Reshape`` and ``Transpose``); it has no rule for ``ConvTranspose``, so a quantized
ConvTranspose runs as dequantize, float ConvTranspose, quantize (1.19.2 and 1.32 alike, checked with the profiler).

A U-Net's up-sampling ConvTranspose with a 2x2 kernel, stride 2 and no padding computes each 2x2 output block
from one input pixel: it is a 1x1 Conv with 4x the output channels followed by a pixel shuffle. The cpu target
rewrites it so (:func:`shuffle_upsampling`), laid out for ONNX Runtime's NHWC int8 kernels:

    Conv 1x1 (4*C out, channel = (a*2 + b)*C + c) -> Transpose to NHWC -> Reshape (N, H, W, 2, 2, C)
    -> Transpose (N, H, 2, W, 2, C) -> Reshape (N, 2H, 2W, C) -> Transpose to NCHW

The same numbers in float (the rewrite is exact up to float summation order). In INT8 the Conv becomes a
QLinearConv, the Reshapes and the middle Transpose move uint8 data (whole blocks of 2*C bytes), and ONNX
Runtime's transpose optimizer cancels the outer Transposes against the NHWC layout of the QLinearConvs around
them. Measured on the bundled ultrasound U-Net (1 thread, AVX-512 VNNI, thread CPU time of one frame, issue 22):
2.55x -> 3.0x ONNX Runtime FP32, and model.onnx 32% -> 26% of FP32 (the ConvTranspose weights become int8).

A ConvTranspose of another shape, and a Conv reading at most :data:`CPU_FLOAT_MAX_CHANNELS` channels (a
U-Net's first layer: too little work per output for an INT8 GEMM, and the input's quantization error is all
the model sees), stay float (:func:`cpu_float_nodes`). The TensorRT target keeps the graph as it is.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from jetseg.onnxgraph import dims, is_static
from jetseg.optional import require

#: A Conv reading at most this many input channels stays float in the ``cpu`` target (module docstring).
CPU_FLOAT_MAX_CHANNELS = 3


def _attrs(node: Any) -> Dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _shapes(model: Any) -> Dict[str, List[Any]]:
    """Tensor shapes of ``model``; inferred (on a copy) when a ConvTranspose output has none recorded."""
    shapes = {v.name: dims(v) for v in list(model.graph.value_info) + list(model.graph.output)}
    if any(n.op_type == "ConvTranspose" and n.output[0] not in shapes for n in model.graph.node):
        onnx = require("onnx", "INT8 calibration")
        inferred = onnx.shape_inference.infer_shapes(model)
        shapes.update({v.name: dims(v) for v in inferred.graph.value_info})
    return shapes


def shuffle_shape(node: Any, model: Any, shapes: Optional[Dict[str, List[Any]]] = None) -> Optional[Tuple[int, ...]]:
    """The NCHW output shape of ``node`` when it is a ConvTranspose :func:`shuffle_upsampling` rewrites (2x2
    kernel, stride 2, no padding or output padding, group 1, dilation 1, constant weights, static C, H, W; the
    batch 0 when it is dynamic), else None."""
    if node.op_type != "ConvTranspose" or len(node.input) < 2:
        return None
    at = _attrs(node)
    if (list(at.get("kernel_shape", [2, 2])) != [2, 2] or list(at.get("strides", [1, 1])) != [2, 2]
            or any(at.get("pads", [])) or any(at.get("output_padding", [])) or at.get("group", 1) != 1
            or any(d != 1 for d in at.get("dilations", [])) or at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
            or "output_shape" in at):
        return None
    inits = {i.name: i for i in model.graph.initializer}
    weight = inits.get(node.input[1])
    if weight is None or list(weight.dims)[2:] != [2, 2]:
        return None
    if len(node.input) > 2 and node.input[2] and node.input[2] not in inits:
        return None
    shape = (shapes if shapes is not None else _shapes(model)).get(node.output[0])
    if not shape or len(shape) != 4 or not is_static(shape[1:]):
        return None
    # a dynamic batch is 0: ONNX Reshape copies a 0 from its input's dimension (allowzero 0, the default)
    return tuple(int(d) if isinstance(d, int) else 0 for d in shape)


def cpu_float_nodes(model: Any) -> List[str]:
    """Nodes the ``cpu`` target keeps in float because INT8 makes them slower on ONNX Runtime's CPU provider:
    a ConvTranspose :func:`shuffle_upsampling` cannot rewrite, and a Conv whose weight reads at most
    :data:`CPU_FLOAT_MAX_CHANNELS` input channels."""
    inits = {i.name: i for i in model.graph.initializer}
    shapes = _shapes(model)
    out = []
    for node in model.graph.node:
        if node.op_type == "ConvTranspose" and shuffle_shape(node, model, shapes) is None:
            out.append(node.name)
        elif node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in inits:
            weight = inits[node.input[1]]  # (out, in/groups, kh, kw)
            if len(weight.dims) > 1 and weight.dims[1] <= CPU_FLOAT_MAX_CHANNELS:
                out.append(node.name)
    return [name for name in out if name]


def shuffle_upsampling(model: Any, tensors_data: Any, keep: Any = ()) -> Tuple[Any, List[str]]:
    """Rewrite every 2x2/stride-2 ConvTranspose of ``model`` (a ModelProto with shapes inferred; changed in
    place) not named in ``keep`` into a 1x1 Conv and an NHWC pixel shuffle (module docstring).

    The Conv keeps the ConvTranspose's node name (so the gate's fallback names it as before) and the shuffle's
    last node writes the ConvTranspose's output tensor. Every new tensor holds the same values as that output
    (rearranged), so it gets the output's calibrated range.

    Returns:
        ``(tensors_data, rewritten node names)``: a copy of ONNX Runtime's ``TensorsData`` with the new
        tensors' ranges (the argument is not changed).
    """
    require("onnx", "INT8 calibration")
    from onnx import helper, numpy_helper

    data = copy.copy(tensors_data)
    data.data = dict(tensors_data.data)
    inits = {i.name: i for i in model.graph.initializer}
    shapes = _shapes(model)
    keep = set(keep)
    nodes: List[Any] = []
    done: List[str] = []
    for node in model.graph.node:
        shape = shuffle_shape(node, model, shapes) if node.name not in keep else None
        if shape is None or node.output[0] not in data.data:
            nodes.append(node)
            continue
        n, c, h2, w2 = shape
        out = node.output[0]
        weight = numpy_helper.to_array(inits[node.input[1]])  # (cin, c, 2, 2)
        cin = weight.shape[0]
        bias = (numpy_helper.to_array(inits[node.input[2]]) if len(node.input) > 2 and node.input[2]
                else np.zeros(c, np.float32))
        stem = out + "_shuffle"
        new_inits = {
            stem + "_w": weight.transpose(2, 3, 1, 0).reshape(4 * c, cin, 1, 1),  # channel (a*2 + b)*c + co
            stem + "_b": np.tile(bias, 4),
            stem + "_6d": np.array([n, h2 // 2, w2 // 2, 2, 2, c], np.int64),
            stem + "_4d": np.array([n, h2, w2, c], np.int64)}
        model.graph.initializer.extend(numpy_helper.from_array(np.ascontiguousarray(v).astype(
            np.int64 if v.dtype == np.int64 else np.float32), k) for k, v in new_inits.items())
        t = ["%s_%d" % (stem, i) for i in range(5)]
        nodes += [
            helper.make_node("Conv", [node.input[0], stem + "_w", stem + "_b"], [t[0]], name=node.name,
                             kernel_shape=[1, 1]),
            helper.make_node("Transpose", [t[0]], [t[1]], name=stem + "_nhwc", perm=[0, 2, 3, 1]),
            helper.make_node("Reshape", [t[1], stem + "_6d"], [t[2]], name=stem + "_split"),
            helper.make_node("Transpose", [t[2]], [t[3]], name=stem + "_interleave", perm=[0, 1, 3, 2, 4, 5]),
            helper.make_node("Reshape", [t[3], stem + "_4d"], [t[4]], name=stem + "_merge"),
            helper.make_node("Transpose", [t[4]], [out], name=stem + "_nchw", perm=[0, 3, 1, 2])]
        for name in t:
            data.data[name] = data.data[out]
        done.append(node.name)
    if done:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        used = {name for node in nodes for name in node.input}
        kept = [i for i in model.graph.initializer if i.name in used]
        del model.graph.initializer[:]
        model.graph.initializer.extend(kept)
    return data, done
