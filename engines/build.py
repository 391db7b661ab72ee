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

The build is a chain of small steps, each usable and tested on its own (the way Polygraphy's loaders chain
``NetworkFromOnnxPath -> CreateConfig -> EngineBytesFromNetwork -> SaveEngine``)::

    parse_network -> make_config -> set_profile -> set_int8 -> place_on_dla -> use_timing_cache
        -> serialize_engine -> inspect_engine -> build_record -> save_engine

``--batch N`` (:mod:`.batch`): one optimization profile, batch 1..N on the GPU, exactly N on the DLA (it has no
runtime dimensions), recorded in the key and build.json.

:func:`build_engine` decides the plan and the key, reuses an up-to-date engine, and runs the chain.

INT8 details are in :mod:`.int8`, the torch2trt route in :mod:`.via_torch2trt`. INT8 from the calibration
cache builds the model the accuracy gate accepted: what it kept in float stays FP16 (:mod:`.precision`).
A DLA build reports where layers should go before the build (:mod:`.placement`, an estimate) and where
TensorRT put them (:mod:`.engine_info`, read from the engine); both are in ``build.json``.

The engine goes to ``BUNDLE/engines/<device-key>/`` with ``build.json`` and the timing cache; an engine that
is up to date is reused unless ``force``; engines of the same device and precision left over from an older
model or calibration are removed (they can never be used again).
"""
from __future__ import annotations

import datetime
import hashlib
import logging
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, TextIO, Tuple

from jetseg import trtcompat
from jetseg.bundle import CALIBRATION_CACHE_FILE, Bundle, command_line, writing
from jetseg.engines import batch as batching
from jetseg.engines import engine_info, int8, via_torch2trt
from jetseg.engines.placement import (
    Finding,
    LayerPlacement,
    format_report,
    network_placement,
    onnx_rules,
    scale_findings,
)
from jetseg.engines.precision import Constraints, constrain
from jetseg.engines.serialize import serialize_with_retry
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
from jetseg.jetson.trt.profile import BatchProfile
from jetseg.records import BuildRecord

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


@dataclass
class ParsedNetwork:
    """A TensorRT network parsed from ONNX bytes, with the builder that made it.

    Attributes:
        builder: the ``trt.Builder`` (configs and the build come from it).
        network: the parsed ``INetworkDefinition``.
        parser: the ``OnnxParser``, kept alive with the network (it owns the weights until the build).
        onnx_bytes: the ONNX model that was parsed.
    """

    builder: Any
    network: Any
    parser: Any
    onnx_bytes: bytes


@dataclass
class Int8Setup:
    """What :func:`set_int8` put on a config: notes for build.json, DLA INT8 range warnings, and the device
    uploader of an on-device calibration (its CUDA context must be current while building)."""

    notes: List[str] = field(default_factory=list)
    warnings: List[Finding] = field(default_factory=list)
    uploader: Any = None
    constraints: Constraints = field(default_factory=Constraints)


@dataclass
class BuiltEngine:
    """The serialized engine and what its build produced."""

    engine_bytes: bytes
    timing_cache: bytes = b""
    notes: List[str] = field(default_factory=list)
    placement: List[LayerPlacement] = field(default_factory=list)  # the DLA estimate, before the build
    findings: List[Finding] = field(default_factory=list)  # DLA rules and INT8 range warnings
    files: Dict[str, bytes] = field(default_factory=dict)  # extra files for the engine folder
    timings: Dict[str, float] = field(default_factory=dict)
    retry: Dict[str, Any] = field(default_factory=dict)  # a build retried without precision constraints
    profile: Dict[str, Any] = field(default_factory=dict)  # the input's optimization profile (build.json)


@dataclass
class Inspection:
    """What the built engine says about itself: its I/O tensors and, on the DLA, where TensorRT put layers."""

    io: List[Dict[str, Any]] = field(default_factory=list)
    report: List[str] = field(default_factory=list)
    actual: Dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- the steps
def load_network_bytes(bundle: Bundle, plan: BuildPlan) -> bytes:
    """The ONNX bytes the plan builds: its network (else the bundle's model.onnx), Q/DQ stripped if planned."""
    data = (plan.network or bundle.model_path).read_bytes()
    if not plan.strip_qdq:
        return data
    from jetseg.engines.qdq import strip_qdq
    from jetseg.optional import require

    onnx = require("onnx", "DLA INT8 builds")
    return bytes(strip_qdq(onnx.load_from_string(data)).SerializeToString())


def parse_network(trt: Any, feats: trtcompat.Features, data: bytes, verbose: bool = False) -> ParsedNetwork:
    """Parse ONNX ``data`` into a new network (explicit batch where the TensorRT version needs it); a parse
    failure raises a DeviceError with TensorRT's first errors."""
    tlog = trtcompat.logger(verbose)
    builder = trtcompat.make_builder(tlog)
    network = builder.create_network(trtcompat.network_flags(feats))
    parser = trt.OnnxParser(network, tlog)
    if not parser.parse(data):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise DeviceError("TensorRT cannot parse the ONNX model: %s" % ("; ".join(errors[:3]) or "unknown error"))
    return ParsedNetwork(builder, network, parser, data)


def make_config(trt: Any, feats: trtcompat.Features, parsed: ParsedNetwork, precision: str, qdq: bool,
                workspace_mb: int) -> Tuple[Any, List[str]]:
    """A builder config with the workspace limit, the precision flags and detailed profiling (for the engine
    inspector); returns ``(config, notes)``."""
    config = parsed.builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    notes = trtcompat.set_precision(config, feats, precision, qdq=qdq)
    # The engine inspector's layer details (engine_info.py). tensorrt-stubs 10.13 lacks both names (hence Any
    # here); TensorRT 8.5's python/src/infer/pyCore.cpp binds them.
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    return config, notes


def set_int8(trt: Any, parsed: ParsedNetwork, config: Any, bundle: Bundle, plan: BuildPlan,
             workdir: Path) -> Int8Setup:
    """The implicit INT8 calibrator of the plan: from the bundle's calibration cache (what the gate kept in
    float left out and constrained to FP16) or calibrating on the device. Nothing for the other INT8 modes."""
    setup = Int8Setup()
    if plan.int8_mode == "cache":
        assert plan.calibration_cache is not None
        model = _onnx_model(parsed.onnx_bytes)
        keep = float_keep(model, recorded_float_layers(bundle))
        config.int8_calibrator = int8.cache_calibrator(plan.calibration_cache, trt.__version__, workdir,
                                                       keep.uncached)
        setup.notes.append("int8 scales from %s (implicit calibration)%s" % (
            CALIBRATION_CACHE_FILE, "; left out: %s" % ", ".join(keep.uncached) if keep.uncached else ""))
        setup.constraints = constrain(parsed.network, config, keep, trt)
        setup.notes.extend(setup.constraints.notes)
        if plan.dla_core is not None:
            setup.notes.extend(int8.equalize_for_dla(model, workdir / CALIBRATION_CACHE_FILE, trt.__version__))
            setup.warnings = scale_findings(model, trtcache.read(workdir / CALIBRATION_CACHE_FILE).scales)
    elif plan.int8_mode == "device":
        calibrator, setup.uploader, feeder = int8.device_calibrator(bundle, plan, trt.__version__, workdir)
        config.int8_calibrator = calibrator
        setup.notes.append("int8 calibrated on the device from %d frame(s) of %s"
                           % (len(feeder.frames), plan.calib_scans))
    return setup


def place_on_dla(trt: Any, parsed: ParsedNetwork, config: Any, dla_core: Optional[int],
                 warnings: List[Finding], out: TextIO) -> Tuple[List[LayerPlacement], List[Finding]]:
    """Put the network on DLA core ``dla_core`` with GPU fallback and print the placement estimate; returns
    ``(placement, findings)`` (empty for a GPU build)."""
    if dla_core is None:
        return [], []
    cores = int(parsed.builder.num_DLA_cores)
    if dla_core >= cores:
        raise DeviceError("--dla %d asked, but this device has %d DLA core(s)%s"
                          % (dla_core, cores, " (0..%d)" % (cores - 1) if cores else "; drop --dla"))
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = dla_core
    config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    findings = _findings(parsed.onnx_bytes)
    placement = network_placement(parsed.network, config, findings)
    for line in format_report(placement, findings) + _format_warnings(warnings):
        print(line, file=out)
    return placement, findings


def use_timing_cache(config: Any, path: Path) -> List[str]:
    """Start the config's timing cache from ``path`` (a fresh one when it is missing or from another device);
    returns notes for build.json."""
    old = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(old)
    if not config.set_timing_cache(cache, False):
        config.set_timing_cache(config.create_timing_cache(b""), False)
        return ["timing cache %s did not match this device; started a new one" % path]
    return ["reused timing cache %s" % path] if old else []


def inspect_engine(trt: Any, engine_bytes: bytes, dla_core: Optional[int], placement: List[LayerPlacement],
                   findings: List[Finding], out: TextIO, verbose: bool = False) -> Inspection:
    """Load the engine back: its I/O tensors, and on the DLA where TensorRT put the layers against the
    estimate (printed on ``out``). An engine TensorRT cannot load back raises a DeviceError."""
    runtime = trtcompat.make_runtime(trtcompat.logger(verbose))
    if dla_core is not None:
        runtime.DLA_core = dla_core
    engine = runtime.deserialize_cuda_engine(engine_bytes)
    if engine is None:
        raise DeviceError("TensorRT built an engine it cannot load back; run 'jetseg build --verbose' for details")
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inspection = Inspection(io=[{"name": name, "mode": str(engine.get_tensor_mode(name)).split(".")[-1],
                                 "shape": [int(d) for d in engine.get_tensor_shape(name)],
                                 "dtype": str(engine.get_tensor_dtype(name)).split(".")[-1]} for name in names])
    if dla_core is None:
        return inspection
    rules = [f for f in findings if not f.reason.startswith("INT8 on the DLA")]
    warnings = [f for f in findings if f.reason.startswith("INT8 on the DLA")]
    layers, why, raw = engine_info.read_engine(engine, trt)
    rows = engine_info.actual_placement(placement, layers) if not why else engine_info.unknown_placement(placement)
    after = (engine_info.format_actual(layers, rows) + engine_info.differences(placement, rows) if not why
             else ["DLA placement in the built engine unknown: %s" % why])
    for line in after:  # the estimate was printed before the build
        print(line, file=out)
    inspection.report = format_report(placement, rules) + _format_warnings(warnings) + after
    inspection.actual = {"engine_layers": [x.to_dict() for x in layers], "layers": [r.to_dict() for r in rows],
                         "unknown_because": why, "int8_range_warnings": [w.to_dict() for w in warnings],
                         "inspector_raw": raw}
    return inspection


def build_record(bundle: Bundle, key: EngineKey, plan: BuildPlan, via: str, trt_version: str,
                 feats: trtcompat.Features, device: Any, soc_cc: Tuple[str, str], workspace_mb: int,
                 built: BuiltEngine, inspection: Inspection) -> BuildRecord:
    """The build.json record: the one place that assembles it (``device``: :func:`describe`'s DeviceInfo;
    ``soc_cc``: :func:`identity`'s answer, as the device reported it)."""
    return BuildRecord(
        key=key.to_dict(),
        created=datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        command=command_line(),
        via=via,
        versions={"tensorrt": str(trt_version), "cuda": device.cuda, "l4t": device.l4t,
                  "jetpack": device.jetpack, "jetseg": _jetseg_version()},
        device={"model": device.model, "soc": soc_cc[0], "compute_capability": soc_cc[1],
                "nvpmodel": device.nvpmodel, "jetson_clocks": device.jetson_clocks},
        flags={"precision": plan.precision, "int8": plan.int8_mode, "dla_core": plan.dla_core,
               "gpu_fallback": plan.dla_core is not None, "workspace_mb": workspace_mb,
               "network": (plan.network or bundle.model_path).name,
               "qdq_stripped": plan.strip_qdq, "calib_scans": plan.calib_scans,
               "calib_count": plan.calib_count or None, "features": feats.to_dict(), "notes": built.notes},
        timings=built.timings,
        placement=[row.to_dict() for row in built.placement],  # the estimate, before the build
        placement_actual=inspection.actual,  # what TensorRT decided (engine inspector)
        io=inspection.io,
        engine_bytes=len(built.engine_bytes),
        precision_retry=built.retry,
        batch=plan.batch,
        profile=built.profile,
        engine_sha256=hashlib.sha256(built.engine_bytes).hexdigest(),
    )


def save_engine(folder: Path, built: BuiltEngine, record: BuildRecord) -> None:
    """Write the engine folder at once (engine, timing cache, extra files, build.json last)."""
    with writing(folder, overwrite=True, derived=True) as tmp:  # engines/<key>/: jetseg's own path
        (tmp / store.ENGINE_FILE).write_bytes(built.engine_bytes)
        if built.timing_cache:
            (tmp / store.TIMING_CACHE_FILE).write_bytes(built.timing_cache)
        for name, data in built.files.items():  # the cache an on-device calibration produced
            (tmp / name).write_bytes(data)
        record.write(tmp)


# ---------------------------------------------------------------------------------------------- the chain
def build_engine(bundle: Bundle, precision: str, dla_core: Optional[int] = None, workspace_mb: int = 1024,
                 timing_cache: Optional[Path] = None, force: bool = False, via: str = "onnx",
                 verbose: bool = False, out: Optional[TextIO] = None, calib_scans: Optional[str] = None,
                 calib_count: int = 100, batch: int = 1) -> BuildOutcome:
    """Build (or reuse) the engine for this device; see the module docstring."""
    out = out or sys.stderr
    if via not in VIA:
        raise JetsegError("--via %r is unknown; expected onnx or torch2trt" % via)
    if workspace_mb < 16:
        raise JetsegError("--workspace %d MB is too small; expected at least 16 MB (default 1024)" % workspace_mb)
    trt = trtcompat.load("'jetseg build'")
    feats = trtcompat.features(trt.__version__)
    plan = plan_build(bundle, precision, dla_core, bundle_has_qdq(bundle), calib_scans, calib_count, batch)
    if via == "torch2trt" and batch != 1:
        raise JetsegError("--batch %d: the torch2trt route builds batch 1 only; drop --via torch2trt" % batch)
    profile = batching.plan_profile(bundle, plan) if via == "onnx" else None
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
        recorded = store.read_record(folder)
        return BuildOutcome(key, folder, True, recorded.to_dict() if recorded else {}, ["engine %s is up to date (use --force to rebuild)" % key])
    if state in (store.STALE, store.DAMAGED):
        print("rebuilding %s: %s" % (key, "; ".join(reasons)), file=out)
    for old in store.superseded(bundle, key):
        print("removing superseded engine %s (built from another model or calibration)" % old.name, file=out)
        shutil.rmtree(str(old))

    device = describe()
    start = time.monotonic()
    if via == "torch2trt":
        built = BuiltEngine(via_torch2trt.build_torch2trt(bundle, plan, workspace_mb),
                            notes=["converted from the PyTorch weights with torch2trt"])
    else:
        cache_path = Path(timing_cache) if timing_cache else store.shared_timing_cache(bundle, key)
        with tempfile.TemporaryDirectory(prefix="jetseg-build-") as workdir:
            assert profile is not None
            built = _build_onnx(trt, feats, bundle, plan, key, workspace_mb, cache_path, verbose, out, Path(workdir),
                                profile)
    built.timings["total_s"] = round(time.monotonic() - start, 3)
    inspection = inspect_engine(trt, built.engine_bytes, plan.dla_core, built.placement, built.findings, out,
                                verbose)
    record = build_record(bundle, key, plan, via, trt.__version__, feats, device, (soc, cc), workspace_mb, built,
                          inspection)
    save_engine(folder, built, record)
    if built.timing_cache:
        _write_atomic(Path(timing_cache) if timing_cache else store.shared_timing_cache(bundle, key),
                      built.timing_cache)
    return BuildOutcome(key, folder, False, record.to_dict(), inspection.report)


def _build_onnx(trt: Any, feats: trtcompat.Features, bundle: Bundle, plan: BuildPlan, key: EngineKey,
                workspace_mb: int, cache_path: Path, verbose: bool, out: TextIO, workdir: Path,
                profile: BatchProfile) -> BuiltEngine:
    """The ONNX route: the steps from parsing to the serialized engine, timed."""
    t0 = time.monotonic()
    parsed = parse_network(trt, feats, load_network_bytes(bundle, plan), verbose)
    timings = {"parse_s": round(time.monotonic() - t0, 3)}
    config, notes = make_config(trt, feats, parsed, plan.precision, plan.int8_mode == "qdq", workspace_mb)
    notes += batching.set_profile(parsed.builder, config, profile)
    setup = set_int8(trt, parsed, config, bundle, plan, workdir)
    placement, findings = place_on_dla(trt, parsed, config, plan.dla_core, setup.warnings, out)
    notes += setup.notes + use_timing_cache(config, cache_path)
    label = "building %s engine for %s" % (plan.precision.upper(), key.device_part)
    t1 = time.monotonic()
    engine_bytes, retry = serialize_with_retry(trt, feats, parsed, config, label, out, setup.uploader,
                                               setup.constraints)
    timings["build_s"] = round(time.monotonic() - t1, 3)
    files: Dict[str, bytes] = {}
    if plan.int8_mode == "device":
        produced = workdir / CALIBRATION_CACHE_FILE
        if not produced.is_file():
            raise DeviceError("TensorRT built the engine but wrote no calibration cache")
        files[CALIBRATION_CACHE_FILE] = produced.read_bytes()
    return BuiltEngine(engine_bytes, bytes(memoryview(config.get_timing_cache().serialize())), notes, placement,
                       findings + setup.warnings, files, timings, retry, profile.to_dict())


def _onnx_model(data: bytes) -> Any:
    from jetseg.optional import require

    return require("onnx", "INT8 from a calibration cache").load_from_string(data)


def _findings(data: bytes) -> List[Finding]:
    from jetseg.optional import require

    onnx = require("onnx", "the DLA placement report")
    return onnx_rules(onnx.load_from_string(data))


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
