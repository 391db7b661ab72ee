"""Q/DQ ONNX helpers for engine building.

The Xavier DLA cannot run a Q/DQ (explicitly quantized) network: DLA INT8 needs the float network plus
per-tensor scales from a TensorRT calibration cache. An INT8 bundle carries the Q/DQ model and that cache,
so :func:`strip_qdq` recovers the float network from the Q/DQ model: activation Q->DQ pairs are removed
(the float tensor keeps its original name, which is the name the calibration cache uses) and quantized
weights are dequantized back to float32 initializers.
"""
from __future__ import annotations

from typing import Any, Dict, List, Set

import numpy as np

from jetseg.errors import BundleError
from jetseg.optional import require


def _dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int) -> np.ndarray:
    q = q.astype(np.float32)
    scale = scale.astype(np.float32)
    zero = zero.astype(np.float32)
    if scale.ndim == 1 and scale.size > 1:
        shape = [1] * q.ndim
        shape[axis % q.ndim] = scale.size
        scale = scale.reshape(shape)
        zero = zero.reshape(shape) if zero.size > 1 else zero
    return ((q - zero) * scale).astype(np.float32)


def strip_qdq(model: Any) -> Any:
    """Return a float copy of a Q/DQ ONNX model (the input model is not changed).

    Raises:
        BundleError: a DequantizeLinear is fed by something that is neither a constant nor a QuantizeLinear.
    """
    onnx = require("onnx", "turning a Q/DQ model back into a float network for DLA INT8")
    from onnx import helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    inits: Dict[str, Any] = {i.name: i for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    rename: Dict[str, str] = {}
    new_inits: List[Any] = []
    drop: Set[int] = set()
    for idx, node in enumerate(graph.node):
        if node.op_type != "DequantizeLinear":
            continue
        src = node.input[0]
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if src in inits:
            scale = numpy_helper.to_array(inits[node.input[1]])
            zero = (numpy_helper.to_array(inits[node.input[2]]) if len(node.input) > 2 and node.input[2]
                    else np.zeros(1, np.float32))
            weights = _dequantize(numpy_helper.to_array(inits[src]), scale, zero, axis)
            new_inits.append(numpy_helper.from_array(weights, node.output[0]))
        elif src in producers and producers[src].op_type == "QuantizeLinear":
            q_node = producers[src]
            rename[node.output[0]] = q_node.input[0]
        else:
            raise BundleError("DequantizeLinear %r reads %r, which is neither a constant nor a QuantizeLinear; "
                              "cannot recover the float network" % (node.name, src))
        drop.add(idx)
    for idx, node in enumerate(graph.node):
        if node.op_type == "QuantizeLinear":
            drop.add(idx)
    kept = [n for i, n in enumerate(graph.node) if i not in drop]
    for node in kept:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    extra = []
    for out in graph.output:  # a graph output that was a DQ result keeps its name through an Identity
        if out.name in rename:
            extra.append(helper.make_node("Identity", [rename[out.name]], [out.name], name=out.name + "_identity"))
    used = {name for node in kept + extra for name in node.input}
    keep_inits = [i for i in graph.initializer if i.name in used]
    del graph.node[:]
    graph.node.extend(kept + extra)
    del graph.initializer[:]
    graph.initializer.extend(keep_inits + [i for i in new_inits if i.name in used])
    return model
