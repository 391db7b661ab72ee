"""Explicit INT8: calibration statistics and Q/DQ quantization with ONNX Runtime's quantization tools.

Two steps, so that the accuracy gate can re-quantize cheaply with different layers kept in float:

1. :func:`compute_ranges` runs the (prepared) FP32 model over the curated, preprocessed frames once and
   returns the per-tensor ranges (``entropy``, ``minmax`` or ``percentile``).
2. :func:`quantize` writes a Q/DQ model from those ranges for a target:

   - ``tensorrt``: TensorRT's explicit-quantization rules: int8 activations and weights, zero-point 0
     (symmetric), per-channel scales for weights only (ConvTranspose on axis 0), per-tensor activations,
     float biases, Q/DQ on the inputs of weighted layers only (NVIDIA's recommended placement). Weights stay
     float initializers feeding a QuantizeLinear -> DequantizeLinear pair (ONNX Runtime's
     ``AddQDQPairToWeight``): onnx-tensorrt 8.5 turns an INT8 initializer into an INT8 constant, which
     TensorRT 8.x rejects ("invalid weights type of Int8", NVIDIA/TensorRT#2163); the pair parses on 8.5 to 10.x.
   - ``cpu``: what ONNX Runtime's CPU kernels run fastest: uint8 activations (asymmetric), int8
     per-channel weights, int32 biases, Q/DQ around every supported operator (fused to QLinearConv & co), in
     the graph form of :mod:`.cpulayout`: a 2x2/stride-2 ConvTranspose becomes a 1x1 Conv and a pixel shuffle
     (ONNX Runtime has no INT8 ConvTranspose), and the layers INT8 only slows down there stay float
     (:func:`~.cpulayout.cpu_float_nodes`: another ConvTranspose, a Conv reading at most 3 channels).

Every model is first *prepared* (:func:`prepare_model`): ONNX Runtime's basic graph optimisations (constant
folding, Conv+BatchNorm fusion) and shape inference. Calibration ranges, the TensorRT calibration cache
and the quantized model all refer to the prepared model's tensor names.
"""
from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from jetseg.calibration.cpulayout import cpu_float_nodes, shuffle_upsampling
from jetseg.calibration.ortquiet import quiet_onnxruntime
from jetseg.errors import DependencyError, JetsegError
from jetseg.onnxgraph import dims
from jetseg.optional import require

log = logging.getLogger("jetseg.calibration")

METHODS = ("entropy", "minmax", "percentile")
TARGETS = ("tensorrt", "cpu")
#: Operators whose weights and inputs are quantized for TensorRT (Q/DQ on their inputs only).
TRT_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
#: The oldest ONNX Runtime jetseg calibrates with: 1.19.2 is the newest onnxruntime with a cp38 aarch64 wheel
#: (JetPack 5) and is what the JetPack 5 twin (./setup.sh test-jetpack5) tests; x86 tests the newest release.
MIN_ORT = "1.19"
#: The newest ONNX Runtime jetseg's calibration has been tested with.
MAX_TESTED_ORT = "1.32"

#: Frames per collect_data call of ONNX Runtime's calibrators (bounds their memory).
CHUNK = 8

Ranges = Dict[str, Tuple[float, float]]


def _ort_quantization() -> Any:
    ort = require("onnxruntime", "INT8 calibration")
    from packaging.version import Version

    if Version(ort.__version__.split("+")[0]) < Version(MIN_ORT):
        raise DependencyError("onnxruntime %s is too old for calibration; expected >= %s (pip install -U "
                              "onnxruntime)" % (ort.__version__, MIN_ORT))
    return require("onnxruntime.quantization", "INT8 calibration")


class FrameReader:
    """ONNX Runtime CalibrationDataReader over preprocessed ``(1, C, H, W) float32`` frames (or, for a model with
    several inputs such as registration's moving + fixed, items that map each input name to its frame).

    Built as a subclass of ONNX Runtime's reader class at first use (onnxruntime is imported lazily).
    """

    def __new__(cls, input_name: str, frames: Sequence[Any], progress: Any = None) -> Any:
        q = _ort_quantization()

        reader_base: Any = q.CalibrationDataReader

        class _Reader(reader_base):
            def __init__(self) -> None:
                self.frames = list(frames)
                self.pos = 0

            def get_next(self) -> Optional[Dict[str, np.ndarray]]:
                if self.pos >= len(self.frames):
                    return None
                frame = self.frames[self.pos]
                feeds = frame if isinstance(frame, dict) else {input_name: frame}
                item = {name: np.ascontiguousarray(x, dtype=np.float32) for name, x in feeds.items()}
                self.pos += 1
                if progress is not None:
                    progress.update(1)
                return item

            def rewind(self) -> None:
                self.pos = 0

            def __len__(self) -> int:
                return len(self.frames)

        return _Reader()


