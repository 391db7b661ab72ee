"""The on-device TensorRT calibrator (implicit INT8), in two layers.

- Plain Python, tested anywhere: :class:`BatchFeeder` cuts preprocessed frames into fixed-size
  ``(B, C, H, W) float32`` C-contiguous batches (a last partial batch is dropped, or padded by repeating
  its last frame, never handed over short), and :class:`CacheStore` reads/writes the calibration cache,
  ignoring a cache written for another TensorRT version or calibrator algorithm.
- A thin TensorRT adapter, :func:`make_trt_calibrator`, built inside a function that imports tensorrt
  lazily: a subclass of ``trt.IInt8EntropyCalibrator2`` (or ``trt.IInt8MinMaxCalibrator``) whose
  ``get_batch`` copies each batch to the device through an injected ``to_device(array) -> int`` (the device
  pointer; the device module owns the memory and must keep it alive until the next call).

TensorRT 11 removed implicit calibration: there :func:`make_trt_calibrator` fails with a message that
points to the explicit Q/DQ model (``model.onnx`` of the INT8 bundle), which needs no calibrator.

With jetseg, a calibrator is usually not needed at all: ``jetseg calibrate`` writes ``calibration.cache``
from the host's ranges, and a calibrator that is handed that cache (``CacheStore``) returns it to TensorRT
without ever asking for a batch.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Union

import numpy as np

from jetseg.errors import DeviceError, JetsegError
from jetseg.jetson.trt import cache as trtcache

log = logging.getLogger("jetseg.calibration")

PARTIAL = ("drop", "pad")


class BatchFeeder:
    """Fixed-size NCHW float32 batches from preprocessed frames.

    Args:
        frames: ``(1, C, H, W)`` or ``(C, H, W)`` float32 arrays of one shape (``Spec.preprocess`` output).
        batch_size: frames per batch (the network's static batch dimension).
        partial: what to do with a last batch shorter than ``batch_size``: ``drop`` it (default; TensorRT
            needs full batches and duplicated frames would skew the statistics) or ``pad`` it by repeating
            its last frame.

    Attributes:
        batches_served, frames_served: what :meth:`next_batch` has handed out (padding not counted).
        frames_dropped: frames of a dropped partial batch.
    """

    def __init__(self, frames: Sequence[np.ndarray], batch_size: int = 1, partial: str = "drop") -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise JetsegError("calibration batch size %r is invalid; expected a positive integer" % (batch_size,))
        if partial not in PARTIAL:
            raise JetsegError("partial-batch mode %r is unknown; expected drop or pad" % (partial,))
        items = [np.asarray(f) for f in frames]
        items = [f[0] if f.ndim == 4 and f.shape[0] == 1 else f for f in items]
        if not items:
            raise JetsegError("no calibration frames; give at least %d" % batch_size)
        shape = items[0].shape
        for f in items:
            if f.ndim != 3 or f.shape != shape:
                raise JetsegError("calibration frame of shape %s; expected (C, H, W) or (1, C, H, W) like the "
                                  "first frame %s" % (f.shape, shape))
        self.frames = items
        self.batch_size = batch_size
        self.partial = partial
        self.shape = (batch_size,) + tuple(shape)
        self.reset()

    def __len__(self) -> int:
        """Number of batches a full pass yields."""
        full, rest = divmod(len(self.frames), self.batch_size)
        return full + (1 if rest and self.partial == "pad" else 0)

    def reset(self) -> None:
        self._pos = 0
        self.batches_served = 0
        self.frames_served = 0
        self.frames_dropped = 0

    def next_batch(self) -> Optional[np.ndarray]:
        """The next ``(B, C, H, W)`` float32 C-contiguous batch, or None when the frames are used up."""
        remaining = len(self.frames) - self._pos
        if remaining <= 0:
            return None
        if remaining < self.batch_size and self.partial == "drop":
            self.frames_dropped += remaining
            self._pos = len(self.frames)
            log.debug("dropped a partial calibration batch of %d frame(s)", remaining)
            return None
        chunk = self.frames[self._pos:self._pos + self.batch_size]
        real = len(chunk)
        chunk = chunk + [chunk[-1]] * (self.batch_size - real)
        self._pos += real
        self.batches_served += 1
        self.frames_served += real
        return np.ascontiguousarray(np.stack(chunk), dtype=np.float32)


class CacheStore:
    """Reads and writes a calibration cache file for one TensorRT version and calibrator algorithm.

    ``read`` returns None (so TensorRT calibrates from batches) when the file is missing or was written for
    another version or algorithm (a stale cache is never used silently: it is logged); ``write`` is atomic.
    """

    def __init__(self, path: Union[str, Path], trt_version: str, method: str = "entropy") -> None:
        self.path = Path(path)
        self.trt_version = trt_version
        self.method = method

    def read(self) -> Optional[bytes]:
        if not self.path.is_file():
            return None
        data = self.path.read_bytes()
        try:
            parsed = trtcache.loads(data)
        except trtcache.CacheError as exc:
            log.warning("ignoring calibration cache %s: %s", self.path, exc)
            return None
        if not trtcache.matches(parsed, self.trt_version, self.method):
            log.warning("ignoring calibration cache %s: written as %s, this is TRT-%d-%s", self.path,
                        parsed.header, trtcache.version_number(self.trt_version),
                        trtcache.ALGORITHMS.get(self.method, self.method))
            return None
        return data

    def write(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="." + self.path.name + ".", dir=str(self.path.parent))
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(bytes(data))
            os.replace(tmp, str(self.path))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def make_trt_calibrator(feeder: Optional[BatchFeeder], store: CacheStore,
                        to_device: Optional[Callable[[np.ndarray], int]] = None, trt: Any = None) -> Any:
    """A TensorRT INT8 calibrator (entropy or min-max, from ``store.method``) over ``feeder``'s batches.

    Args:
        feeder: the batches; None when the cache alone must be used (then a missing or stale cache makes
            TensorRT's build fail instead of calibrating).
        store: the cache file TensorRT reads first and writes after calibrating.
        to_device: copies a batch to GPU memory and returns its device pointer; required when batches are
            served (the jetson-device module provides it).
        trt: the tensorrt module (default: imported here; tests inject a stand-in).

    Raises:
        DeviceError: on TensorRT 11+ (no implicit calibration).
    """
    if trt is None:
        from jetseg.optional import require

        trt = require("tensorrt", "the TensorRT INT8 calibrator")
    name = "IInt8MinMaxCalibrator" if store.method == "minmax" else "IInt8EntropyCalibrator2"
    base = getattr(trt, name, None)
    if base is None:
        raise DeviceError("TensorRT %s has no %s (implicit INT8 calibration was removed in TensorRT 11); use the "
                          "INT8 bundle's Q/DQ model.onnx instead, it needs no calibrator"
                          % (getattr(trt, "__version__", "?"), name))
    if feeder is not None and to_device is None:
        raise DeviceError("the TensorRT calibrator needs a to_device function to copy batches to the GPU")

    class JetsegCalibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.feeder = feeder
            self.store = store
            self._alive: List[Any] = []  # keep the current device buffer referenced while TensorRT reads it

        def get_batch_size(self) -> int:
            return self.feeder.batch_size if self.feeder is not None else 1

        def get_batch(self, names: Any, *args: Any) -> Optional[List[int]]:
            if self.feeder is None:
                return None
            batch = self.feeder.next_batch()
            if batch is None:
                return None
            pointer = to_device(batch)  # type: ignore[misc]
            self._alive = [batch, pointer]
            return [int(pointer)]

        def read_calibration_cache(self, *args: Any) -> Optional[bytes]:
            return self.store.read()

        def write_calibration_cache(self, data: Any, *args: Any) -> None:
            self.store.write(bytes(data))

    return JetsegCalibrator()
