"""FP16 precision constraints on the float part of an implicit INT8 network (the TensorRT-API half of the
float-layer decision; which layers stay float is :mod:`jetseg.jetson.trt.floatlayers`).

Each float layer computes in FP16 with FP16 outputs (``ILayer.precision``, ``ILayer.set_output_type``), and the
layer producing a tensor that a float layer reads, or a graph output, writes that tensor in FP16;
``BuilderFlag.OBEY_PRECISION_CONSTRAINTS`` makes TensorRT keep them (TensorRT 8.5
``python/docstrings/infer/pyCoreDoc.h``: "Require that layers execute in specified precisions. Build fails
otherwise."; ``pyGraphDoc.h``: ``precision``, ``set_output_type`` "Constraint layer to generate output data with
given type"). FP16 because the DLA runs FP16 and INT8 only; the GPU Q/DQ engine also runs its float layers in
FP16 (the FP16 flag is set with INT8).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, List

from jetseg.jetson.trt.floatlayers import FloatKeep

if TYPE_CHECKING:
    import tensorrt


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