def io_signature(model: Any) -> Dict[str, Any]:
    """``{"inputs": {name: shape}, "outputs": {name: shape}}`` of a ModelProto (a symbolic dim by its name,
    :func:`jetseg.onnxgraph.dims`)."""
    inits = {i.name for i in model.graph.initializer}
    return {"inputs": {i.name: dims(i) for i in model.graph.input if i.name not in inits},
            "outputs": {o.name: dims(o) for o in model.graph.output}}


def strip_unused_domains(model: Any) -> bool:
    """Drop opset imports of domains no node uses (ONNX Runtime's optimizer lists all it knows); True if any."""
    used = {n.domain or "" for n in model.graph.node}
    keep = [o for o in model.opset_import if (o.domain or "") in used or o.domain in ("", "ai.onnx")]
    if len(keep) == len(model.opset_import):
        return False
    del model.opset_import[:]
    model.opset_import.extend(keep)
    return True


def prepare_model(src: Path, dst: Path) -> None:
    """Write the model with ONNX Runtime's basic optimisations applied (BN folded into Conv) to ``dst``."""
    onnx = require("onnx", "INT8 calibration")
    q = _ort_quantization()
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        with quiet_onnxruntime():
            quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
    except Exception as exc:  # ONNX Runtime's optimizer and ONNX's checker raise assorted types
        raise JetsegError("cannot prepare %s for quantization: %s; check that it loads in ONNX Runtime"
                          % (src, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)) from None
    model = onnx.load(str(dst))
    if strip_unused_domains(model):
        onnx.save(model, str(dst))
    before, after = io_signature(onnx.load(str(src))), io_signature(model)
    if before != after:  # pragma: no cover - ONNX Runtime keeps graph inputs and outputs
        raise JetsegError("preparing the model changed its inputs/outputs %s -> %s" % (before, after))
    del q


def compute_ranges(model_path: Path, input_name: str, frames: Sequence[Any], method: str,
                   work_dir: Path, progress: bool = True) -> Any:
    """Run the prepared FP32 model over ``frames`` and return ONNX Runtime's ``TensorsData`` (per-tensor ranges).

    Args:
        model_path: the prepared FP32 model.
        input_name: the model's input.
        frames: preprocessed frames ``(1, C, H, W) float32`` (or ``{input name: frame}`` items: two-input models).
        method: ``entropy`` (KL divergence, as TensorRT's EntropyCalibrator2), ``minmax`` or ``percentile``
            (99.999th percentile of |x|).
        work_dir: where ONNX Runtime may write its augmented model.
    """
    if method not in METHODS:
        raise JetsegError("calibration method %r is unknown; expected one of %s" % (method, ", ".join(METHODS)))
    q = _ort_quantization()
    calib = require("onnxruntime.quantization.calibrate", "INT8 calibration")
    cmethod = {"entropy": q.CalibrationMethod.Entropy, "minmax": q.CalibrationMethod.MinMax,
               "percentile": q.CalibrationMethod.Percentile}[method]
    tqdm = require("tqdm", "progress bars").tqdm
    frames = list(frames)
    # ONNX Runtime's calibrators print() their progress and log warnings: to DEBUG (-v), stdout is for results
    with quiet_onnxruntime(), tqdm(total=len(frames), desc="calibrating", unit="frame",
                                   disable=None if progress else True, leave=False) as bar:
        calibrator = calib.create_calibrator(Path(model_path), [],
                                             augmented_model_path=str(Path(work_dir) / "augmented.onnx"),
                                             calibrate_method=cmethod)
        # In chunks: ONNX Runtime holds every intermediate tensor of a collect_data call in memory (GBs for
        # 64 frames of a U-Net); its collectors merge statistics across calls.
        for start in range(0, len(frames), CHUNK):
            calibrator.collect_data(FrameReader(input_name, frames[start:start + CHUNK], bar))
        data = calibrator.compute_data()
    del calibrator
    return data


def ranges_of(tensors_data: Any) -> Ranges:
    """``{tensor: (low, high)}`` as plain floats from ONNX Runtime's TensorsData."""
    out: Ranges = {}
    for name, item in tensors_data.data.items():
        low, high = item.range_value if hasattr(item, "range_value") else item
        out[name] = (float(np.asarray(low).min()), float(np.asarray(high).max()))
    return out


def quantizable_nodes(model: Any, target: str) -> List[str]:
    """Names of the nodes the target quantizes (candidates for keeping in float), in graph order."""
    ops = set(TRT_OPS) if target == "tensorrt" else set(_cpu_op_types())
    kept = set(cpu_float_nodes(model)) if target == "cpu" else set()
    return [n.name for n in model.graph.node if n.op_type in ops and n.name and n.name not in kept]


