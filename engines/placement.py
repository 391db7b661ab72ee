"""Which layers of a network run on the DLA and which fall back to the GPU, and why.

Two sources of truth are combined:

1. :func:`onnx_rules` reads the ONNX model and applies the DLA rules that matter for U-Nets (TensorRT 8.5 on
   Xavier; PLATFORM.md): ConvTranspose only with padding 0; Concat only along channels; Resize only with
   integer scales (nearest <= 32, linear <= 4), never with ``sizes``, linear not with ``align_corners``;
   plus operators the DLA does not implement. This runs anywhere (tested without TensorRT).
2. On the device, TensorRT's own ``config.can_run_on_DLA(layer)`` answers per network layer before the build;
   the report attaches the ONNX rule (if any) as the reason for each GPU layer. This is an *estimate*: what
   TensorRT decided (the 16-loadables-per-core limit, INT8 range rules, precision constraints) is read from
   the built engine by :mod:`.engine_info`.
3. :func:`scale_findings` checks the DLA's INT8 equal-range rules against the calibration cache.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional

from jetseg.optional import require

if TYPE_CHECKING:
    import tensorrt

# ONNX operators with a DLA implementation in TensorRT 8.5 (subject to the per-layer rules below).
DLA_OPS = {
    "Conv", "ConvTranspose", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "PRelu", "BatchNormalization",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Concat", "Resize", "Upsample", "Add",
    "Sub", "Mul", "Max", "Min", "Sum", "Gemm", "Identity", "Slice", "Softmax", "LRN", "Abs",
    "QuantizeLinear", "DequantizeLinear", "Dropout",
}


@dataclass
class Finding:
    """One ONNX node that (by the rules) will not run on the DLA."""

    node: str
    op: str
    reason: str

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _attr(node: Any, name: str, default: Any = None) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _const(model: Any, name: str) -> Optional[Any]:
    from onnx import numpy_helper

    if not name:
        return None
    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and name in node.output:
            value = _attr(node, "value")
            return numpy_helper.to_array(value) if value is not None else None
    return None


def _resize_reason(model: Any, node: Any) -> Optional[str]:
    mode = _attr(node, "mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    ctm = _attr(node, "coordinate_transformation_mode", b"half_pixel")
    ctm = ctm.decode() if isinstance(ctm, bytes) else str(ctm)
    inputs = list(node.input)
    if node.op_type == "Resize" and len(inputs) > 3 and inputs[3]:
        return "Resize uses 'sizes'; the DLA needs integer 'scales' (export with scale_factor, not size)"
    scales_name = inputs[2] if node.op_type == "Resize" and len(inputs) > 2 else (inputs[1] if len(inputs) > 1 else "")
    scales = _const(model, scales_name)
    if scales is None:
        return "Resize scales are not constant; the DLA needs constant integer scales"
    spatial = [float(s) for s in list(scales.reshape(-1))[2:]]
    if any(abs(s - round(s)) > 1e-6 or s < 1 for s in spatial):
        return "Resize scales %s are not integers >= 1; the DLA needs integer scales" % spatial
    limit = 32 if mode == "nearest" else 4
    if any(s > limit for s in spatial):
        return "Resize %s scale %s exceeds the DLA limit of %d" % (mode, max(spatial), limit)
    if mode == "linear" and ctm == "align_corners":
        return "linear Resize with align_corners=True; the DLA needs half_pixel (align_corners=False)"
    if mode not in ("nearest", "linear"):
        return "Resize mode %r is not supported on the DLA (nearest or linear only)" % mode
    return None


def onnx_rules(model: Any) -> List[Finding]:
    """Apply the DLA rules to every node of an ONNX ModelProto; one Finding per node that stays on the GPU."""
    require("onnx", "the DLA placement check")
    out: List[Finding] = []
    for node in model.graph.node:
        op = node.op_type
        name = node.name or (node.output[0] if node.output else op)
        if op == "Constant":
            continue
        if op not in DLA_OPS:
            out.append(Finding(name, op, "%s has no DLA implementation" % op))
        elif op == "ConvTranspose":
            pads = list(_attr(node, "pads", []) or [])
            out_pad = list(_attr(node, "output_padding", []) or [])
            if any(pads) or any(out_pad):
                out.append(Finding(name, op, "ConvTranspose with padding %s; the DLA needs padding 0 (e.g. "
                                             "kernel 2, stride 2, padding 0)" % (pads or out_pad)))
        elif op == "Concat":
            axis = int(_attr(node, "axis", 1))
            if axis != 1:
                out.append(Finding(name, op, "Concat along axis %d; the DLA concatenates along channels (axis 1) "
                                             "only" % axis))
        elif op in ("Resize", "Upsample"):
            reason = _resize_reason(model, node)
            if reason:
                out.append(Finding(name, op, reason))
    return out


#: DLA INT8 rules on equal ranges, from TensorRT 8.5's include/NvInfer.h: IElementWiseLayer "When running this
#: layer on the DLA with Int8 data type, the dynamic ranges of two input tensors shall be equal" (confirmed);
#: IPoolingLayer "in Int8 mode, the dynamic ranges for input and output tensors must be equal" (confirmed).
#: Concat: the header states only the channel-axis rule; that its INT8 inputs need equal ranges on the DLA is
#: the same rule as ElementWise as PLATFORM.md states it (unconfirmed for Concat), so it is a warning.
EQUAL_INPUTS = {"Add": "confirmed", "Sub": "confirmed", "Mul": "confirmed", "Max": "confirmed",
                "Min": "confirmed", "Sum": "confirmed", "Concat": "unconfirmed for Concat"}
EQUAL_IN_OUT = {"MaxPool": "confirmed", "AveragePool": "confirmed"}
#: Relative difference of two scales that counts as unequal.
SCALE_TOLERANCE = 1e-4


def _unequal(values: List[float]) -> bool:
    return max(values) - min(values) > SCALE_TOLERANCE * max(values)


def scale_findings(model: Any, scales: Dict[str, float]) -> List[Finding]:
    """DLA layers whose INT8 tensors get unequal scales from the calibration cache ``{tensor: scale}``.

    Only layers whose output has a scale are INT8, and only tensors with a scale count. TensorRT then either runs
    the layer with requantization, moves it to the GPU or rejects the build; the report says which rule is
    at stake so that the user can act (a shared range for the inputs, or the layer in FP16).
    """
    out: List[Finding] = []
    for node in model.graph.node:
        name = node.name or (node.output[0] if node.output else node.op_type)
        if node.op_type in EQUAL_INPUTS:
            tensors = [t for t in node.input if t in scales]
            rule, status = "inputs", EQUAL_INPUTS[node.op_type]
        elif node.op_type in EQUAL_IN_OUT:
            tensors = [t for t in list(node.input[:1]) + list(node.output[:1]) if t in scales]
            rule, status = "input and output", EQUAL_IN_OUT[node.op_type]
        else:
            continue
        if not node.output or node.output[0] not in scales:
            continue  # an output without a scale: TensorRT runs the layer in FP16, not INT8
        values = [scales[t] for t in tensors]
        if len(values) >= 2 and _unequal(values):
            pairs = ", ".join("%s %.4g" % (t, v * 127.0) for t, v in zip(tensors, values))
            out.append(Finding(name, node.op_type, "INT8 on the DLA needs equal ranges for the %s (%s); the "
                                                   "cache gives %s" % (rule, status, pairs)))
    return out


def _shared(node: Any) -> List[str]:
    """The tensors of ``node`` that INT8 on the DLA needs on one scale: Concat's inputs and output (its output is
    its inputs side by side), an elementwise layer's inputs, a pooling layer's input and output."""
    if node.op_type == "Concat":
        return list(node.input) + list(node.output[:1])
    if node.op_type in EQUAL_INPUTS:
        return list(node.input)
    if node.op_type in EQUAL_IN_OUT:
        return list(node.input[:1]) + list(node.output[:1])
    return []


def equal_scales(model: Any, scales: Dict[str, float]) -> Dict[str, float]:
    """``scales`` with every group of tensors that must share a scale on the DLA (:func:`_shared`, joined across
    layers: a Concat feeding a pooling layer makes one group) raised to the group's largest scale, so that no
    tensor clips; a layer whose output has no scale runs in FP16 and joins nothing. What
    :func:`scale_findings` then finds is nothing."""
    parent = {t: t for t in scales}

    def root(t: str) -> str:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for node in model.graph.node:
        if not node.output or node.output[0] not in scales:
            continue
        tensors = [t for t in _shared(node) if t in scales]
        for t in tensors[1:]:
            parent[root(t)] = root(tensors[0])
    largest: Dict[str, float] = {}
    for t, value in scales.items():
        largest[root(t)] = max(largest.get(root(t), 0.0), value)
    return {t: largest[root(t)] for t in scales}


@dataclass
class LayerPlacement:
    """Where one TensorRT network layer runs."""

    layer: str
    type: str
    device: str  # "DLA" or "GPU"
    reason: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def network_placement(network: tensorrt.INetworkDefinition, config: tensorrt.IBuilderConfig,
                      findings: Iterable[Finding]) -> List[LayerPlacement]:
    """Ask TensorRT where each layer of ``network`` can run with ``config`` (DLA set as default device).

    Layers on the GPU get the ONNX rule that explains them when one matches (TensorRT names layers after
    the ONNX nodes, sometimes with a suffix), else "TensorRT reports no DLA support for this layer".
    """
    import tensorrt as trt

    reasons = {f.node: f.reason for f in findings}
    rows = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        on_dla = bool(config.can_run_on_DLA(layer))
        if not on_dla:
            config.set_device_type(layer, trt.DeviceType.GPU)
        reason = ""
        if not on_dla:
            reason = next((r for node, r in reasons.items() if layer.name == node or layer.name.startswith(node)),
                          "TensorRT reports no DLA support for this layer with these settings")
        rows.append(LayerPlacement(layer.name, str(layer.type).split(".")[-1], "DLA" if on_dla else "GPU", reason))
    return rows


def format_report(rows: List[LayerPlacement], findings: Optional[List[Finding]] = None) -> List[str]:
    """Human-readable lines of the estimate (before the build): a summary, then each GPU layer with its reason."""
    if not rows and findings is not None:
        lines = ["DLA placement (from the ONNX rules): %d node(s) will run on the GPU" % len(findings)]
        lines += ["  GPU  %-40s %-14s %s" % (f.node, f.op, f.reason) for f in findings]
        return lines
    dla = sum(1 for r in rows if r.device == "DLA")
    lines = ["DLA placement estimate (can_run_on_DLA, before the build): %d of %d layers on the DLA, %d on the "
             "GPU (GPU_FALLBACK)"
             % (dla, len(rows), len(rows) - dla)]
    lines += ["  GPU  %-40s %-14s %s" % (r.layer, r.type, r.reason) for r in rows if r.device == "GPU"]
    return lines
