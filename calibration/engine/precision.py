"""Implicit INT8 (calibration cache) that builds the model the accuracy gate accepted.

``jetseg calibrate`` gates a Q/DQ model in which some tensors stay float: the layers the gate kept in float
(``float_layers`` of calibration.json: ONNX node names with no Q/DQ on their inputs) and the logits (graph
outputs: the tensorrt target never quantizes an output of Conv/ConvTranspose/Gemm/MatMul). A calibration
cache, though, has a scale for every tensor, and TensorRT's implicit INT8 quantizes every tensor that has one.
So the DLA engine would be another model than the one the gate accepted. Two measures keep it the same:

1. **Cache**: tensors that nothing quantized reads in the accepted model are left out of the cache
   (:func:`float_keep`'s ``uncached``: the graph outputs, and inputs of float layers read by float layers
   only). TensorRT gives a tensor without a scale no INT8 implementation ("Missing scale and zero-point for
   tensor ..., expect fall back to non-int8 implementation").
2. **Precision constraints** (:func:`constrain`): each float layer computes in FP16 with FP16 outputs
   (``ILayer.precision``, ``ILayer.set_output_type``), and the layer producing a tensor that a float layer
   reads, or a graph output, writes that tensor in FP16; ``BuilderFlag.OBEY_PRECISION_CONSTRAINTS`` makes
   TensorRT keep them (TensorRT 8.5 ``python/docstrings/infer/pyCoreDoc.h``: "Require that layers execute in
   specified precisions. Build fails otherwise."; ``pyGraphDoc.h``: ``precision``, ``set_output_type``
   "Constraint layer to generate output data with given type"). FP16 because the DLA runs FP16 and INT8 only;
   the GPU Q/DQ engine also runs its float layers in FP16 (the FP16 flag is set with INT8).

Both work on bundles calibrated before calibration.json recorded anything but ``float_layers``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Sequence, Set

from jetseg.bundle import Bundle

if TYPE_CHECKING:
    import tensorrt


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


def constrain(network: tensorrt.INetworkDefinition, config: tensorrt.IBuilderConfig, keep: FloatKeep,
              trt: Any) -> List[str]:
    """Put FP16 precision constraints on the float part of ``network``; returns notes for build.json.

    A TensorRT layer belongs to a float layer when it writes one of that ONNX node's output tensors
    (onnx-tensorrt names the tensors after the ONNX tensors).
    """
    float_outputs, fp16_tensors = set(keep.outputs), set(keep.tensors)
    constrained, retyped = [], []
    for i in range(network.num_layers):
        layer: Any = network.get_layer(i)  # tensorrt-stubs 10.13 lack ILayer's outputs and precision
        names = [layer.get_output(j).name for j in range(layer.num_outputs)]
        if float_outputs & set(names):
            layer.precision = trt.float16
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float16)
            constrained.append(layer.name)
            continue
        for j, name in enumerate(names):
            if name in fp16_tensors:
                layer.set_output_type(j, trt.float16)
                retyped.append(name)
    if not constrained and not retyped:
        return []
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    notes = []
    if constrained:
        notes.append("kept in FP16 as the accuracy gate kept them in float: %s" % ", ".join(constrained))
    if retyped:
        notes.append("written in FP16 (float in the gated model): %s" % ", ".join(retyped))
    return notes
