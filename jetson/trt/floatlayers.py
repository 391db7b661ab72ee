"""Which tensors of the accepted model stay float: the decision that the calibration cache and the engine build
share (plain Python on an ONNX ModelProto, no TensorRT).

``jetseg calibrate`` gates a Q/DQ model in which some tensors stay float: the layers the gate kept in float
(``float_layers`` of calibration.json: ONNX node names with no Q/DQ on their inputs) and the logits (graph
outputs: the tensorrt target never quantizes an output of Conv/ConvTranspose/Gemm/MatMul). A calibration
cache, though, has a scale for every tensor, and TensorRT's implicit INT8 quantizes every tensor that has one.
So the DLA engine would be another model than the one the gate accepted. Two measures keep it the same:

1. **Cache**: tensors that nothing quantized reads in the accepted model are left out of the cache
   (:func:`float_keep`'s ``uncached``: the graph outputs, and inputs of float layers read by float layers
   only; ``jetseg calibrate`` writes the cache without them, ``jetseg build`` drops them from older caches).
   TensorRT gives a tensor without a scale no INT8 implementation ("Missing scale and zero-point for tensor
   ..., expect fall back to non-int8 implementation").
2. **Precision constraints**: the engine build puts FP16 constraints on the float layers
   (``jetseg.engines.precision.constrain``, the TensorRT-API part).

Both work on bundles calibrated before calibration.json recorded anything but ``float_layers``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Sequence, Set

from jetseg.bundle import Bundle


@dataclass
class FloatKeep:
    """What the implicit INT8 build keeps in float.

    Attributes:
        layers: ONNX node names of the float layers (the gate's fallback).
        outputs: their output tensors (the TensorRT layers producing them get FP16 precision and outputs).
        tensors: tensors written in FP16 by their producer (inputs of float layers, graph outputs).
        uncached: tensors left out of the calibration cache.
    """

    layers: List[str] = field(default_factory=list)
    outputs: List[str] = field(default_factory=list)
    tensors: List[str] = field(default_factory=list)
    uncached: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, List[str]]:
        return {"float_layers": list(self.layers), "float_tensors": list(self.tensors),
                "uncached_tensors": list(self.uncached)}


def float_keep(model: Any, float_layers: Sequence[str]) -> FloatKeep:
    """The float part of the accepted model, from the float ONNX network (``model.fp32.onnx``).

    Args:
        model: the float ModelProto the cache refers to (the prepared FP32 model, or the Q/DQ model with its
            Q/DQ removed).
        float_layers: ONNX node names the gate kept in float (unknown names are ignored: the report says which).
    """
    graph = model.graph
    constants = {i.name for i in graph.initializer}
    constants |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    wanted = set(float_layers)
    nodes = [n for n in graph.node if n.name in wanted]
    consumers: Dict[str, List[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = [o for n in nodes for o in n.output if o]
    inputs = _unique(i for n in nodes for i in n.input if i and i not in constants)
    graph_outputs = [o.name for o in graph.output]
    only_float = [t for t in inputs if all(c.name in wanted for c in consumers.get(t, []))]
    return FloatKeep(layers=[n.name for n in nodes], outputs=outputs,
                     tensors=_unique(list(inputs) + graph_outputs),
                     uncached=_unique(graph_outputs + only_float))


def _unique(items: Iterable[str]) -> List[str]:
    seen: Set[str] = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def recorded_float_layers(bundle: Bundle) -> List[str]:
    """``float_layers`` of the bundle's calibration.json (empty when there is none: nothing kept in float)."""
    record = bundle.calibration()
    return list(record.float_layers) if record is not None else []
