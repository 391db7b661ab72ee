"""Which engine a bundle needs: the build plan (network, INT8 path), the engine key it is stored under, and
whether this device has a usable one (:func:`find_engine`).

Shared by the builder (``jetseg.engines.build``), the runner (``jetseg.jetson.runners.trt``), which
reconstructs the plan of an engine to find it, and ``--backend auto``, which asks the same question before
choosing the runner; plain Python, no TensorRT. The device's identity is a parameter (the callers ask
``jetseg.jetson.device.info``): device/ imports trt/ (key, cuda), never the other way.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from jetseg import trtcompat
from jetseg.bundle import CALIBRATION_CACHE_FILE, FP32_MODEL_FILE, Bundle, sha256_file
from jetseg.errors import BundleError, JetsegError
from jetseg.jetson.trt import store
from jetseg.jetson.trt.key import EngineKey, slug, stale_reasons
from jetseg.onnxgraph import has_qdq
from jetseg.optional import available

#: The calibration hash of engines calibrated on the device (their cache is made during the build).
DEVICE_CALIBRATED = hashlib.sha256(b"calibrated on the device").hexdigest()


@dataclass
class BuildPlan:
    """What will be built, decided before any TensorRT call (unit-testable)."""

    precision: str
    dla_core: Optional[int]
    int8_mode: str  # "none", "qdq" (explicit), "cache" (implicit, calibration.cache) or "device" (calibrate here)
    strip_qdq: bool
    calibration_cache: Optional[Path]
    calib_scans: Optional[str] = None  # "device": the source URI of the frames to calibrate with
    calib_count: int = 0
    network: Optional[Path] = None  # the ONNX file to parse (None: the bundle's model.onnx)
    batch: int = 1  # the profile's largest batch (jetseg build --batch N; jetson/trt/profile.py)


def plan_build(bundle: Bundle, precision: str, dla_core: Optional[int], qdq: bool,
               calib_scans: Optional[str] = None, calib_count: int = 100, batch: int = 1) -> BuildPlan:
    """Choose the network and the INT8 path; user mistakes raise one-line errors.

    Args:
        qdq: whether the bundle's model.onnx has Q/DQ nodes.
        calib_scans: calibrate on the device from this source (implicit INT8, TensorRT's calibrator).
        calib_count: frames to calibrate with.
        batch: the largest batch of the engine's profile (the ONNX is checked at build time).
    """
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise JetsegError("--batch %r is invalid; expected an integer >= 1" % (batch,))
    plan = _plan(bundle, precision, dla_core, qdq, calib_scans, calib_count)
    plan.batch = batch
    return plan


def _plan(bundle: Bundle, precision: str, dla_core: Optional[int], qdq: bool, calib_scans: Optional[str],
          calib_count: int) -> BuildPlan:
    if precision not in trtcompat.PRECISIONS:
        raise JetsegError("--precision %r is unknown; expected one of %s" % (precision, ", ".join(trtcompat.PRECISIONS)))
    if dla_core is not None and precision == "fp32":
        raise JetsegError("the DLA runs FP16 and INT8 only; got --precision fp32 with --dla %d (use fp16 or int8, "
                          "or drop --dla)" % dla_core)
    cache = bundle.file(CALIBRATION_CACHE_FILE)
    cache_path = cache if cache.is_file() else None
    if calib_scans:
        if precision != "int8":
            raise JetsegError("--calib-scans calibrates INT8; got --precision %s" % precision)
        if calib_count < 1:
            raise JetsegError("--calib-count %d is invalid; expected a positive number of frames" % calib_count)
        if qdq or cache_path is not None:
            raise JetsegError("bundle %s already carries INT8 scales (%s); drop --calib-scans, or give the FP32 "
                              "bundle" % (bundle.path, "Q/DQ nodes" if qdq else CALIBRATION_CACHE_FILE))
        return BuildPlan(precision, dla_core, "device", False, None, calib_scans, calib_count)
    if precision != "int8":
        if qdq:
            raise BundleError("bundle %s is an INT8 (Q/DQ) bundle; build --precision int8 from it, or build %s "
                              "from the FP32 bundle it was calibrated from" % (bundle.path, precision))
        return BuildPlan(precision, dla_core, "none", False, None)
    if dla_core is not None:
        if cache_path is None:
            raise BundleError("DLA INT8 needs a TensorRT calibration cache (%s) in bundle %s; make an INT8 bundle "
                              "with 'jetseg calibrate %s --target tensorrt --out BUNDLE-int8'"
                              % (CALIBRATION_CACHE_FILE, bundle.path, bundle.path))
        fp32 = bundle.file(FP32_MODEL_FILE)
        if fp32.is_file():  # the float model the cache was computed for (calibration/workflow.py writes it)
            return BuildPlan(precision, dla_core, "cache", False, cache_path, network=fp32)
        needed = _fp32_graph_needed(bundle)
        if needed:
            raise BundleError("DLA INT8 parses the FP32 graph the calibration cache refers to (%s, sha256 %s), and "
                              "bundle %s does not ship it (calibrated with --target cpu, which leaves it out); "
                              "calibrate with --target tensorrt for the device, or copy that graph into the "
                              "bundle as %s" % (FP32_MODEL_FILE, needed[:12], bundle.path, FP32_MODEL_FILE))
        return BuildPlan(precision, dla_core, "cache", qdq, cache_path)
    if qdq:
        return BuildPlan(precision, None, "qdq", False, None)
    if cache_path is not None:
        return BuildPlan(precision, None, "cache", False, cache_path)
    raise BundleError("bundle %s is FP32 (no Q/DQ nodes, no %s); calibrate it first: 'jetseg calibrate %s "
                      "--target tensorrt --out BUNDLE-int8', then build that bundle (or calibrate here with "
                      "--calib-scans SOURCE)" % (bundle.path, CALIBRATION_CACHE_FILE, bundle.path))


def _fp32_graph_needed(bundle: Bundle) -> Optional[str]:
    """The sha256 of the FP32 graph a cpu-target bundle's cache refers to but does not ship, else None (a
    TensorRT-form bundle without it is built from its own model.onnx, Q/DQ stripped)."""
    record = bundle.calibration()
    if record is None or record.target != "cpu" or record.fp32_model:
        return None
    return record.fp32_model_sha256


def runtime_plan(bundle: Bundle, precision: str, dla_core: Optional[int], qdq: bool, batch: int = 1) -> BuildPlan:
    """The plan an engine of ``precision`` was built with, as the runner reconstructs it: like
    :func:`plan_build`, except that INT8 from an FP32 bundle means "calibrated on the device"."""
    if precision == "int8" and not qdq and not bundle.file(CALIBRATION_CACHE_FILE).is_file():
        return BuildPlan(precision, dla_core, "device", False, None, "(on the device)", 0, batch=batch)
    return plan_build(bundle, precision, dla_core, qdq, batch=batch)


def build_flags(plan: BuildPlan) -> str:
    """The builder flags and INT8 path of a plan as one key part: ``fp16``, ``fp16+int8:qdq``,
    ``fp16+int8:cache+gpu_fallback`` (FP16 is always allowed with INT8; GPU_FALLBACK with a DLA core)."""
    parts = {"fp32": [], "fp16": ["fp16"], "int8": ["fp16", "int8:%s" % plan.int8_mode]}[plan.precision]
    if plan.dla_core is not None:
        parts.append("gpu_fallback")
    return "+".join(parts) or "none"


def current_key(bundle: Bundle, plan: BuildPlan, trt_version: str, soc: str, cc: str, module: str = "unknown",
                via: str = "onnx") -> EngineKey:
    calib = sha256_file(plan.calibration_cache) if plan.int8_mode == "cache" and plan.calibration_cache else None
    if plan.int8_mode == "device":  # the cache is made during the build (build.json records from what)
        calib = DEVICE_CALIBRATED
    return EngineKey(soc=soc, compute_capability=cc, trt_version=trtcompat.short_version(trt_version),
                     precision=plan.precision, dla_core=plan.dla_core, model_sha256=bundle.model_sha256,
                     calibration_sha256=calib, module=module, via=via, flags=build_flags(plan), batch=plan.batch)


@dataclass
class EngineLookup:
    """The answer of :func:`find_engine`: the engine to load, or why there is none and what to run.

    Attributes:
        key: the engine's key (when usable, the one to load; otherwise the one looked for, None when the
            precision could not be decided).
        problem: empty when usable; else one clause saying why no engine can be used (``no usable engine K for
            this device (stale: model: engine 1a2b.., here 3c4d..)``).
        fix: empty when usable; else what to do (``rebuild it with 'jetseg build B --precision fp16'``).
    """

    key: Optional[EngineKey]
    problem: str = ""
    fix: str = ""

    @property
    def usable(self) -> bool:
        return not self.problem

    @property
    def message(self) -> str:
        """``problem; fix`` (empty when usable)."""
        return "%s; %s" % (self.problem, self.fix) if self.problem else ""


def find_engine(bundle: Bundle, trt_version: str, soc: str, cc: str, module: str = "unknown",
                precision: Optional[str] = None, dla_core: Optional[int] = None,
                batch: Optional[int] = None) -> EngineLookup:
    """The engine of ``bundle`` that this device (``soc``, ``cc``, ``module``, TensorRT ``trt_version``) can
    load for ``precision`` (None: the one precision built for this device) and ``dla_core`` (None: the GPU).

    An engine is usable only when its key is the current one and its record and file check out
    (:func:`store.status`); an engine of the same device built from another model or calibration is reported
    as stale, engines of other devices or TensorRT versions are named. Raises a JetsegError for a bundle that
    cannot have the engine asked for (:func:`plan_build`'s one-line errors). ``batch`` None: the one batch
    built for this device, precision and target (1 when none is built).
    """
    device_part = "%s-sm%s-trt%s" % (slug(soc), cc, trtcompat.short_version(trt_version))
    if precision is None:
        target = None if dla_core is None else "dla%d" % dla_core
        precisions = sorted({name.split("-")[-3] for name in store.find_for_device(bundle, device_part, target=target)})
        if len(precisions) > 1:
            return EngineLookup(None, "bundle %s has engines of several precisions (%s) for this device (%s)"
                                % (bundle.path, ", ".join(precisions), device_part),
                                "choose one with the backend option precision=...")
        if not precisions:
            others = [name for name, _ in store.list_engines(bundle)]
            return EngineLookup(None, "bundle %s has no engine for this device (%s)%s" % (
                bundle.path, device_part, ", only engines built for another device, TensorRT version or target (%s)"
                % ", ".join(others) if others else ""),
                "build one here with '%s'" % _build_command(bundle, "fp16", dla_core, False))
        precision = precisions[0]
    if batch is None:
        target = "gpu" if dla_core is None else "dla%d" % dla_core
        names = set(store.find_for_device(bundle, device_part, precision, target))
        batches = sorted({int(record.key.get("batch", 1)) for name, record in store.list_engines(bundle)
                          if record is not None and name in names})
        if len(batches) > 1:
            return EngineLookup(None, "bundle %s has %s engines of several batches (%s) for this device (%s)"
                                % (bundle.path, precision, ", ".join(str(b) for b in batches), device_part),
                                "choose one with the backend option batch=...")
        batch = batches[0] if batches else 1
    plan = runtime_plan(bundle, precision, dla_core, qdq=bundle_has_qdq(bundle), batch=batch)
    # An engine built either way (jetseg build --via onnx, the default, or --via torch2trt) is usable.
    keys = [current_key(bundle, plan, trt_version, soc, cc, module, via) for via in ("onnx", "torch2trt")]
    states = [store.status(bundle, key) for key in keys]
    for key, (state, _) in zip(keys, states):
        if state == store.OK:
            return EngineLookup(key)
    key, (state, reasons) = keys[0], states[0]
    rebuild = _build_command(bundle, key.precision, key.dla_core, force=state != store.MISSING, batch=key.batch)
    old = [path.name for path in store.superseded(bundle, key)]
    if state == store.MISSING and old:  # built on this device from another model or calibration
        state, reasons = store.STALE, _record_reasons(bundle, old[0], key)
    elif state == store.MISSING:
        others = store.explain_others(bundle, key)
        reasons = ["engines present: " + " | ".join(others) if others else "no engines in the bundle"]
    return EngineLookup(key, "no usable engine %s for this device (%s: %s)" % (key, state, "; ".join(reasons)),
                        "%s it here with '%s'" % ("build" if state == store.MISSING else "rebuild", rebuild))


def _record_reasons(bundle: Bundle, name: str, key: EngineKey) -> List[str]:
    record = store.read_record(store.engines_root(bundle) / name)
    return ["%s: %s" % (name, "; ".join(stale_reasons(record.key, key)))] if record else [name]


def _build_command(bundle: Bundle, precision: str, dla_core: Optional[int], force: bool, batch: int = 1) -> str:
    return "jetseg build %s --precision %s%s%s%s" % (bundle.path, precision, "" if dla_core is None else
                                                     " --dla %d" % dla_core, "" if batch == 1 else " --batch %d" % batch,
                                                     " --force" if force else "")


def bundle_has_qdq(bundle: Bundle) -> bool:
    """Whether the bundle's model.onnx has Q/DQ nodes (the manifest's precision when onnx is missing)."""
    if available("onnx"):
        import onnx

        return has_qdq(onnx.load(str(bundle.model_path), load_external_data=False))
    return bundle.precision == "int8"
