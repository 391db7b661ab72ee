"""The TensorRT calibration cache (implicit INT8, needed for the Xavier DLA), written from our own ranges.

Format (a text file)::

    TRT-8502-EntropyCalibration2
    input: 3c010204
    /enc0/conv0/Conv_output_0: 3d8f5c29
    ...

The header names the TensorRT version and the calibrator algorithm; each following line is
``<tensor name>: <scale>`` where the scale is ``amax / 127`` written as the hex digits of its big-endian
IEEE-754 float32 bit pattern (jetseg writes 8 digits; TensorRT writes them without zero padding, ``0`` for a
tensor it never saw). Names are whatever TensorRT calls the tensor, e.g. ``(Unnamed Layer* 64) [Shuffle]_output``,
``onnx::Relu_5`` or ``input_1:0``: a line is split at its last ``:``. Tensor names are the ONNX tensor names (TensorRT's ONNX parser names each
layer output after the ONNX tensor it produces), including the network input.

Version number in the header (from published caches and NVIDIA's version macros):
``major * 1000 + minor * 100 + patch`` for TensorRT < 10 (8.5.2 -> 8502, 8.6.1 -> 8601); TensorRT 10
caches show ``major * 10000 + minor * 100 + patch`` (10.3.0 -> 100300) (unconfirmed by NVIDIA documentation).
What TensorRT does with a cache whose header does not match: TensorRT 8.5's ``IInt8Calibrator.read_calibration_cache``
documentation (``python/docstrings/infer/pyInt8Doc.h``) says a cache "will not be used if these [its settings] do
not match the settings of the current calibrator", and NVIDIA answered on NVIDIA/TensorRT#1378 that TensorRT
"will skip the file if it is incompatible"; it then calibrates from batches, which needs calibration data on
the device. The builder itself is closed source, so the exact header comparison is not confirmed. A cache must
therefore be written for the TensorRT version of the device (``--trt-version``); jetseg refuses another one.
"""
from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Mapping, Optional, Sequence, Union

from jetseg.errors import JetsegError
from jetseg.trtcompat import DEFAULT_TRT_VERSION

ALGORITHMS = {"entropy": "EntropyCalibration2", "minmax": "MinMaxCalibration",
              # TensorRT has no percentile calibrator; its ranges are used through the entropy calibrator's
              # cache (the builder only reads the scales).
              "percentile": "EntropyCalibration2"}
_HEADER = re.compile(r"^TRT-(\d+)-(\w+)$")
#: Smallest scale written: a tensor that was all zeros during calibration still gets a valid (> 0) scale.
MIN_SCALE = 1e-8


class CacheError(JetsegError):
    """A calibration cache cannot be read or written."""


@dataclass
class CalibrationCache:
    """A parsed cache: version number, algorithm name and ``{tensor: scale}`` (insertion-ordered)."""

    version: int
    algorithm: str
    scales: Dict[str, float] = field(default_factory=dict)

    @property
    def header(self) -> str:
        return "TRT-%d-%s" % (self.version, self.algorithm)

    def amax(self, name: str) -> float:
        """The tensor's range limit ``scale * 127``."""
        return self.scales[name] * 127.0


def version_number(version: str) -> int:
    """TensorRT's version as written in cache headers: ``"8.5.2"`` -> 8502, ``"10.3.0"`` -> 100300."""
    parts = str(version).strip().split(".")
    try:
        nums = [int(p) for p in parts[:3]] + [0] * (3 - len(parts[:3]))
    except ValueError:
        raise CacheError("TensorRT version %r is not a version; expected major.minor.patch like 8.5.2"
                         % (version,)) from None
    major, minor, patch = nums
    if major < 10:
        return major * 1000 + minor * 100 + patch
    return major * 10000 + minor * 100 + patch


def scale_to_hex(scale: float) -> str:
    """The 8 hex digits of a float32's big-endian bit pattern: ``1.0`` -> ``3f800000``."""
    return struct.pack(">f", float(scale)).hex()


