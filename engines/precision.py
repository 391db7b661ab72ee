"""FP16 precision constraints on the float part of an implicit INT8 network (the TensorRT-API half of the
float-layer decision; which layers stay float is :mod:`jetseg.jetson.trt.floatlayers`).

Each float layer (one the accuracy gate kept in float) computes in FP16 with FP16 outputs (``ILayer.precision``,
``ILayer.set_output_type``), and the layer producing a tensor that a float layer reads writes that tensor in
FP16; ``BuilderFlag.OBEY_PRECISION_CONSTRAINTS`` makes TensorRT keep them (TensorRT 8.5
``python/docstrings/infer/pyCoreDoc.h``: "Require that layers execute in specified precisions. Build fails
otherwise."; ``pyGraphDoc.h``: ``precision``, ``set_output_type`` "Constraint layer to generate output data with
given type"). FP16 because the DLA runs FP16 and INT8 only.

Only layers that really must stay in float are constrained: graph outputs (the logits) are not retyped, since
the cache has no scale for them (``floatlayers.float_keep``'s ``uncached``), so TensorRT gives them no INT8
implementation anyway; a network without float layers gets no constraint and no flag. A build that fails with
the flag is retried once without it (:func:`jetseg.engines.build.serialize_with_retry`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, List

from jetseg.jetson.trt.floatlayers import FloatKeep

if TYPE_CHECKING:
    import tensorrt


@dataclass
class Constraints:
    """What :func:`constrain` put on the network.

    Attributes:
        layers: TensorRT layers constrained to FP16 (computation and outputs).
        retyped: tensors written in FP16 by their producer (inputs of float layers).
        notes: lines for build.json.
    """

    layers: List[str] = field(default_factory=list)
    retyped: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def obeyed(self) -> bool:
        """True when OBEY_PRECISION_CONSTRAINTS was set (some layer must stay in float)."""
        return bool(self.layers)


def constrain(network: tensorrt.INetworkDefinition, config: tensorrt.IBuilderConfig, keep: FloatKeep,
              trt: Any) -> Constraints:
    """Put FP16 precision constraints on the float layers of ``network`` and set OBEY_PRECISION_CONSTRAINTS
    when there is one.

    A TensorRT layer belongs to a float layer when it writes one of that ONNX node's output tensors
    (onnx-tensorrt names the tensors after the ONNX tensors).
    """
    float_outputs = set(keep.outputs)
    net: Any = network  # num_outputs, get_output: TensorRT 8.5.2 python/src/infer/pyGraph.cpp 838, 984; not in the stubs
    graph_outputs = {net.get_output(i).name for i in range(net.num_outputs)}
    fp16_tensors = set(keep.tensors) - graph_outputs  # the logits have no scale: nothing to retype
    done = Constraints()
    # tensorrt-stubs 10.13 lack ILayer's outputs and precision (hence Any)
    layers: List[Any] = [network.get_layer(i) for i in range(network.num_layers)]
    for layer in layers:
        names = [layer.get_output(j).name for j in range(layer.num_outputs)]
        if float_outputs & set(names):
            done.layers.append(layer.name)
    if not done.layers:
        return done
    for layer in layers:
        names = [layer.get_output(j).name for j in range(layer.num_outputs)]
        if layer.name in done.layers:
            layer.precision = trt.float16
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float16)
            continue
        for j, name in enumerate(names):
            if name in fp16_tensors:
                layer.set_output_type(j, trt.float16)
                done.retyped.append(name)
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    done.notes.append("kept in FP16 as the accuracy gate kept them in float: %s" % ", ".join(done.layers))
    if done.retyped:
        done.notes.append("written in FP16 (float in the gated model): %s" % ", ".join(done.retyped))
    return done
