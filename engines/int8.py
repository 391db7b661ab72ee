"""Implicit INT8 for engine builds (the calibrator API of TensorRT < 11; needed for DLA INT8 on Xavier).

Both routes use the calibrator of engines/calibrator.py (``make_trt_calibrator``):

* from the bundle's ``calibration.cache`` (written by ``jetseg calibrate``): no batches, every scale from the
  cache, which must have been written for this TensorRT version;
* on the device (``--calib-scans``): frames from a source through the bundle's ``Spec.preprocess``, copied to
  the GPU by :class:`jetseg.jetson.trt.cuda.DeviceUploader`.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Sequence

from jetseg import trtcompat
from jetseg.bundle import CALIBRATION_CACHE_FILE, Bundle
from jetseg.errors import BundleError, JetsegError

if TYPE_CHECKING:
    import tensorrt

    from jetseg.jetson.trt.plan import BuildPlan


def check_calibration_cache(path: Path, trt_version: str, dla: bool = False) -> str:
    """The calibrator method (``entropy`` or ``minmax``) of a calibration cache written for ``trt_version``.

    Args:
        dla: the cache is for a DLA build. TensorRT's ``NvInfer.h`` (8.5.2 to 10.x) calls
            ``IInt8EntropyCalibrator2`` "the required calibrator for DLA", so a MinMax cache is refused.

    Raises:
        BundleError: the cache was written for another TensorRT version (whether TensorRT itself would accept
            it is unconfirmed, so it is refused here with the command that writes the right one), or it is a
            MinMax cache for the DLA.
    """
    from jetseg.jetson.trt import cache as trtcache

    parsed = trtcache.read(path)
    wanted = trtcache.version_number(trtcompat.short_version(trt_version))
    if parsed.version != wanted:
        raise BundleError("%s starts with %s (written for another TensorRT) but this device has TensorRT %s "
                          "(TRT-%d); re-run 'jetseg calibrate FP32_BUNDLE --target tensorrt --trt-version %s "
                          "--out ...' and build that bundle" % (path, parsed.header, trt_version, wanted,
                                                               trtcompat.short_version(trt_version)))
    method = "minmax" if parsed.algorithm == trtcache.ALGORITHMS["minmax"] else "entropy"
    if dla and method == "minmax":
        raise BundleError("%s is a MinMax cache ('jetseg calibrate --method minmax'), but the DLA requires TensorRT's "
                          "entropy calibrator (NvInfer.h: IInt8EntropyCalibrator2 is \"the required calibrator for "
                          "DLA\"); calibrate with --method entropy or percentile for the DLA, or drop --dla to build "
                          "for the GPU" % path)
    return method


def equalize_for_dla(model: Any, path: Path, trt_version: str) -> List[str]:
    """Rewrite the build's copy of the cache at ``path`` with :func:`equal_scales` (DLA INT8's equal-range rules);
    returns a note for build.json naming how many scales were raised (none: the file is left as written)."""
    from jetseg.engines.placement import equal_scales
    from jetseg.jetson.trt import cache as trtcache

    cache = trtcache.read(path)
    equal = equal_scales(model, cache.scales)
    raised = sorted(t for t in equal if equal[t] != cache.scales[t])
    if not raised:
        return []
    method = "minmax" if cache.algorithm == trtcache.ALGORITHMS["minmax"] else "entropy"
    path.write_bytes(trtcache.dumps(equal, trtcompat.short_version(trt_version), method))
    return ["DLA: %d scale(s) raised to the largest of their group (Concat, elementwise and pooling tensors share "
            "one range on the DLA): %s" % (len(raised), ", ".join(raised))]


def cache_calibrator(path: Path, trt_version: str, workdir: Path,
                     drop: Sequence[str] = ()) -> tensorrt.IInt8Calibrator:
    """A calibrator (``make_trt_calibrator``) fed no batches: every scale comes from the cache.

    TensorRT gets a copy of the cache in ``workdir`` without the tensors ``drop`` (those the accepted model
    keeps in float, :mod:`.precision`), so nothing it writes back can change the bundle.
    """
    from jetseg.engines.calibrator import CacheStore, make_trt_calibrator
    from jetseg.jetson.trt import cache as trtcache

    method = check_calibration_cache(path, trt_version)
    copy = workdir / CALIBRATION_CACHE_FILE
    if drop:
        copy.write_bytes(trtcache.without(path.read_bytes(), drop))
    else:
        shutil.copyfile(str(path), str(copy))
    return make_trt_calibrator(None, CacheStore(copy, trtcompat.short_version(trt_version), method))


def device_calibrator(bundle: Bundle, plan: BuildPlan, trt_version: str, workdir: Path) -> Any:
    """TensorRT's entropy calibrator over frames read here: ``(calibrator, uploader, feeder)``.

    Frames come from ``plan.calib_scans`` through the one source layer and the bundle's own
    ``Spec.preprocess``; batches reach the GPU through :class:`jetseg.jetson.trt.cuda.DeviceUploader`.
    """
    from jetseg.engines.calibrator import BatchFeeder, CacheStore, make_trt_calibrator
    from jetseg.jetson.sources import open_source
    from jetseg.jetson.trt.cuda import CudaContext, DeviceUploader

    assert plan.calib_scans is not None
    frames = []
    with open_source(plan.calib_scans) as source:
        for frame in source:
            frames.append(bundle.spec.preprocess(frame.image))
            if len(frames) >= plan.calib_count:
                break
    if not frames:
        raise JetsegError("--calib-scans %s gave no frames; expected a source with images" % plan.calib_scans)
    feeder = BatchFeeder(frames, batch_size=bundle.spec.input_shape[0])
    store_ = CacheStore(workdir / CALIBRATION_CACHE_FILE, trtcompat.short_version(trt_version), "entropy")
    context = CudaContext(0)
    uploader = DeviceUploader(context.cuda, context)
    return make_trt_calibrator(feeder, store_, to_device=uploader), uploader, feeder