def hex_to_scale(text: str) -> float:
    """A cache value as a float. TensorRT prints the bit pattern in hex without zero padding (``0`` for a
    tensor it never saw during calibration), so 1 to 8 hex digits are accepted."""
    text = text.strip()
    if not re.match(r"^[0-9a-fA-F]{1,8}$", text):
        raise CacheError("calibration cache value %r is not a hex float32 bit pattern (1 to 8 hex digits)" % text)
    return float(struct.unpack(">f", struct.pack(">I", int(text, 16)))[0])


def scales_from_ranges(ranges: Mapping[str, Sequence[float]]) -> Dict[str, float]:
    """``{tensor: amax / 127}`` with ``amax = max(|low|, |high|)`` (symmetric int8, as TensorRT uses)."""
    out = {}
    for name, (low, high) in ranges.items():
        amax = max(abs(float(low)), abs(float(high)))
        if not math.isfinite(amax):
            raise CacheError("tensor %r has a non-finite calibration range (%s, %s); the model produces inf/nan "
                             "on the calibration frames" % (name, low, high))
        out[name] = max(amax / 127.0, MIN_SCALE)
    return out


def dumps(scales: Mapping[str, float], trt_version: str = DEFAULT_TRT_VERSION, method: str = "entropy") -> bytes:
    """The cache file's bytes for ``{tensor: scale}``."""
    if method not in ALGORITHMS:
        raise CacheError("calibration method %r has no TensorRT calibrator; expected one of %s"
                         % (method, ", ".join(sorted(ALGORITHMS))))
    lines = ["TRT-%d-%s" % (version_number(trt_version), ALGORITHMS[method])]
    for name, scale in scales.items():
        # A ':' inside a name is fine (TensorRT writes names like ``input_1:0``; readers split at the last
        # ': '); a line break is not.
        if "\n" in name or "\r" in name or not name.strip():
            raise CacheError("tensor name %r cannot be written to a calibration cache (empty or contains a line "
                             "break); rename it in the model" % name)
        lines.append("%s: %s" % (name, scale_to_hex(scale)))
    return ("\n".join(lines) + "\n").encode("utf-8")


def loads(data: Union[bytes, str]) -> CalibrationCache:
    """Parse a cache; raises CacheError on a bad header or line."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    match = _HEADER.match(lines[0].strip()) if lines else None
    if not match:
        raise CacheError("calibration cache header is %r; expected TRT-<version>-<algorithm> such as "
                         "TRT-8502-EntropyCalibration2" % (lines[0][:60] if lines else ""))
    cache = CalibrationCache(int(match.group(1)), match.group(2))
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        name, sep, value = line.rpartition(":")
        if not sep or not name.strip():
            raise CacheError("calibration cache line %d is %r; expected '<tensor>: <hex digits>'"
                             % (number, line[:80]))
        cache.scales[name.strip()] = hex_to_scale(value)
    return cache


def write(path: Union[str, Path], scales: Mapping[str, float], trt_version: str = DEFAULT_TRT_VERSION,
          method: str = "entropy") -> Path:
    path = Path(path)
    path.write_bytes(dumps(scales, trt_version, method))
    return path


def read(path: Union[str, Path]) -> CalibrationCache:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CacheError("cannot read calibration cache %s: %s" % (path, exc.strerror or exc)) from None
    return loads(data)


def without(data: Union[bytes, str], names: Iterable[str]) -> bytes:
    """The cache ``data`` with the lines of the tensors ``names`` removed; every other line is kept as written
    (TensorRT's own unpadded values included). A tensor without a scale gets no INT8 implementation."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    loads(text)  # refuses a malformed cache before anything is dropped
    drop = set(names)
    lines = text.split("\n")
    kept = [lines[0]] + [ln for ln in lines[1:] if ln.rstrip("\r").rpartition(":")[0].strip() not in drop]
    return "\n".join(kept).encode("utf-8")


def matches(cache: CalibrationCache, trt_version: str, method: Optional[str] = None) -> bool:
    """True when the cache was written for this TensorRT version (and calibrator algorithm)."""
    if cache.version != version_number(trt_version):
        return False
    return method is None or cache.algorithm == ALGORITHMS.get(method, method)
