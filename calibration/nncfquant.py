"""OpenVINO's own INT8 for ``--target cpu``: NNCF post-training quantization to an OpenVINO IR.

On an x86 CPU with VNNI the Q/DQ ONNX of a cpu-target bundle, read by OpenVINO, is barely faster than OpenVINO's
bf16 float (issue 22); OpenVINO's own INT8, made by NNCF (``nncf.quantize``) from the same model, is faster. This
module makes that model from the SAME calibration frames (preprocessed by calibration/scans.py exactly as at run
time), passes it through the SAME accuracy gate (:class:`~jetseg.calibration.gate.Gate`: Dice vs FP32 on the
held-out and the bench frames) with the same layer fallback (NNCF's ``IgnoredScope`` keeps the most harmful
layers in float, one more per round), and keeps it only when it is not slower than the Q/DQ model on OpenVINO.

The kept IR goes into the bundle as ``model.openvino.xml`` and ``.bin`` (covered by the manifest); the openvino
runner prefers it, ONNX Runtime keeps the Q/DQ ONNX. nncf and openvino are imported here only, when used; without
them (a Jetson, the JetPack 5 twin) the bundle has the Q/DQ ONNX only and calibration.json says why.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from jetseg.bundle import OPENVINO_MODEL_FILE, OPENVINO_WEIGHTS_FILE, staged_bundle
from jetseg.calibration.gate import Gate, fall_back, rank_layers
from jetseg.calibration.speedcheck import time_rows
from jetseg.optional import available, require
from jetseg.spec import Spec

log = logging.getLogger("jetseg.calibration")

#: OpenVINO operations NNCF quantizes whose names the fallback may keep in float
LAYER_TYPES = ("Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul")
#: how OpenVINO names an operation it made itself (``<Type>_<counter>``)
_AUTO_NAME = re.compile(r"^[A-Za-z]+_\d+$")
#: The IR is kept unless the Q/DQ model on OpenVINO is faster by more than this factor (timing noise)
SLOWER_TOLERANCE = 1.05


@dataclass
class OpenVinoInt8:
    """The outcome: ``record`` for calibration.json (``CalibrationRecord.openvino``) and ``files`` for the
    bundle (``{bundle name: path}``, empty when the IR is not kept)."""

    record: Dict[str, Any]
    files: Dict[str, Path] = field(default_factory=dict)


def missing() -> Optional[str]:
    """Why OpenVINO's INT8 cannot be made here (``nncf`` or ``openvino`` not installed), or None."""
    absent = [name for name in ("openvino", "nncf") if not available(name)]
    if absent:
        return "%s not installed (pip install 'jetseg[openvino]'; x86 hosts only)" % " and ".join(absent)
    return None


def read_model(model_path: Path) -> Any:
    """The OpenVINO model of ``model_path`` with stable layer names: OpenVINO names an operation it adds while
    reading an ONNX file (a ConvTranspose becomes ``ConvolutionBackpropData_<n>``) from a counter that differs
    between reads, so such a layer is renamed ``<type>#<k>`` (its place among the layers of its type, graph
    order): the fallback's ignored scope names the same layer in every attempt."""
    from jetseg.jetson.runners.openvino import openvino_core

    model = openvino_core().read_model(str(model_path))
    seen: Dict[str, int] = {}
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind in LAYER_TYPES:
            seen[kind] = seen.get(kind, -1) + 1
            if _AUTO_NAME.match(op.get_friendly_name()):
                op.set_friendly_name("%s#%d" % (kind, seen[kind]))
    return model


def quantizable_layers(model_path: Path) -> List[str]:
    """Names of the OpenVINO operations of ``model_path`` NNCF quantizes (:data:`LAYER_TYPES`), graph order."""
    return [op.get_friendly_name() for op in read_model(model_path).get_ordered_ops()
            if op.get_type_name() in LAYER_TYPES]


def quantize_ir(model_path: Path, frames: Sequence[np.ndarray], out_xml: Path, ignored: Sequence[str] = (),
                progress: bool = False) -> Path:
    """NNCF post-training quantization of the FP32 ONNX ``model_path`` on ``frames`` (preprocessed model inputs),
    the layers ``ignored`` kept in float; writes the IR ``out_xml`` (and its ``.bin``) and returns it."""
    nncf = require("nncf", "OpenVINO's INT8 (calibrate --target cpu)")
    ov = require("openvino", "OpenVINO's INT8 (calibrate --target cpu)")
    logging.getLogger("nncf").setLevel(logging.INFO if progress else logging.WARNING)
    model = read_model(model_path)
    scope = nncf.IgnoredScope(names=list(ignored)) if ignored else None
    quantized = nncf.quantize(model, nncf.Dataset(list(frames)), subset_size=len(frames), ignored_scope=scope)
    ov.save_model(quantized, str(out_xml), compress_to_fp16=False)
    return Path(out_xml)


