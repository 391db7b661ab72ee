"""Does the INT8 model earn its place on this CPU? A short speed check at the end of ``--target cpu``.

INT8 is worth shipping only if it is faster than the fastest float precision of the same model here: on a CPU
with bf16, OpenVINO runs the FP32 model in bf16 by default, and that is what INT8 must beat, not exact FP32
(issue 22). The check times the INT8 model and the FP32 model on each CPU runner installed (ONNX Runtime: f32;
OpenVINO: f32 and each reduced float precision its CPU plugin offers), interleaved, on one preprocessed frame,
and says in one sentence whether INT8 is faster than the fastest float row and, if not, which float precision to
use instead. ``jetseg bench`` gives the full, longer measurement.
"""
from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np

from jetseg.bundle import Bundle
from jetseg.errors import JetsegError
from jetseg.optional import available

log = logging.getLogger("jetseg.calibration")

#: Timed seconds per model and runner: a rough figure, enough to tell 1.3x from 0.9x
SECONDS = 0.4
ROUNDS = 4


def _rows(fp32: Bundle, int8: Bundle) -> List[Tuple[str, Bundle, str, Dict[str, Any]]]:
    """(label, bundle, backend, options) of every row this machine can run."""
    rows: List[Tuple[str, Bundle, str, Dict[str, Any]]] = []
    if available("onnxruntime"):
        rows += [("onnxrt f32", fp32, "onnxrt", {}), ("onnxrt int8", int8, "onnxrt", {})]
    if available("openvino"):
        from jetseg.jetson.runners.openvino import cpu_float_precisions, openvino_ir

        rows += [("openvino %s" % hint, fp32, "openvino", {"precision_hint": hint})
                 for hint in ["f32"] + cpu_float_precisions()]
        rows.append(("openvino int8 q/dq", int8, "openvino", {"precision_hint": "auto", "model": "onnx"}))
        if openvino_ir(int8) is not None:  # OpenVINO's own INT8 (NNCF), what the openvino runner prefers
            rows.append(("openvino int8 nncf", int8, "openvino", {"precision_hint": "auto"}))
    return rows


def _timed(fns: Dict[str, Callable[[], Any]], seconds: float) -> Dict[str, float]:
    """Median ms per call of each callable, measured in ``ROUNDS`` interleaved rounds."""
    samples: Dict[str, List[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(ROUNDS):
        for name, fn in fns.items():
            end = time.perf_counter() + seconds / ROUNDS
            while True:
                t0 = time.perf_counter()
                fn()
                t1 = time.perf_counter()
                samples[name].append((t1 - t0) * 1e3)
                if t1 >= end:
                    break
    return {name: float(np.median(v)) for name, v in samples.items()}


def time_rows(rows: Sequence[Tuple[str, Bundle, str, Dict[str, Any]]], frame: np.ndarray,
              seconds: float = SECONDS) -> Tuple[Dict[str, float], Dict[str, str]]:
    """Median ms per call of each ``(label, bundle, backend, runner options)`` row on ``frame``, all runners
    open and timed interleaved, and what each ran in (its runner's ``ran_in``; else the bundle's precision)."""
    from jetseg.jetson.runners import open_runner

    runners: List[Any] = []
    fns: Dict[str, Callable[[], Any]] = {}
    ran_in: Dict[str, str] = {}
    try:
        for label, bundle, backend, options in rows:
            runner = open_runner(backend, bundle, **options)
            runner.activate()
            runners.append(runner)
            fns[label] = functools.partial(runner.infer, frame)
            ran_in[label] = runner.describe().get("ran_in") or ("int8" if bundle.precision == "int8" else "f32")
        ms = _timed(fns, seconds) if fns else {}
    finally:
        for runner in runners:
            runner.deactivate()
    return ms, ran_in


def speed_check(fp32_path: Path, int8_path: Path, frame: np.ndarray, seconds: float = SECONDS) -> Dict[str, Any]:
    """Time the INT8 bundle against the FP32 bundle's float precisions; return the figures and the verdict.

    Args:
        fp32_path: the FP32 bundle.
        int8_path: the INT8 bundle just written.
        frame: one preprocessed input ``(1, C, H, W) float32``.
        seconds: timed seconds per row.

    Returns:
        ``{"ms": {label: median ms}, "ran_in": {label: precision}, "fastest_float": label, "fastest_int8":
        label, "int8_vs_fastest_float": ratio, "verdict": sentence}``; ``{}`` without a CPU runner.
    """
    fp32, int8 = Bundle(fp32_path), Bundle(int8_path)
    rows = _rows(fp32, int8)
    ms, ran_in = time_rows(rows, frame, seconds)
    if not ms:
        return {}
    of_int8 = {label: bundle is int8 for label, bundle, _, _ in rows}  # the row runs the INT8 bundle
    floats = [k for k in ms if not of_int8[k]]
    int8s = [k for k in ms if of_int8[k]]
    if not floats or not int8s:
        raise JetsegError("the speed check ran no %s row (%s); expected both an FP32 and an INT8 model"
                          % ("float" if not floats else "INT8", ", ".join("%s: %s" % kv for kv in ran_in.items())))
    top_float = min(floats, key=lambda k: ms[k])
    top_int8 = min(int8s, key=lambda k: ms[k])
    ratio = ms[top_float] / ms[top_int8]
    if ran_in[top_int8] != "int8":  # the gate kept so much in float that the runtime ran no layer in INT8
        verdict = ("the INT8 model runs no layer in INT8 on %s (it ran in %s: the accuracy gate kept its layers "
                   "in float); on this machine deploy the FP32 model with %s"
                   % (top_int8, ran_in[top_int8], top_float))
    elif ratio > 1.0:
        verdict = ("INT8 (%s, %.2f ms) is %.2fx the fastest float precision here (%s, %.2f ms)"
                   % (top_int8, ms[top_int8], ratio, top_float, ms[top_float]))
    else:
        verdict = ("INT8 (%s, %.2f ms) is not faster than the fastest float precision here (%s, %.2f ms: %.2fx); "
                   "on this machine deploy the FP32 model with %s" % (top_int8, ms[top_int8], top_float,
                                                                     ms[top_float], ratio, top_float))
    return {"ms": {k: float("%.4g" % v) for k, v in ms.items()}, "ran_in": ran_in, "fastest_float": top_float,
            "fastest_int8": top_int8, "int8_vs_fastest_float": round(ratio, 3), "verdict": verdict,
            "basis": "median of %.1f s per row, %d interleaved rounds, one frame; jetseg bench measures fully"
                     % (seconds, ROUNDS)}
