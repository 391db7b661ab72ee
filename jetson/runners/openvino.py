"""OpenVINO runner: the bundle's model (FP32, OpenVINO's own INT8 IR, or the INT8 Q/DQ ONNX) compiled for the CPU.

An INT8 bundle calibrated with ``--target cpu`` carries OpenVINO's own INT8 model (``model.openvino.xml`` and
``.bin``: NNCF post-training quantization from the same frames, past the same accuracy gate); this runner
prefers it (option ``model``: ``auto``, the default, or ``onnx`` for the Q/DQ ONNX). Otherwise OpenVINO reads the
Q/DQ pairs of an INT8 bundle as its own low-precision graph, so one INT8 ONNX file runs on TensorRT, ONNX
Runtime and here. Loading an IR is reading a model file: nothing in a bundle is imported or run. Options: ``threads`` (inference threads; 0 = jetseg's default, usable
cores - 1 on the CPU device, OpenVINO's own choice on others), ``device`` (``CPU``; other OpenVINO devices
are passed through) and ``precision_hint`` (``f32``, the default, keeps float parts in float32 so that
results match ONNX Runtime: the accuracy reference; ``bf16`` or ``f16`` where the CPU has them; ``auto`` lets
OpenVINO choose, e.g. bf16 on CPUs that have it). What a compiled model really ran in is read back from it
(:func:`executed_precision`), never assumed from the hint.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from jetseg.bundle import OPENVINO_MODEL_FILE, OPENVINO_WEIGHTS_FILE, Bundle, BundleLike, check_shapes
from jetseg.errors import RunnerError
from jetseg.jetson.runners.base import Runner
from jetseg.optional import require
from jetseg.tasks import extra_io


def openvino_core() -> Any:
    """A new ``openvino.Core`` (``openvino.runtime.Core`` before 2023.1), or a RunnerError with the fix."""
    ov = require("openvino", "the openvino backend")
    core_class = getattr(ov, "Core", None)
    if core_class is None:  # OpenVINO 2022.x/2023.0 keep it in openvino.runtime
        core_class = require("openvino.runtime", "the openvino backend").Core
    return core_class()


#: ``precision_hint`` values: OpenVINO's INFERENCE_PRECISION_HINT, or ``auto`` (OpenVINO's choice)
PRECISION_HINTS = ("auto", "f32", "bf16", "f16")
#: ``model`` values: ``auto`` (the bundle's OpenVINO IR when it has one, else model.onnx) or ``onnx``
MODEL_CHOICES = ("auto", "onnx")
#: OpenVINO's element types that mean INT8 execution
INT8_TYPES = ("i8", "u8")


def openvino_reason(exc: BaseException) -> str:
    """The reason in an OpenVINO exception, without its ``Exception from src/...cpp:84:`` location lines
    (the first lines of every message, which used to be all that was reported)."""
    lines = [line.strip() for line in str(exc).splitlines()]
    reason = [line for line in lines if line and not line.startswith("Exception from ")]
    return " ".join(reason) or type(exc).__name__


class OpenVinoRunner(Runner):
    """Runs the bundle's ``model.onnx`` with OpenVINO (one infer request, latency mode, one stream).

    Args:
        bundle: the bundle (or its path).
        batch_size: the largest batch this runner will be given.

    Options:
        threads: inference threads; 0 (default) = jetseg's default: usable cores - 1 (at least 1) on the CPU
            device, OpenVINO's own choice on other devices.
        device: OpenVINO device name (default ``CPU``).
        precision_hint: ``f32`` (default, exact), ``bf16``, ``f16`` or ``auto`` (OpenVINO's choice for the
            device).
        model: ``auto`` (default: the bundle's OpenVINO INT8 IR when its manifest lists one, else model.onnx)
            or ``onnx`` (always model.onnx: the Q/DQ model of an INT8 bundle).
    """

    name = "openvino"

    def __init__(self, bundle: BundleLike, batch_size: int = 1, **options: Any) -> None:
        super().__init__(bundle, batch_size)
        opts = self.read_options(options)
        self.device = str(opts.text("device", "CPU"))
        self.threads = self.read_threads(opts)
        self.precision_hint = opts.choice("precision_hint", list(PRECISION_HINTS), "f32")
        model = opts.choice("model", list(MODEL_CHOICES), "auto")
        opts.done()
        ir = openvino_ir(self.bundle) if model == "auto" else None
        #: the model file compiled: the IR when preferred and present, else model.onnx
        self.model_path = ir if ir is not None else self.bundle.model_path
        self.compiled: Any = None
        self.request: Any = None
        self._output: Any = None
        self._static_batch = 1
        self._output_name = self.spec.output.name

    @property
    def on_cpu(self) -> bool:
        return self.device.upper().startswith("CPU")

    def config(self) -> Dict[str, str]:
        """The compile configuration: latency mode, one stream, and the threads and precision asked for."""
        out = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1"}
        if self.threads:
            out["INFERENCE_NUM_THREADS"] = str(self.threads)
        if self.precision_hint != "auto" and self.on_cpu:
            out["INFERENCE_PRECISION_HINT"] = self.precision_hint
        return out

    def _activate(self) -> None:
        core = openvino_core()
        try:
            model = core.read_model(str(self.model_path))
            self.compiled = core.compile_model(model, self.device, self.config())
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with multi-line messages
            raise RunnerError("OpenVINO cannot load %s on %s: %s" % (self.model_path, self.device,
                                                                     openvino_reason(exc))) from None
        # The bundle checked names and shapes at load when onnx is installed; this is the check without it.
        check_shapes(str(self.bundle.path), _shapes(self.compiled.inputs), _shapes(self.compiled.outputs),
                     self.input_name, self.spec.input_shape, self._output_name, self.spec.output_shape,
                     extra_io(self.spec.registration, self.spec.input_shape))
        self._output = self.compiled.output(self._output_name)
        shape = self.compiled.input(self.input_name).get_partial_shape()
        self._static_batch = shape[0].get_length() if shape[0].is_static else 0
        self.request = self.compiled.create_infer_request()

    def _run(self, feed: Dict[str, np.ndarray]) -> np.ndarray:
        self.request.infer(feed)
        # the request reuses its output buffer: copy before the next call
        return np.array(self.request.get_tensor(self._output).data, dtype=np.float32, copy=True)

    def _infer(self, batch: np.ndarray, extra_inputs: Dict[str, np.ndarray]) -> np.ndarray:
        feed = {self.input_name: batch, **extra_inputs}
        if batch.shape[0] == 1 or self._static_batch != 1:
            return self._run(feed)
        # a model exported with a fixed batch of 1: run the frames one by one
        return np.concatenate([self._run({k: v[i:i + 1] for k, v in feed.items()}) for i in range(batch.shape[0])])

    def _deactivate(self) -> None:
        self.request = None
        self.compiled = None

    def describe(self) -> Dict[str, Any]:
        info = super().describe()
        info.update(device=self.device, threads=self.threads or "default", precision_hint=self.precision_hint,
                    model_file=self.model_path.name)
        info.update(compiled_properties(self.compiled))
        return info


def openvino_ir(bundle: Bundle) -> Optional[Path]:
    """The bundle's OpenVINO INT8 IR (``model.openvino.xml``) when its manifest lists it and its ``.bin`` (the
    bundle verified both), else None."""
    listed = all(name in bundle.manifest.files for name in (OPENVINO_MODEL_FILE, OPENVINO_WEIGHTS_FILE))
    return bundle.file(OPENVINO_MODEL_FILE) if listed else None


def cpu_float_precisions() -> List[str]:
    """Reduced float precisions OpenVINO's CPU plugin offers here (``bf16``, ``f16``), from its
    OPTIMIZATION_CAPABILITIES; empty without OpenVINO's CPU device."""
    caps = openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return [hint for hint, cap in (("bf16", "BF16"), ("f16", "FP16")) if cap in caps]