def calibrate_openvino(prepared: Path, frames: Sequence[np.ndarray], gate: Gate, qdq: Path, work: Path,
                       max_fallback: int, progress: bool = False) -> OpenVinoInt8:
    """OpenVINO's INT8 of ``prepared`` (the prepared FP32 ONNX) on the calibration ``frames``, gated by ``gate``;
    kept when it passes and is not slower than the accepted Q/DQ model ``qdq`` on OpenVINO.

    A missing nncf/openvino, a failed gate or a slower IR is not an error: the Q/DQ model passed and ships; the
    record says why the IR did not, and the log says it once.
    """
    reason = missing()
    if reason:
        log.info("OpenVINO's own INT8 not made: %s", reason)
        return OpenVinoInt8({"model": None, "kept": False, "why": reason})
    nncf = require("nncf", "OpenVINO's INT8 (calibrate --target cpu)")
    ov = require("openvino", "OpenVINO's INT8 (calibrate --target cpu)")
    xml = work / OPENVINO_MODEL_FILE

    def attempt(exclude: List[str]) -> Dict[str, Any]:
        quantize_ir(prepared, frames, xml, exclude, progress)
        result = gate.score(xml)
        log.info("gate (OpenVINO INT8): %s (%s, %d layer(s) in float) -> %s", gate.describe(result),
                 gate.limits(), len(exclude), "pass" if result["passed"] else "fail")
        return result

    def rank() -> List[Dict[str, Any]]:
        layers = quantizable_layers(prepared)
        return rank_layers(gate, layers, lambda name, path: quantize_ir(
            prepared, frames, path, [other for other in layers if other != name]), progress=progress, suffix=".xml")

    done = fall_back(attempt, rank, max_fallback)
    record: Dict[str, Any] = {
        "model": None, "weights": None, "kept": False, "by": "nncf.quantize (post-training, defaults)",
        "versions": {"nncf": str(nncf.__version__), "openvino": str(ov.get_version())},
        "calibration_frames": len(frames), "ignored_scope": list(done.exclude),
        "gate": dict(gate.record(done.final), passed=bool(done.final["passed"]), result=done.final,
                     attempts=done.history, sensitivity=done.ranking or [])}
    if not done.final["passed"]:
        record["why"] = ("fails the accuracy gate: %s with %d layer(s) in float"
                         % (gate.failure(done.final)[0], len(done.exclude)))
        log.warning("OpenVINO's own INT8 not kept: it %s; the openvino backend runs the Q/DQ model", record["why"])
        return OpenVinoInt8(record)
    files = {OPENVINO_MODEL_FILE: xml, OPENVINO_WEIGHTS_FILE: xml.with_suffix(".bin")}
    speed = _speed(qdq, gate.spec, files, frames[0], work)
    record["speed"] = speed
    if speed["nncf_vs_qdq"] * SLOWER_TOLERANCE < 1.0:
        record["why"] = ("slower than the Q/DQ model on OpenVINO (%.2f ms vs %.2f ms)"
                         % (speed["ms"]["nncf"], speed["ms"]["qdq"]))
        log.warning("OpenVINO's own INT8 not kept: it is %s", record["why"])
        return OpenVinoInt8(record)
    record.update(model=OPENVINO_MODEL_FILE, weights=OPENVINO_WEIGHTS_FILE, kept=True,
                  why="passed the gate; %.2fx the Q/DQ model on OpenVINO" % speed["nncf_vs_qdq"])
    return OpenVinoInt8(record, files)


def _speed(qdq: Path, spec: Spec, files: Dict[str, Path], frame: np.ndarray, work: Path) -> Dict[str, Any]:
    """The IR against the Q/DQ model, both through the openvino runner (OpenVINO's own float precision for
    the float parts, as ``jetseg calibrate``'s speed check), interleaved on one frame."""
    extra: Dict[str, Any] = dict(files)
    with staged_bundle(qdq, spec, precision="int8", extra_files=extra, parent=work, prefix="speed-") as both:
        ms, _ = time_rows([("qdq", both, "openvino", {"precision_hint": "auto", "model": "onnx"}),
                           ("nncf", both, "openvino", {"precision_hint": "auto"})], frame)
    return {"ms": {k: round(v, 3) for k, v in ms.items()}, "nncf_vs_qdq": round(ms["qdq"] / ms["nncf"], 3)}
