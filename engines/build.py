"""Build a TensorRT engine from a bundle, on the device: ``jetseg build`` calls :func:`build_engine`.

Which network and which INT8 path:

=================  =======================================  ==================================================
precision / target  network                                  how INT8 scales are obtained
=================  =======================================  ==================================================
fp32, fp16 (GPU)   the bundle's float model.onnx            -
fp16 (DLA)         the bundle's float model.onnx            - (GPU_FALLBACK for unsupported layers)
int8 (GPU)         the INT8 bundle's Q/DQ model.onnx         explicit, from the Q/DQ nodes (TensorRT 8.5 - 11)
int8 (DLA)         the INT8 bundle's model.fp32.onnx, else   implicit, from the bundle's calibration.cache
                   the Q/DQ model with Q/DQ stripped        (calibrator API: TensorRT < 11)
int8 --calib-scans the FP32 bundle's float model            implicit, calibrated here from a source's frames
=================  =======================================  ==================================================

INT8 details are in :mod:`.int8`, the torch2trt route in :mod:`.via_torch2trt`. INT8 from the calibration
cache builds the model the accuracy gate accepted: what it kept in float stays FP16 (:mod:`.precision`).
A DLA build reports where layers should go before the build (:mod:`.placement`, an estimate) and where
TensorRT put them (:mod:`.engine_info`, read from the engine); both are in ``build.json``.

The engine goes to ``BUNDLE/engines/<device-key>/`` with ``build.json`` and the timing cache; an engine that
is up to date is reused unless ``force``; engines of the same device and precision left over from an older
model or calibration are removed (they can never be used again).
"""
from __future__ import annotations

import contextlib
import datetime
import json
import logging
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, TextIO

from jetseg import trtcompat
from jetseg.bundle import CALIBRATION_CACHE_FILE, Bundle, command_line, sha256_file, writing
from jetseg.engines import engine_info, int8, via_torch2trt
from jetseg.engines.placement import (
    Finding,
    LayerPlacement,
    format_report,
    network_placement,
    onnx_rules,
    scale_findings,
)
from jetseg.engines.precision import constrain
from jetseg.engines.progress import Heartbeat, make_monitor
from jetseg.errors import DeviceError, JetsegError
from jetseg.jetson.trt import cache as trtcache
from jetseg.jetson.trt import store
from jetseg.jetson.trt.floatlayers import float_keep, recorded_float_layers
from jetseg.jetson.trt.key import EngineKey
from jetseg.jetson.trt.plan import (
    BuildPlan,
    bundle_has_qdq,
    current_key,
    plan_build,
)

if TYPE_CHECKING:
    import tensorrt

log = logging.getLogger("jetseg.build")

VIA = ("onnx", "torch2trt")


@dataclass
class BuildOutcome:
    key: EngineKey
    folder: Path
    reused: bool
    record: Dict[str, Any] = field(default_factory=dict)
    report: List[str] = field(default_factory=list)

    @property
    def engine_path(self) -> Path:
        return self.folder / store.ENGINE_FILE



def _parse_onnx(parser: tensorrt.OnnxParser, data: bytes) -> None:
    if parser.parse(data):
        return
    errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
    raise DeviceError("TensorRT cannot parse the ONNX model: %s" % ("; ".join(errors[:3]) or "unknown error"))


def _load_model_bytes(bundle: Bundle, plan: BuildPlan) -> bytes:
    data = (plan.network or bundle.model_path).read_bytes()
    if not plan.strip_qdq:
        return data
    from jetseg.engines.qdq import strip_qdq
    from jetseg.optional import require

    onnx = require("onnx", "DLA INT8 builds")
    return bytes(strip_qdq(onnx.load_from_string(data)).SerializeToString())


def _findings(data: bytes) -> List[Finding]:
    from jetseg.optional import require

    onnx = require("onnx", "the DLA placement report")
    return onnx_rules(onnx.load_from_string(data))


