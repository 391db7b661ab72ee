"""Where TensorRT actually put each layer: read back from the built engine with the engine inspector.

``config.can_run_on_DLA`` before the build is an estimate; the engine says what TensorRT decided. The builder
sets ``config.profiling_verbosity = ProfilingVerbosity.DETAILED`` and this module reads
``engine.create_engine_inspector().get_engine_information(LayerInformationFormat.JSON)`` (TensorRT 8.5
``python/src/infer/pyCore.cpp``; ``pyCoreDoc.h``: with DETAILED "layer names and layer parameters will be
printed", by default LAYER_NAMES_ONLY "only layer names").

The JSON, as TensorRT 8.5's engine explorer reads it (``tools/experimental/trt-engine-explorer/trex/parser.py``
and its example ``*.engine.graph.json``): ``{"Layers": [...], "Bindings": [...]}``, each layer a dict with
``Name``, ``LayerType``, ``Inputs``, ``Outputs`` ... when DETAILED, a plain string (the name) otherwise.
GPU layers fused by TensorRT are named ``A + B + C``; a DLA subgraph is one layer named
``{ForeignNode[first...last]}`` (TensorRT's build log lists them as ``[DlaLayer] {ForeignNode[...]}``,
samples/sampleCudla/README.md), next to glue layers such as ``input to nvm`` / ``output from nvm`` /
``... copy finish`` (NVIDIA/TensorRT#3143). Myelin subgraphs on the GPU are also ``ForeignNode`` names but
have ``LayerType`` ``Myelin`` (trex's colour table); the ``LayerType`` of a DLA node is not documented, so it
is not relied on. Which network layers a ``ForeignNode[first...last]`` holds is derived from the network's
layer order (the first to the last named layer), also not documented.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from jetseg.engines.placement import LayerPlacement

_FOREIGN = re.compile(r"^\{ForeignNode\[(.*)\]\}$")
_GLUE = re.compile(r"( to nvm| from nvm| copy finish)$|^Reformatting CopyNode")


@dataclass
class EngineLayer:
    """One layer of the built engine."""

    name: str
    type: str
    device: str  # "DLA", "GPU" or "glue" (DLA data movement and reformats)
    members: List[str] = field(default_factory=list)  # the network layer names it names

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def parse(info: str) -> List[EngineLayer]:
    """The engine's layers from ``get_engine_information(LayerInformationFormat.JSON)``.

    Raises:
        ValueError: ``info`` is not JSON (the format of a DLA engine's information is undocumented).
    """
    data = json.loads(info)
    out = []
    for raw in data.get("Layers", []) if isinstance(data, dict) else []:
        if not isinstance(raw, (str, dict)):
            continue
        name = raw if isinstance(raw, str) else str(raw.get("Name", ""))
        kind = "" if isinstance(raw, str) else str(raw.get("LayerType", ""))
        foreign = _FOREIGN.match(name)
        if foreign and kind != "Myelin":
            out.append(EngineLayer(name, kind, "DLA", foreign.group(1).split("...")))
        elif _GLUE.search(name) or kind == "Reformat":
            out.append(EngineLayer(name, kind, "glue"))
        else:
            members = foreign.group(1).split("...") if foreign else [m.strip() for m in name.split(" + ")]
            out.append(EngineLayer(name, kind, "GPU", members))
    return out


def read_engine(engine: Any, trt: Any) -> Tuple[List[EngineLayer], Optional[str], str]:
    """``(layers, None, raw)`` from a deserialized engine, or ``([], why, raw)`` when the inspector gives
    nothing usable: a finished engine is never lost over its description (``raw``: the inspector's text, kept
    in build.json for a maintainer)."""
    inspector = engine.create_engine_inspector()
    if inspector is None:
        return [], "TensorRT returned no engine inspector", ""
    try:
        raw = inspector.get_engine_information(trt.LayerInformationFormat.JSON) or ""
    except (RuntimeError, TypeError, ValueError) as exc:
        return [], "the engine inspector failed: %s" % exc, ""
    try:
        layers = parse(raw or "{}")
    except ValueError as exc:
        return [], "the engine inspector's output is not JSON (%s); its text is kept as inspector_raw" % exc, raw
    if not layers:
        return [], "the engine inspector listed no layers", raw
    return layers, None, raw


def unknown_placement(estimate: Sequence[LayerPlacement]) -> List[LayerPlacement]:
    """Each network layer of ``estimate`` on device ``unknown`` (the engine could not say where it is)."""
    return [LayerPlacement(row.layer, row.type, "unknown", "") for row in estimate]


def actual_placement(estimate: Sequence[LayerPlacement], layers: Sequence[EngineLayer]) -> List[LayerPlacement]:
    """Each network layer of ``estimate`` (network order) with the device the engine put it on.

    A layer named in a GPU engine layer is on the GPU; a layer from the first to the last name of a DLA
    ``ForeignNode`` is on the DLA; anything else (removed or merged by TensorRT) is ``?``.
    """
    order = {row.layer: i for i, row in enumerate(estimate)}
    device: Dict[str, str] = {}
    for layer in layers:
        if layer.device == "DLA":
            ends = [order[m] for m in (layer.members[0], layer.members[-1]) if m in order]
            if ends:
                for row in estimate[min(ends):max(ends) + 1]:
                    device.setdefault(row.layer, "DLA")
        elif layer.device == "GPU":
            for member in layer.members:
                device[member] = "GPU"
    return [LayerPlacement(row.layer, row.type, device.get(row.layer, "?"),
                           row.reason if device.get(row.layer) == "GPU" else "") for row in estimate]


def format_actual(layers: Sequence[EngineLayer], rows: Sequence[LayerPlacement]) -> List[str]:
    """Report lines of what TensorRT decided, and where it differs from the estimate (``rows`` estimate order)."""
    dla = [x for x in layers if x.device == "DLA"]
    gpu = [x for x in layers if x.device == "GPU"]
    lines = ["DLA placement in the built engine (engine inspector): %d DLA subgraph(s), %d GPU layer(s)"
             % (len(dla), len(gpu))]
    lines += ["  DLA  %s" % x.name for x in dla]
    lines += ["  GPU  %-40s %s" % (x.name, x.type) for x in gpu]
    return lines


def differences(estimate: Sequence[LayerPlacement], actual: Sequence[LayerPlacement]) -> List[str]:
    """Lines naming the layers whose device differs between the estimate and the engine."""
    out = []
    for before, after in zip(estimate, actual):
        if after.device != "?" and before.device != after.device:
            out.append("  %s: estimated %s, built on the %s" % (before.layer, before.device, after.device))
    if out:
        out.insert(0, "DLA placement: %d layer(s) differ from the estimate" % len(out))
    return out