def executed_precision(compiled: Any) -> Optional[str]:
    """What a compiled model runs in, read from its runtime model: ``int8`` when any layer runs in i8/u8, else
    ``bf16`` or ``f16`` when any layer runs in it (the convolutions do; reorders and the output stay f32), else
    ``f32``; None when OpenVINO does not say."""
    try:
        ops = compiled.get_runtime_model().get_ops()
    except Exception:  # a device without a runtime model: the report says "unknown"
        return None
    counts: Counter = Counter()
    for op in ops:
        info = op.get_rt_info()
        if "runtimePrecision" in info:
            value = info["runtimePrecision"]
            counts[value.astype(str) if hasattr(value, "astype") else str(value)] += 1
    if any(counts[t] for t in INT8_TYPES):
        return "int8"
    for reduced in ("bf16", "f16"):
        if counts[reduced]:
            return reduced
    return "f32" if counts["f32"] else None


def compiled_properties(compiled: Any) -> Dict[str, Any]:
    """Threads, the inference precision hint and the precision a compiled model really runs in
    (``ran_in``: :func:`executed_precision`) for reports; empty when unknown."""
    out: Dict[str, Any] = {}
    if compiled is None:
        return out
    ran_in = executed_precision(compiled)
    if ran_in is not None:
        out["ran_in"] = ran_in
    for key, prop in (("threads_used", "INFERENCE_NUM_THREADS"), ("inference_precision", "INFERENCE_PRECISION_HINT")):
        try:
            value = compiled.get_property(prop)
        except Exception:  # a device without that property: leave it out of the report
            continue
        # an element type (f32, bf16) by its short name
        out[key] = value.get_type_name() if hasattr(value, "get_type_name") else str(value)
    return out


def _shapes(ports: Any) -> Dict[str, Any]:
    """Compiled-model ports as ``{name: [dims, None where dynamic]}`` (None for a dynamic rank), every name of
    a port included."""
    out: Dict[str, Any] = {}
    for port in ports:
        shape = port.get_partial_shape()
        dims = None if shape.rank.is_dynamic else [d.get_length() if d.is_static else None for d in shape]
        out.update((name, dims) for name in port.get_names())
    return out