def build_engine(bundle: Bundle, precision: str, dla_core: Optional[int] = None, workspace_mb: int = 1024,
                 timing_cache: Optional[Path] = None, force: bool = False, via: str = "onnx",
                 verbose: bool = False, out: Optional[TextIO] = None, calib_scans: Optional[str] = None,
                 calib_count: int = 100) -> BuildOutcome:
    """Build (or reuse) the engine for this device; see the module docstring."""
    out = out or sys.stderr
    if via not in VIA:
        raise JetsegError("--via %r is unknown; expected onnx or torch2trt" % via)
    if workspace_mb < 16:
        raise JetsegError("--workspace %d MB is too small; expected at least 16 MB (default 1024)" % workspace_mb)
    trt = trtcompat.load("'jetseg build'")
    feats = trtcompat.features(trt.__version__)
    plan = plan_build(bundle, precision, dla_core, bundle_has_qdq(bundle), calib_scans, calib_count)
    from jetseg.jetson.device.info import describe, identity, module_name

    soc, cc = identity()
    if via == "torch2trt":
        via_torch2trt.preflight(bundle, plan)
    if plan.int8_mode in ("cache", "device") and not trtcompat.can_calibrate():
        raise DeviceError("TensorRT %s has no calibrator API, so INT8 from %s is impossible here; build INT8 on the "
                          "GPU from the Q/DQ model (drop --dla)" % (trt.__version__, CALIBRATION_CACHE_FILE))
    if plan.int8_mode == "cache" and plan.calibration_cache is not None:
        int8.check_calibration_cache(plan.calibration_cache, trt.__version__, dla=plan.dla_core is not None)
    key = current_key(bundle, plan, trt.__version__, soc, cc, module_name(), via)
    state, reasons = store.status(bundle, key)
    folder = store.engine_dir(bundle, key)
    if state == store.OK and not force:
        record = store.read_record(folder) or {}
        return BuildOutcome(key, folder, True, record, ["engine %s is up to date (use --force to rebuild)" % key])
    if state in (store.STALE, store.DAMAGED):
        print("rebuilding %s: %s" % (key, "; ".join(reasons)), file=out)
    for old in store.superseded(bundle, key):
        print("removing superseded engine %s (built from another model or calibration)" % old.name, file=out)
        shutil.rmtree(str(old))

    device = describe()
    timings: Dict[str, float] = {}
    start = time.monotonic()
    placement: List[LayerPlacement] = []
    findings: List[Finding] = []
    extra_files: Dict[str, bytes] = {}
    if via == "torch2trt":
        engine_bytes = via_torch2trt.build_torch2trt(bundle, plan, workspace_mb)
        cache_bytes, notes = b"", ["converted from the PyTorch weights with torch2trt"]
    else:
        with tempfile.TemporaryDirectory(prefix="jetseg-build-") as workdir:
            engine_bytes, cache_bytes, placement, notes, findings = _build_onnx(
                feats, bundle, plan, key, workspace_mb, timing_cache, verbose, out, timings, Path(workdir),
                extra_files)
    timings["total_s"] = round(time.monotonic() - start, 3)

    runtime = trtcompat.make_runtime(trtcompat.logger(verbose))
    if plan.dla_core is not None:
        runtime.DLA_core = plan.dla_core
    engine = runtime.deserialize_cuda_engine(engine_bytes)
    if engine is None:
        raise DeviceError("TensorRT built an engine it cannot load back; run 'jetseg build --verbose' for details")
    io = [{"name": engine.get_tensor_name(i),
           "mode": str(engine.get_tensor_mode(engine.get_tensor_name(i))).split(".")[-1],
           "shape": [int(d) for d in engine.get_tensor_shape(engine.get_tensor_name(i))],
           "dtype": str(engine.get_tensor_dtype(engine.get_tensor_name(i))).split(".")[-1]}
          for i in range(engine.num_io_tensors)]
    report: List[str] = []
    actual: Dict[str, Any] = {}
    if plan.dla_core is not None:
        rules = [f for f in findings if not f.reason.startswith("INT8 on the DLA")]
        warnings = [f for f in findings if f.reason.startswith("INT8 on the DLA")]
        layers, why = engine_info.read_engine(engine, trt)
        rows = engine_info.actual_placement(placement, layers)
        after = (engine_info.format_actual(layers, rows) + engine_info.differences(placement, rows) if not why
                 else ["DLA placement in the built engine unknown: %s" % why])
        for line in after:  # the estimate was printed before the build
            print(line, file=out)
        report = format_report(placement, rules) + _format_warnings(warnings) + after
        actual = {"engine_layers": [x.to_dict() for x in layers], "layers": [r.to_dict() for r in rows],
                  "unknown_because": why, "int8_range_warnings": [w.to_dict() for w in warnings]}
    record = {
        "key": key.to_dict(),
        "created": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "command": command_line(),
        "via": via,
        "versions": {"tensorrt": str(trt.__version__), "cuda": device.cuda, "l4t": device.l4t,
                     "jetpack": device.jetpack, "jetseg": _jetseg_version()},
        "device": {"model": device.model, "soc": soc, "compute_capability": cc,
                   "nvpmodel": device.nvpmodel, "jetson_clocks": device.jetson_clocks},
        "flags": {"precision": plan.precision, "int8": plan.int8_mode, "dla_core": plan.dla_core,
                  "gpu_fallback": plan.dla_core is not None, "workspace_mb": workspace_mb,
                  "network": (plan.network or bundle.model_path).name,
                  "qdq_stripped": plan.strip_qdq, "calib_scans": plan.calib_scans,
                  "calib_count": plan.calib_count or None, "features": feats.to_dict(), "notes": notes},
        "timings": timings,
        "placement": [row.to_dict() for row in placement],  # the estimate, before the build
        "placement_actual": actual,  # what TensorRT decided (engine inspector)
        "io": io,
        "engine_bytes": len(engine_bytes),
    }
    with writing(folder, overwrite=True) as tmp:
        (tmp / store.ENGINE_FILE).write_bytes(engine_bytes)
        if cache_bytes:
            (tmp / store.TIMING_CACHE_FILE).write_bytes(cache_bytes)
        for name, data in extra_files.items():  # the cache an on-device calibration produced
            (tmp / name).write_bytes(data)
        record["engine_sha256"] = sha256_file(tmp / store.ENGINE_FILE)
        (tmp / store.BUILD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    if cache_bytes:
        _write_atomic(Path(timing_cache) if timing_cache else store.shared_timing_cache(bundle, key), cache_bytes)
    return BuildOutcome(key, folder, False, record, report)


def _build_onnx(feats: trtcompat.Features, bundle: Bundle, plan: BuildPlan, key: EngineKey,
                workspace_mb: int, timing_cache: Optional[Path], verbose: bool, out: TextIO,
                timings: Dict[str, float], workdir: Path, extra_files: Dict[str, bytes]) -> Any:
    import tensorrt as trt

    t0 = time.monotonic()
    data = _load_model_bytes(bundle, plan)
    tlog = trtcompat.logger(verbose)
    builder = trtcompat.make_builder(tlog)
    network = builder.create_network(trtcompat.network_flags(feats))
    parser = trt.OnnxParser(network, tlog)
    _parse_onnx(parser, data)
    timings["parse_s"] = round(time.monotonic() - t0, 3)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    notes = trtcompat.set_precision(config, feats, plan.precision, qdq=plan.int8_mode == "qdq")
    # The engine inspector's layer details (engine_info.py). tensorrt-stubs 10.13 lacks both names; TensorRT
    # 8.5's python/src/infer/pyCore.cpp binds them.
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # type: ignore[attr-defined]
    warnings: List[Finding] = []
    if plan.int8_mode == "cache":
        assert plan.calibration_cache is not None
        model = _onnx_model(data)
        keep = float_keep(model, recorded_float_layers(bundle))
        calibrator = int8.cache_calibrator(plan.calibration_cache, trt.__version__, workdir, keep.uncached)
        config.int8_calibrator = calibrator
        notes.append("int8 scales from %s (implicit calibration)%s" % (
            CALIBRATION_CACHE_FILE, "; left out: %s" % ", ".join(keep.uncached) if keep.uncached else ""))
        notes.extend(constrain(network, config, keep, trt))
        if plan.dla_core is not None:
            warnings = scale_findings(model, trtcache.read(workdir / CALIBRATION_CACHE_FILE).scales)
    uploader = None
    if plan.int8_mode == "device":
        calibrator, uploader, feeder = int8.device_calibrator(bundle, plan, trt.__version__, workdir)
        config.int8_calibrator = calibrator
        notes.append("int8 calibrated on the device from %d frame(s) of %s" % (len(feeder.frames), plan.calib_scans))

    placement: List[LayerPlacement] = []
    findings: List[Finding] = []
    if plan.dla_core is not None:
        cores = int(builder.num_DLA_cores)
        if plan.dla_core >= cores:
            raise DeviceError("--dla %d asked, but this device has %d DLA core(s)%s"
                              % (plan.dla_core, cores, " (0..%d)" % (cores - 1) if cores else "; drop --dla"))
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = plan.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        findings = _findings(data)
        placement = network_placement(network, config, findings)
        for line in format_report(placement, findings) + _format_warnings(warnings):
            print(line, file=out)

    cache_path = Path(timing_cache) if timing_cache else store.shared_timing_cache(bundle, key)
    old_cache = cache_path.read_bytes() if cache_path.is_file() else b""
    cache = config.create_timing_cache(old_cache)
    if not config.set_timing_cache(cache, False):
        notes.append("timing cache %s did not match this device; started a new one" % cache_path)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    elif old_cache:
        notes.append("reused timing cache %s" % cache_path)

    label = "building %s engine for %s" % (plan.precision.upper(), key.device_part)
    print("%s (TensorRT %s; this can take minutes)" % (label, trt.__version__), file=out, flush=True)
    t1 = time.monotonic()
    # On-device calibration copies batches with pycuda: its (primary) context must be current while building.
    context: Any = uploader.context if uploader is not None else contextlib.nullcontext()
    try:
        with context:
            if feats.progress_monitor and hasattr(trt, "IProgressMonitor"):
                monitor = make_monitor(out)
                config.progress_monitor = monitor
                serialized = builder.build_serialized_network(network, config)
            else:
                with Heartbeat(label, stream=out):
                    serialized = builder.build_serialized_network(network, config)
            if uploader is not None:
                uploader.free()
    finally:
        if uploader is not None:
            uploader.context.release()
    timings["build_s"] = round(time.monotonic() - t1, 3)
    if serialized is None:
        raise DeviceError("TensorRT could not build the engine; run 'jetseg build --verbose' to see its messages")
    produced = workdir / CALIBRATION_CACHE_FILE
    if plan.int8_mode == "device":
        if not produced.is_file():
            raise DeviceError("TensorRT built the engine but wrote no calibration cache")
        extra_files[CALIBRATION_CACHE_FILE] = produced.read_bytes()
    cache_bytes = bytes(memoryview(config.get_timing_cache().serialize()))
    return bytes(memoryview(serialized)), cache_bytes, placement, notes, findings + warnings


def _onnx_model(data: bytes) -> Any:
    from jetseg.optional import require

    return require("onnx", "INT8 from a calibration cache").load_from_string(data)


def _format_warnings(warnings: List[Finding]) -> List[str]:
    return ["warning: DLA INT8 %s %s: %s" % (w.op, w.node, w.reason) for w in warnings]


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _jetseg_version() -> str:
    import jetseg

    return jetseg.__version__