def _cpu_op_types() -> List[str]:
    _ort_quantization()
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return sorted(set(QLinearOpsRegistry) | set(QDQRegistry))


def _settings(q: Any, model: Any, target: str) -> Dict[str, Any]:
    if target == "tensorrt":
        inits = {i.name: i for i in model.graph.initializer}
        overrides = {}
        for node in model.graph.node:
            # ONNX Runtime puts per-channel ConvTranspose weights on axis 1; TensorRT needs axis 0.
            if node.op_type == "ConvTranspose" and len(node.input) > 1 and node.input[1] in inits:
                overrides[node.input[1]] = [{"axis": 0}]
        return dict(per_channel=True, reduce_range=False, weight_type=q.QuantType.QInt8,
                    activation_type=q.QuantType.QInt8, op_types=list(TRT_OPS),
                    extra={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                           "AddQDQPairToWeight": True,
                           "QDQDisableWeightAdjustForInt32Bias": True,
                           "OpTypesToExcludeOutputQuantization": list(TRT_OPS),
                           "TensorQuantOverrides": overrides})
    if target == "cpu":
        return dict(per_channel=True, reduce_range=False, weight_type=q.QuantType.QInt8,
                    activation_type=q.QuantType.QUInt8, op_types=None, extra={})
    raise JetsegError("target %r is unknown; expected one of %s" % (target, ", ".join(TARGETS)))


def _update_opset(qu: Any, model: Any, weight_type: Any) -> Any:
    """ONNX Runtime >= 1.23 wants the caller to raise the opset for the quantization types first
    (``quant_utils.update_opset_version``); before 1.23 that function does not exist and the quantizer's own
    ``check_opset_version`` does it. jetseg quantizes to int8 at opset 13-17, where both leave the model as is."""
    update = getattr(qu, "update_opset_version", None)
    return update(model, weight_type) if update is not None else model


def quantize(model_path: Path, out_path: Path, tensors_data: Any, target: str,
             exclude: Sequence[str] = (), only: Optional[Sequence[str]] = None) -> None:
    """Write a Q/DQ INT8 model for ``target`` from precomputed ranges.

    Args:
        model_path: the prepared FP32 model (the one the ranges were computed on).
        out_path: where to write the quantized model.
        tensors_data: :func:`compute_ranges`' result.
        target: ``tensorrt`` or ``cpu``.
        exclude: nodes kept in float: no Q/DQ is inserted for them.
        only: quantize only these nodes (the sensitivity analysis); None = every quantizable node.
    """
    q = _ort_quantization()
    qu = require("onnxruntime.quantization.quant_utils", "INT8 calibration")
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer

    with quiet_onnxruntime():
        model = qu.load_model_with_shape_infer(Path(model_path))
    s = _settings(q, model, target)
    if target == "cpu":
        exclude = list(exclude) + [n for n in cpu_float_nodes(model) if n not in exclude]
        tensors_data, shuffled = shuffle_upsampling(model, tensors_data, keep=exclude)
        if shuffled:  # the quantizer reads the new tensors' types from the inferred shapes
            model = require("onnx", "INT8 calibration").shape_inference.infer_shapes(model)
    if only:
        # Alone, ops such as MaxPool or Concat are quantized only when their input already is; force them,
        # so that the sensitivity analysis sees their own damage.
        s["extra"] = dict(s["extra"], ForceQuantizeNoInputCheck=True)
    op_types = s["op_types"] or _cpu_op_types()
    model = _update_opset(qu, model, s["weight_type"])
    args = {"model": model, "per_channel": s["per_channel"], "reduce_range": s["reduce_range"],
            "weight_qType": s["weight_type"], "activation_qType": s["activation_type"],
            "tensors_range": tensors_data, "nodes_to_quantize": list(only or []),
            "nodes_to_exclude": list(exclude), "op_types_to_quantize": op_types, "extra_options": s["extra"]}
    params = inspect.signature(QDQQuantizer.__init__).parameters
    missing = [p for p in params if p != "self" and p not in args and params[p].default is inspect.Parameter.empty]
    if missing:  # pragma: no cover - depends on the installed onnxruntime
        raise DependencyError("this onnxruntime's QDQQuantizer wants %s; jetseg supports onnxruntime %s to %s"
                              % (", ".join(missing), MIN_ORT, MAX_TESTED_ORT))
    with quiet_onnxruntime():
        quantizer = QDQQuantizer(**{k: v for k, v in args.items() if k in params})
        quantizer.quantize_model()
    strip_unused_domains(quantizer.model.model)
    quantizer.model.save_model_to_file(str(out_path), False)
