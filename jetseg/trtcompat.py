"""Every TensorRT version decision in one place (8.5 on Xavier, 8.6 / 10.x on Orin, 11.x later).

Versions are compared with :mod:`packaging.version`, never as strings (``"10.0" >= "5.1"`` is False as
strings). The rest of jetseg asks :func:`features` what the installed TensorRT can do instead of testing
version numbers itself, so a wrong fact about one release is fixed here and nowhere else.

The facts (from /work/shared/PLATFORM.md):

* ``NetworkDefinitionCreationFlag.EXPLICIT_BATCH``: required before 10, ignored in 10, removed in 11.
* ``BuilderFlag.FP16`` / ``INT8``: present in 8.x and 10.x (deprecated from 10.12), removed in 11
  (strong typing: the precision comes from the network itself).
* Implicit INT8 calibration (``IInt8EntropyCalibrator2``, ``config.int8_calibrator``): deprecated in 10.1,
  removed in 11.
* ``IProgressMonitor`` (build progress callbacks): TensorRT 10 and later.

This module imports ``tensorrt`` only inside :func:`load`; it never needs a GPU.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from packaging.version import InvalidVersion, Version

from jetseg.errors import DependencyError, DeviceError, JetsegError

if TYPE_CHECKING:  # typings/tensorrt (a checked subset of tensorrt-stubs)
    import tensorrt

#: Engine precisions (``jetseg build --precision``, the trt runner's ``precision`` option, device keys).
PRECISIONS = ("fp32", "fp16", "int8")
#: The TensorRT of JetPack 5.1.x (Jetson AGX Xavier): calibration caches and Q/DQ checks are for it by default.
DEFAULT_TRT_VERSION = "8.5.2"
#: The newest default-domain ONNX opset the ONNX parser of TensorRT 8.5 reads; jetseg exports at this opset.
MAX_OPSET = 17

#: How to get TensorRT; shown whenever it is missing.
INSTALL_HINT = ("TensorRT comes with JetPack (apt package python3-libnvinfer); on the Jetson run ./setup.sh, "
                "which makes a venv with --system-site-packages so the JetPack bindings are visible")


def parse_version(text: Any) -> Version:
    """``"8.5.2.2"`` -> ``Version("8.5.2.2")``; raises a JetsegError for anything that is not a version."""
    try:
        return Version(str(text).strip())
    except InvalidVersion:
        raise JetsegError("%r is not a TensorRT version; expected something like 8.5.2 or 10.3.0" % (text,)) from None


def at_least(version: Any, minimum: str) -> bool:
    """True when ``version`` >= ``minimum``, compared as versions (``at_least("10.0", "5.1")`` is True)."""
    return parse_version(version) >= parse_version(minimum)


def short_version(version: Any) -> str:
    """Major.minor.patch as used in device keys: ``"8.5.2.2"`` -> ``"8.5.2"``, ``"10.3"`` -> ``"10.3.0"``."""
    parts = list(parse_version(version).release) + [0, 0, 0]
    return "%d.%d.%d" % tuple(parts[:3])


@dataclass(frozen=True)
class Features:
    """What one TensorRT version offers, as far as jetseg cares.

    Attributes:
        version: the full version string.
        major: the major version.
        explicit_batch_flag: pass ``EXPLICIT_BATCH`` to ``create_network`` (only before 10).
        precision_flags: ``BuilderFlag.FP16`` / ``INT8`` exist (before 11).
        precision_flags_deprecated: they exist but are deprecated (10.12 and later 10.x).
        implicit_calibration: the calibrator API exists (before 11); needed for DLA INT8.
        implicit_calibration_deprecated: it exists but is deprecated (10.1 and later 10.x).
        progress_monitor: ``IProgressMonitor`` exists (10 and later).
        strongly_typed_only: every network is strongly typed (11 and later): FP16 needs an FP16 model.
    """

    version: str
    major: int
    explicit_batch_flag: bool
    precision_flags: bool
    precision_flags_deprecated: bool
    implicit_calibration: bool
    implicit_calibration_deprecated: bool
    progress_monitor: bool
    strongly_typed_only: bool

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def features(version: Any) -> Features:
    """The feature decisions for TensorRT ``version`` (a string such as ``"8.5.2.2"``)."""
    v = parse_version(version)
    major = v.release[0]
    return Features(
        version=str(version),
        major=major,
        explicit_batch_flag=major < 10,
        precision_flags=major < 11,
        precision_flags_deprecated=major == 10 and v >= Version("10.12"),
        implicit_calibration=major < 11,
        implicit_calibration_deprecated=major == 10 and v >= Version("10.1"),
        progress_monitor=major >= 10,
        strongly_typed_only=major >= 11,
    )


# ---------------------------------------------------------------------------------------------- loading
def installed_version() -> Optional[str]:
    """The version of a real TensorRT installation, or None (the stubs' namespace package does not count)."""
    from jetseg.optional import available

    if not available("tensorrt"):
        return None
    import tensorrt

    version = getattr(tensorrt, "__version__", None)
    return str(version) if version else None


def load(purpose: str = "building and running TensorRT engines") -> ModuleType:
    """Import the real ``tensorrt`` module or raise a DeviceError that says how to get it."""
    from jetseg.optional import available

    if not available("tensorrt"):
        raise DeviceError("TensorRT is not installed on this machine (needed for %s); %s. On a machine "
                          "without an NVIDIA GPU use the onnxrt backend instead" % (purpose, INSTALL_HINT))
    import tensorrt

    if not getattr(tensorrt, "__version__", None):
        raise DependencyError("the tensorrt module at %s has no __version__: it is not a TensorRT installation "
                              "(type stubs?); %s" % (getattr(tensorrt, "__path__", "?"), INSTALL_HINT))
    return tensorrt


def logger(verbose: bool = False) -> tensorrt.Logger:
    """A TensorRT logger at WARNING (INFO with ``verbose``)."""
    import tensorrt as trt

    return trt.Logger(trt.Logger.INFO if verbose else trt.Logger.WARNING)


def _device_failure(what: str, exc: BaseException) -> DeviceError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return DeviceError("TensorRT cannot create its %s (%s): no usable CUDA GPU here. On a Jetson check that "
                       "this user is in the 'video' group and that 'jetseg doctor' shows the GPU; elsewhere use "
                       "--backend onnxrt" % (what, first))


def make_builder(log: tensorrt.ILogger) -> tensorrt.Builder:
    """``trt.Builder(log)``; a CUDA initialisation failure (TypeError from the factory) becomes a DeviceError."""
    import tensorrt as trt

    try:
        builder = trt.Builder(log)
    except (TypeError, RuntimeError) as exc:
        raise _device_failure("builder", exc) from None
    if builder is None:
        raise DeviceError("TensorRT returned no builder: no usable CUDA GPU here (see 'jetseg doctor')")
    return builder


def make_runtime(log: tensorrt.ILogger) -> tensorrt.Runtime:
    """``trt.Runtime(log)`` with the same error translation as :func:`make_builder`."""
    import tensorrt as trt

    try:
        runtime = trt.Runtime(log)
    except (TypeError, RuntimeError) as exc:
        raise _device_failure("runtime", exc) from None
    if runtime is None:
        raise DeviceError("TensorRT returned no runtime: no usable CUDA GPU here (see 'jetseg doctor')")
    return runtime


def network_flags(feats: Features) -> int:
    """The ``create_network`` flags: EXPLICIT_BATCH only before TensorRT 10."""
    import tensorrt as trt

    if feats.explicit_batch_flag:
        return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    return 0


def set_precision(config: tensorrt.IBuilderConfig, feats: Features, precision: str, qdq: bool = False) -> List[str]:
    """Set the builder flags for ``fp32``, ``fp16`` or ``int8``; returns notes for build.json.

    Args:
        qdq: the network carries its own Q/DQ nodes (explicit quantization).

    Raises:
        DeviceError: the precision cannot be expressed with this TensorRT (FP16 from an FP32 model on 11+).
    """
    notes: List[str] = []
    if precision not in PRECISIONS:
        raise JetsegError("precision %r is unknown; expected one of %s" % (precision, ", ".join(PRECISIONS)))
    if precision == "fp32":
        return notes
    if not feats.precision_flags:
        if precision == "fp16":
            raise DeviceError("TensorRT %s has no FP16 builder flag (networks are strongly typed): export the model "
                              "in FP16 or build --precision fp32" % feats.version)
        if not qdq:
            raise DeviceError("TensorRT %s has no INT8 builder flag and no calibrator (strong typing): build INT8 "
                              "from a Q/DQ model made by 'jetseg calibrate --target tensorrt'" % feats.version)
        notes.append("int8 from the network's Q/DQ nodes (strongly typed, no builder flag)")
        return notes
    import tensorrt as trt

    if feats.precision_flags_deprecated:
        notes.append("BuilderFlag.%s is deprecated in TensorRT %s" % (precision.upper(), feats.version))
    # FP16 is allowed alongside INT8: layers without INT8 implementations run in FP16 rather than FP32.
    config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    return notes


def opset_problem(opset: int) -> Optional[str]:
    """Why a model of default-domain ONNX ``opset`` cannot go to TensorRT 8.5, or None when it can.

    The one opset rule (export, the Q/DQ check and calibration for ``--target tensorrt`` apply it), e.g.
    ``"opset 18; TensorRT 8.5 parses opset <= 17 (re-export with opset_version=17)"``.
    """
    if opset <= MAX_OPSET:
        return None
    return "opset %d; TensorRT 8.5 parses opset <= %d (re-export with opset_version=%d)" % (opset, MAX_OPSET,
                                                                                             MAX_OPSET)


def can_calibrate() -> bool:
    """True when this TensorRT still has the implicit INT8 calibrator API (needed for DLA INT8 from a cache)."""
    import tensorrt as trt

    return hasattr(trt, "IInt8EntropyCalibrator2") and features(trt.__version__).implicit_calibration
