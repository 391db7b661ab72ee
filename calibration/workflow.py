"""``jetseg calibrate`` as a function: FP32 bundle + representative scans -> INT8 bundle that passed the gate.

Steps: read and preprocess the scans (:mod:`.scans`), choose the calibration and held-out frames
(:mod:`.curate`), prepare the model and compute the per-tensor ranges once (:mod:`.quantize`), quantize for
the target, score INT8 against FP32 on the held-out frames and keep the most harmful layers in float until
the gate passes (:mod:`.gate`), check TensorRT's Q/DQ rules (:mod:`.check`), write the TensorRT calibration
cache (:mod:`.cache`) and the bundle, atomically. Nothing is written unless everything succeeded.

INT8 bundle layout::

    model.onnx          Q/DQ INT8 model for the target (same input/output names and static shapes)
    model.openvino.xml  --target cpu, with nncf installed: OpenVINO's own INT8 (NNCF, same frames, same gate),
    model.openvino.bin  kept when not slower than model.onnx on OpenVINO; the openvino runner prefers it
                        (calibration.json ``openvino`` says whether it was kept and why)
    model.fp32.onnx     the prepared FP32 model the ranges and the cache refer to (implicit INT8 / DLA builds);
                        --target tensorrt only: a cpu-target bundle ships what the CPU needs and records the
                        prepared model's sha256 instead (calibration.json ``implicit_int8``)
    calibration.cache   TensorRT calibration cache (TRT-<version>-EntropyCalibration2 or MinMaxCalibration), without
                        the tensors the accepted model keeps in float (the logits, inputs read by float layers only)
    calibration.json    method, target, frames and hashes, ranges, gate results, layers kept in float (and, under
                        implicit_int8, the tensors a calibration-cache build keeps in FP16), versions
    spec.yaml, manifest.json
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from jetseg.bundle import (
    CALIBRATION_CACHE_FILE,
    FP32_MODEL_FILE,
    Bundle,
    check_out,
    command_line,
    save_bundle,
    sha256_file,
    uri_path,
    versions,
)
from jetseg.calibration.check import check_qdq, format_violations, summary
from jetseg.calibration.curate import group_of, split
from jetseg.calibration.gate import Gate, fall_back, rank_layers
from jetseg.calibration.gate_flow import MAX_EPE_P95, FlowGate, calibration_feeds, held_out_pairs, warp_nodes
from jetseg.calibration.gate_image import MAX_PSNR_DROP, MIN_SSIM, ImageGate
from jetseg.calibration.nncfquant import calibrate_openvino
from jetseg.calibration.quantize import (
    METHODS,
    TARGETS,
    compute_ranges,
    io_signature,
    prepare_model,
    quantizable_nodes,
    quantize,
    ranges_of,
)
from jetseg.calibration.scans import read_scans
from jetseg.calibration.speedcheck import speed_check
from jetseg.errors import BundleError, GateError, JetsegError
from jetseg.evaluate import BENCH_FRAMES
from jetseg.jetson.frames.roi import RoiMode
from jetseg.jetson.trt import cache as trtcache
from jetseg.jetson.trt.floatlayers import float_keep
from jetseg.onnxgraph import default_opset
from jetseg.optional import require
from jetseg.pids import running
from jetseg.records import CALIBRATION_REPORT_FILE, CalibrationRecord
from jetseg.trtcompat import DEFAULT_TRT_VERSION, opset_problem

log = logging.getLogger("jetseg.calibration")

#: Work folders in the temporary directory: ``jetseg-calibrate.<pid>.<random>``.
WORK_PREFIX = "jetseg-calibrate."


def default_out(bundle: Union[str, Path]) -> Path:
    """``./<bundle name>-int8`` in the working directory (never inside an installed package's bundles)."""
    return Path.cwd() / (Path(bundle).resolve().name + "-int8")


def remove_stale_work_folders() -> List[Path]:
    """Remove work folders of calibrations whose process is gone (killed before it could clean up)."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob(WORK_PREFIX + "*"):
        pid = path.name[len(WORK_PREFIX):].split(".")[0]
        if path.is_dir() and pid.isdigit() and not running(int(pid)):
            shutil.rmtree(str(path), ignore_errors=True)
            log.info("removed %s, left by an interrupted calibration", path)
            removed.append(path)
    return removed


def remove_own_work_folders() -> None:
    """Remove this process's work folders (on SIGTERM, before exiting)."""
    for path in Path(tempfile.gettempdir()).glob("%s%d.*" % (WORK_PREFIX, os.getpid())):
        shutil.rmtree(str(path), ignore_errors=True)


def _check_options(method: str, target: str, count: int, holdout: int, gate_dice: float, max_fallback: int) -> None:
    if method not in METHODS:
        raise JetsegError("--method %r is unknown; expected one of %s" % (method, ", ".join(METHODS)))
    if target not in TARGETS:
        raise JetsegError("--target %r is unknown; expected one of %s" % (target, ", ".join(TARGETS)))
    if not isinstance(gate_dice, (int, float)) or not 0.0 <= gate_dice <= 1.0:
        raise JetsegError("--gate-dice %r is invalid; expected a Dice drop between 0 and 1 (default 0.01)"
                          % (gate_dice,))
    if not isinstance(max_fallback, int) or max_fallback < 0:
        raise JetsegError("--max-fallback %r is invalid; expected 0 or more layers" % (max_fallback,))
    for flag, value in (("--count", count), ("--holdout", holdout)):
        if not isinstance(value, int) or value < 1:
            raise JetsegError("%s %r is invalid; expected a positive number of frames" % (flag, value))


def _ordered_ranges(model_path: Path, ranges: Dict[str, Any]) -> Dict[str, List[float]]:
    """Ranges in graph order: inputs first, then each node's outputs."""
    onnx = require("onnx", "INT8 calibration")
    model = onnx.load(str(model_path))
    order = [i.name for i in model.graph.input] + [o for n in model.graph.node for o in n.output]
    out = {name: [float(ranges[name][0]), float(ranges[name][1])] for name in order if name in ranges}
    return out


def calibrate(bundle: Union[str, Path, Bundle], scans: str, out: Optional[Union[str, Path]] = None,
              method: str = "entropy", count: int = 64, holdout: int = 32, target: str = "tensorrt",
              gate_dice: float = 0.01, max_fallback: int = 8, max_frames: int = 300,
              trt_version: str = DEFAULT_TRT_VERSION, memory_mb: float = 1024.0,
              overwrite: bool = False, progress: bool = True,
              roi: Union[RoiMode, Sequence[int]] = "spec", gate_psnr: float = MAX_PSNR_DROP,
              gate_ssim: float = MIN_SSIM, gate_epe: float = MAX_EPE_P95) -> Dict[str, Any]:
    """Calibrate ``bundle`` on ``scans`` and write the INT8 bundle to ``out``; return the report.

    ``roi`` (``auto``, ``spec``, ``none``, ``[x, y, w, h]`` or ``{"relative": [x, y, w, h]}``, as ``run --roi``) crops every file's frames to
    the box ``run`` would use; calibration.json records it per file, and ``run``'s default follows it.
    Enhancement bundles are gated on SSIM against FP32 (``gate_ssim``) and the PSNR drop against clean
    targets (``gate_psnr`` dB; :mod:`.gate_image`), registration bundles on the EPE of INT8 against FP32
    (``gate_epe`` px, p95), the warped-label Dice drop (``gate_dice``) and folding (:mod:`.gate_flow`),
    segmentation bundles on the Dice drop (``gate_dice``).

    Raises:
        GateError: INT8 stays worse than ``gate_dice`` even with ``max_fallback`` layers in float.
        JetsegError: bad options, unusable scans, a model that breaks TensorRT's Q/DQ rules.
    """
    _check_options(method, target, count, holdout, gate_dice, max_fallback)
    trtcache.version_number(trt_version)  # validates the version string early
    fp32 = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    if fp32.precision != "fp32":
        raise BundleError("bundle %s is already %s; calibrate the FP32 bundle it came from" % (fp32.path, fp32.precision))
    out = Path(out) if out is not None else default_out(fp32.path)
    inputs = [fp32.path, uri_path(scans)]
    check_out(out, overwrite, inputs)
    remove_stale_work_folders()
    spec = fp32.spec
    spec.require_task("jetseg calibrate", "segmentation", "enhancement", "registration")
    onnx = require("onnx", "INT8 calibration")
    problem = opset_problem(default_opset(onnx.load(str(fp32.model_path), load_external_data=False)))
    if target == "tensorrt" and problem:
        raise JetsegError("%s has %s, or use --target cpu" % (fp32.model_path, problem))

    scanset = read_scans(scans, spec, max_frames=max_frames, memory_mb=memory_mb, progress=progress, roi=roi)
    groups = [group_of(item["source"]) for item in scanset.ids]
    calib_idx, held_idx, split_method = split(scanset.thumbs, count, holdout, groups)
    check_idx = list(range(min(len(scanset), BENCH_FRAMES)))
    tensors = scanset.tensors(calib_idx + held_idx + check_idx, progress=progress)
    calib_x, held_x = tensors[:len(calib_idx)], tensors[len(calib_idx):len(calib_idx) + len(held_idx)]
    check_x = tensors[len(calib_idx) + len(held_idx):]
    held_labels = [scanset.labels[i] for i in held_idx]
    check_labels = [scanset.labels[i] for i in check_idx]
    log.info("calibrating on %d frame(s), gating on %d held-out frame(s) of %d read from %s",
             len(calib_idx), len(held_idx), len(scanset), scans)

    with tempfile.TemporaryDirectory(prefix="%s%d." % (WORK_PREFIX, os.getpid())) as tmp:
        work = Path(tmp)
        prepared = work / FP32_MODEL_FILE
        prepare_model(fp32.model_path, prepared)
        registration = spec.task == "registration"  # pairs of each frame and its known deformation (gate_flow)
        data = compute_ranges(prepared, spec.input.name, calibration_feeds(spec, calib_x) if registration else calib_x,
                              method, work, progress=progress)
        ranges = _ordered_ranges(prepared, ranges_of(data))
        in_float: List[str] = []  # the warp of a registration model stays in float (gate_flow.warp_nodes)
        if registration:
            flow_gate = FlowGate(fp32, held_out_pairs(held_x), held_labels, gate_epe, gate_dice, work,
                                 progress=progress, check_inputs=held_out_pairs(check_x), check_labels=check_labels)
            in_float = flow_gate.warp_nodes = warp_nodes(onnx.load(str(prepared)), spec.output.name)
            gate: Gate = flow_gate
        elif spec.task == "enhancement":  # clean targets when every scan carries one (scans.py), else None
            gate = ImageGate(fp32, held_x, scanset.targets(held_idx, progress), gate_psnr, gate_ssim, work,
                             progress=progress, check_inputs=check_x, check_targets=scanset.targets(check_idx, progress))
        else:
            gate = Gate(fp32, held_x, held_labels, gate_dice, work, progress=progress, check_inputs=check_x,
                        check_labels=check_labels)
        candidate = work / "int8.onnx"

        def attempt(exclude: List[str]) -> Dict[str, Any]:
            quantize(prepared, candidate, data, target, exclude=exclude + in_float)
            result = gate.score(candidate)
            log.info("gate: %s (%s, %d layer(s) in float) -> %s", gate.describe(result), gate.limits(),
                     len(exclude), "pass" if result["passed"] else "fail")
            return result

        def rank() -> List[Dict[str, Any]]:
            nodes = [n for n in quantizable_nodes(onnx.load(str(prepared)), target) if n not in in_float]
            return rank_layers(gate, nodes, lambda name, path: quantize(prepared, path, data, target, only=[name]),
                               progress=progress)

        done = fall_back(attempt, rank, max_fallback)
        history, exclude, ranking, final = done.history, done.exclude, done.ranking, done.final
        if not final["passed"]:
            if not exclude:
                tried = "no layer fallback (--max-fallback 0)"
            else:
                tried = "kept in float: %s" % ", ".join(exclude)
            failed = final if not gate.verdict(final) else final["bench_frames"]
            where = "held-out" if failed is final else "first (as jetseg bench reads them)"
            why, loosen = gate.failure(failed)
            raise GateError("INT8 fails the accuracy gate: %s on %d %s frames (%s); try --method percentile or "
                            "minmax, more --count, a higher --max-fallback, or %s"
                            % (why, failed["frames"], where, tried, loosen))
        # ``candidate`` now holds the model of the last (passing) attempt
        notice = fallback_notice(len(exclude), len(ranking or [])) if target == "tensorrt" else ""
        if notice:  # ranking: every quantizable layer once; the cpu target measures its speed instead
            log.warning(notice)
        # OpenVINO's own INT8 from the same frames, past the same gate (calibration/nncfquant.py)
        openvino = calibrate_openvino(prepared, calib_x, gate, candidate, work, max_fallback, progress) \
            if target == "cpu" and not registration else None  # NNCF's reader here feeds one input
        if target == "cpu" and registration:
            log.info("no OpenVINO INT8 (NNCF) and no speed check for a two-input model yet: model.onnx only")

        qmodel = onnx.load(str(candidate))
        violations = check_qdq(qmodel) if target == "tensorrt" else []
        if violations:
            raise JetsegError("the INT8 model breaks %d TensorRT Q/DQ rule(s), first: %s (run with -v for all)"
                              % (len(violations), violations[0]))
        log.debug("Q/DQ check: %s", format_violations(violations) or "passed")
        before, after = io_signature(onnx.load(str(fp32.model_path))), io_signature(qmodel)
        if before != after:
            raise JetsegError("quantization changed the model's inputs/outputs %s -> %s" % (before, after))

        # The cache leaves out what the accepted model never quantizes (logits, inputs read by float layers
        # only), so that implicit INT8 (DLA) builds the model the gate accepted (jetson/trt/floatlayers.py).
        keep = float_keep(onnx.load(str(prepared)), exclude + in_float)
        cache_bytes = trtcache.dumps({name: scale for name, scale in trtcache.scales_from_ranges(ranges).items()
                                      if name not in set(keep.uncached)}, trt_version, method)
        fp32_size, int8_size = fp32.model_path.stat().st_size, candidate.stat().st_size
        record = CalibrationRecord(
            method=method,
            target=target,
            trt_version=trt_version,
            fp32_bundle={"path": str(fp32.path), "model_sha256": fp32.model_sha256},
            scans={"uri": scans, "frames_read": len(scanset), "skipped_files": scanset.skipped,
                   "truncated_at_max_frames": scanset.truncated, "files": scanset.files},
            curation={"strategy": "calibration k-center greedy on 16x16 thumbnails",
                      "split": {"method": split_method, "files": len(set(groups)),
                                "heldout_files": sorted({groups[i] for i in held_idx})},
                      "calibration_frames": [scanset.ids[i] for i in calib_idx],
                      "holdout_frames": [scanset.ids[i] for i in held_idx],
                      "bench_frames": len(check_idx)},
            roi={"mode": roi if isinstance(roi, (str, dict)) else [int(v) for v in roi], "files": scanset.rois},
            gate=dict(gate.record(final), task=spec.task, passed=True, bases=final["bases"], result=final,
                      attempts=history, sensitivity=ranking or []),
            float_layers=list(exclude),
            model={"opset": default_opset(qmodel), "qdq": summary(qmodel), "fp32_size_bytes": fp32_size,
                   "int8_size_bytes": int8_size, "size_ratio": round(int8_size / float(fp32_size), 4),
                   "io": after},
            tensorrt_check={"checked": target == "tensorrt", "violations": [str(v) for v in violations]},
            # the FP32 graph the cache refers to: shipped for TensorRT (DLA builds parse it), else only named
            implicit_int8=dict({"model": FP32_MODEL_FILE if target == "tensorrt" else None,
                                "model_sha256": sha256_file(prepared),
                                "derived_from": {"fp32_model_sha256": fp32.model_sha256,
                                                 "by": "jetseg.calibration.quantize.prepare_model"},
                                "cache": CALIBRATION_CACHE_FILE, "header": trtcache.loads(cache_bytes).header},
                               **keep.to_dict()),
            ranges=ranges,
            versions=versions(),
            openvino=openvino.record if openvino is not None else None,
        )
        provenance = {"command": command_line(), "from_bundle": str(fp32.path),
                      "from_model_sha256": fp32.model_sha256, "scans": scans,
                      "source_files": scanset.files, "method": method, "target": target}
        extra: Dict[str, Any] = {CALIBRATION_CACHE_FILE: cache_bytes,
                                 CALIBRATION_REPORT_FILE: record.to_json().encode("utf-8")}
        if target == "tensorrt":
            extra[FP32_MODEL_FILE] = prepared
        if openvino is not None:
            extra.update(openvino.files)
        save_bundle(out, candidate, spec, precision="int8", provenance=provenance, overwrite=overwrite,
                    extra_files=extra, inputs=inputs)
    report = dict(record.to_dict(), out=str(out))
    if target == "cpu" and not registration:  # INT8 vs the fastest float here (speedcheck.py; one input)
        report["speed"] = speed_check(fp32.path, out, held_x[0])
        if report["speed"]:
            (log.info if report["speed"]["int8_vs_fastest_float"] > 1.0 else log.warning)(report["speed"]["verdict"])
    log.info("wrote %s (%s, %s; %d KB = %.0f%% of FP32; %s)", out, target, method,
             int8_size // 1024, 100.0 * int8_size / fp32_size, gate.describe(final))
    return report


#: the share of quantizable layers kept in float from which INT8 is often no faster than FP32 (each float
#: layer between INT8 ones adds a dequantize/quantize pair and breaks layer fusion; MONAI UNets with 16-19
#: layers in float measured 0.85x of FP32 on TensorRT)
SLOW_FALLBACK_SHARE = 0.25


def fallback_notice(float_layers: int, quantizable: int) -> str:
    """The warning calibrate gives when layer fallback kept so many of the ``quantizable`` layers in float that
    INT8 may be slower than FP32 (at least :data:`SLOW_FALLBACK_SHARE` of them), with what to try; empty when
    it did not."""
    total = quantizable
    if float_layers <= 0 or total <= 0 or float_layers < SLOW_FALLBACK_SHARE * total:
        return ""
    return ("%d of %d quantizable layers are kept in float to pass the gate: each one between INT8 layers adds "
            "conversions, and with this many INT8 often runs slower than FP32; measure it (jetseg bench INT8 "
            "--reference FP32), and try --method percentile or minmax, more --count, a larger --gate-dice, or "
            "FP16 instead (jetseg build --precision fp16)" % (float_layers, total))
