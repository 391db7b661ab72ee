"""`jetseg selftest --out DIR`: what works on this machine, as a report to attach to an issue.

Portable checks run everywhere (bundled models, preprocessing, the CPU path: ONNX Runtime and OpenVINO, INT8
calibration at the calibration's own Dice gate with the TensorRT Q/DQ checker and the calibration cache). Device
checks run on a Jetson (capture: V4L2 devices and JetPack's GStreamer elements) and with TensorRT (engines FP32 /
FP16 / INT8 with their build logs, DLA INT8 with the placement TensorRT chose, the trt runner against ONNX
Runtime, fps of the bundled model per precision, the daemon on trt, power and nvpmodel); elsewhere they are
skipped with the reason. Writes DIR/report.json and DIR/report.md; ``--merge-junit FILE`` adds the on-device
pytest's results to that report instead (``./setup.sh test-device`` does both). Exit status: 0 when no check
failed.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

HELP = "check what works on this machine (portable and device checks); writes report.json and report.md"

Check = Tuple[str, str, Callable[[], Any]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="directory for report.json and report.md")
    parser.add_argument("--model", default="ultrasound", help="bundled model for the checks (default ultrasound)")
    parser.add_argument("--calib-count", type=int, default=16, help="frames to calibrate with (default 16)")
    parser.add_argument("--merge-junit", metavar="FILE", help="run no check: add pytest's JUnit XML FILE to the "
                        "report in --out (./setup.sh test-device)")


class _State:
    """What earlier checks produced for later ones (the INT8 bundle, the work folder)."""

    def __init__(self, work: Path, model: str, calib_count: int) -> None:
        self.work = work
        self.model = model
        self.calib_count = calib_count
        self.int8: Optional[Path] = None
        self.frame: Any = None
        self.out: Optional[Path] = None  # the report folder (engine build logs go there)
        self.logs: Dict[str, str] = {}  # check name -> its build log, relative to the report folder


def model_inputs(spec: Any, frame: Any) -> Dict[str, Any]:
    """Keyword arguments of ``Runner.infer`` for one preprocessed frame: a registration model gets the same frame
    as its fixed image (docs/tasks.md)."""
    reg = spec.registration
    return {"extra_inputs": {reg.fixed_input: frame}} if reg is not None else {}


def agreement(spec: Any, expected: Any, got: Any, what: str) -> Any:
    """``(detail, data)`` of two runners' outputs for one frame, or AssertionError: the share of pixels whose class
    agrees (99% at least), or for a registration model the end-point error of the fields (p95 at most 0.5 px)."""
    import numpy as np

    if spec.registration is not None:
        from jetseg.flowscores import endpoint_error, to_pixels

        epe = endpoint_error(to_pixels(got, spec.registration.units), to_pixels(expected, spec.registration.units))
        p95 = float(np.percentile(epe, 95))
        if p95 > 0.5:
            raise AssertionError("%s: field end-point error p95 %.3f px; expected <= 0.5 px" % (what, p95))
        return "%s: field end-point error p95 %.4f px" % (what, p95), {"epe_p95": p95}
    agree = float(np.mean(np.argmax(expected, axis=1) == np.argmax(got, axis=1)))
    if agree < 0.99:
        raise AssertionError("%s agree on %.1f%% of pixels; expected >= 99%%" % (what, 100 * agree))
    return "%s: %.2f%% of pixels agree" % (what, 100 * agree), {"pixel_agreement": agree}


def portable_checks(state: _State) -> List[Check]:
    from jetseg import selftest
    from jetseg.bundle import Bundle
    from jetseg.models import bundled, bundled_names

    def bundles() -> Any:
        names = bundled_names()
        for name in names:
            Bundle(bundled(name), verify=True)
        return "%d bundled model(s) verified against their manifests: %s" % (len(names), ", ".join(names))

    def preprocessing() -> Any:
        from jetseg.jetson.sources import open_source

        bundle = Bundle(bundled(state.model))
        with open_source("synthetic://%s?frames=2&seed=3" % state.model) as source:
            frame = next(iter(source))
        state.frame = bundle.spec.preprocess(frame.image)
        expected = tuple(bundle.spec.input_shape)
        if tuple(state.frame.shape) != expected or str(state.frame.dtype) != "float32":
            raise AssertionError("preprocess gave %s %s; expected %s float32"
                                 % (state.frame.shape, state.frame.dtype, expected))
        return "synthetic frame %s -> %s float32" % (frame.image.shape, expected)

    def onnxruntime() -> Any:
        import onnxruntime as ort

        from jetseg.jetson.runners import open_runner

        if state.frame is None:
            preprocessing()
        bundle = Bundle(bundled(state.model))
        with open_runner("onnxrt", bundle) as runner:
            out = runner.infer(state.frame, **model_inputs(bundle.spec, state.frame))
        return "onnxruntime %s: output %s" % (ort.__version__, tuple(out.shape)), {"onnxruntime": ort.__version__}

    def openvino() -> Any:

        from jetseg.jetson.runners import open_runner
        from jetseg.optional import available

        if not available("openvino"):
            raise selftest.Skip("OpenVINO is not installed (the x86 CPU runtime: pip install 'jetseg[openvino]')")
        if state.frame is None:
            preprocessing()
        bundle = Bundle(bundled(state.model))
        inputs = model_inputs(bundle.spec, state.frame)
        with open_runner("onnxrt", bundle) as ref, open_runner("openvino", bundle) as ov:
            expected, got = ref.infer(state.frame, **inputs), ov.infer(state.frame, **inputs)
        return agreement(bundle.spec, expected, got, "OpenVINO vs ONNX Runtime")

    def calibration() -> Any:
        from jetseg.bundle import CALIBRATION_CACHE_FILE
        from jetseg.calibration.check import check_qdq, format_violations
        from jetseg.calibration.workflow import calibrate
        from jetseg.jetson.trt import cache

        out = state.work / ("%s-int8" % state.model)
        # The Dice gate is calibrate's own default (0.01), the one users get.
        report = calibrate(bundled(state.model), "synthetic://%s?frames=64&seed=11" % state.model, out=out,
                           target="tensorrt", count=state.calib_count, holdout=8, max_fallback=2, max_frames=64,
                           progress=False)
        violations = check_qdq(out / "model.onnx")
        if violations:
            raise AssertionError("Q/DQ checker: " + format_violations(violations, limit=3))
        parsed = cache.read(out / CALIBRATION_CACHE_FILE)
        state.int8 = out
        drop = report["gate"]["result"]["dice_drop"]
        return ("INT8 (tensorrt target) passes the Q/DQ checker; %s with %d tensors; held-out Dice drop %s"
                % (parsed.header, len(parsed.scales), "%.4f" % drop if drop is not None else "n/a"),
                {"dice_drop": drop, "float_layers": report.get("float_layers")})

    return [("bundles", "portable", bundles), ("preprocessing", "portable", preprocessing),
            ("onnxruntime", "portable", onnxruntime), ("openvino", "portable", openvino),
            ("calibration", "portable", calibration)]


def device_checks(state: _State) -> List[Check]:
    """The checks that need the Jetson's GPU, DLA and TensorRT. Unverified on a device so far: their report is
    what this command exists to collect."""
    from jetseg import selftest, trtcompat
    from jetseg.bundle import Bundle
    from jetseg.jetson.device.info import describe
    from jetseg.models import bundled

    info = describe(run_tools=False)
    why = selftest.reason_not_on_device(trtcompat.installed_version(), info.is_jetson)
    not_jetson = selftest.reason_not_on_device("capture needs no TensorRT", info.is_jetson)  # Jetson only

    def needs_device(fn: Callable[[], Any], reason: Optional[str] = why) -> Callable[[], Any]:
        def wrapped() -> Any:
            if reason is not None:
                raise selftest.Skip(reason)
            return fn()
        return wrapped

    def build_log(name: str) -> Any:
        """The file an engine check's build prints to (its log is attached to the report when it fails)."""
        folder = (state.out or state.work) / "build-logs"
        folder.mkdir(parents=True, exist_ok=True)
        state.logs[name] = "build-logs/%s.log" % name
        return (folder / ("%s.log" % name)).open("w", encoding="utf-8")

    def needs_int8() -> Path:
        if state.int8 is None:
            raise selftest.Skip("the calibration check did not produce an INT8 bundle")
        return state.int8

    def engine(precision: str) -> Callable[[], Any]:
        def build() -> Any:
            from jetseg.engines.build import build_engine

            path = needs_int8() if precision == "int8" else bundled(state.model)
            with build_log("engine-" + precision) as log:
                outcome = build_engine(Bundle(path), precision, force=True, out=log)
            return "%s engine %s built in %.1f s" % (precision.upper(), outcome.key, outcome.record["timings"]
                                                     ["total_s"]), {"build": outcome.record}
        return build

    def dla_int8() -> Any:
        from jetseg.engines.build import build_engine

        if info.dla_cores < 1:
            raise selftest.Skip("this device has no DLA core")
        with build_log("dla-int8") as log:
            outcome = build_engine(Bundle(needs_int8()), "int8", dla_core=0, force=True, out=log)
        actual = outcome.record.get("placement_actual") or {}
        if actual.get("unknown_because"):
            raise RuntimeError("DLA INT8 engine %s built, but its placement is unknown: %s"
                                   % (outcome.key, actual["unknown_because"]))
        placement = actual.get("layers") or []
        on_dla = sum(1 for row in placement if row.get("device") == "DLA")
        return ("DLA INT8 engine %s: %d of %d layers on the DLA (as TensorRT placed them)"
                % (outcome.key, on_dla, len(placement)),
                {"placement": placement, "estimate": outcome.record.get("placement"), "report": outcome.report})

    def trt_runner() -> Any:
        import numpy as np

        from jetseg.jetson.runners import open_runner

        bundle = Bundle(bundled(state.model))
        frame = state.frame if state.frame is not None else np.zeros(bundle.spec.input_shape, np.float32)
        inputs = model_inputs(bundle.spec, frame)
        with open_runner("onnxrt", bundle) as ref, open_runner("trt", bundle, precision="fp32") as trt:
            expected, got = ref.infer(frame, **inputs), trt.infer(frame, **inputs)
        return agreement(bundle.spec, expected, got, "trt FP32 vs ONNX Runtime")

    def fps(precision: str) -> Callable[[], Any]:
        def measure() -> Any:
            import time

            import numpy as np

            from jetseg.jetson.runners import open_runner

            bundle = Bundle(needs_int8() if precision == "int8" else bundled(state.model))
            frame = np.zeros(bundle.spec.input_shape, np.float32)
            inputs = model_inputs(bundle.spec, frame)
            with open_runner("trt", bundle, precision=precision) as runner:
                for _ in range(5):  # warm-up
                    runner.infer(frame, **inputs)
                start, count = time.monotonic(), 50
                for _ in range(count):
                    runner.infer(frame, **inputs)
                rate = count / (time.monotonic() - start)
            return "%s: %.1f fps (bare trt runner, batch 1, %d frames)" % (precision.upper(), rate, count), {
                "fps": round(rate, 2), "precision": precision}
        return measure

    def capture() -> Any:
        from jetseg.jetson.device.capture import capture_facts

        facts = capture_facts()
        if facts.gst_inspect is None:
            raise AssertionError("gst-inspect-1.0 not found; install gstreamer1.0-tools to check the capture elements")
        if facts.missing:
            raise AssertionError("GStreamer elements missing: %s (JetPack's nvidia-l4t-gstreamer)"
                                 % ", ".join(facts.missing))
        return ("V4L2: %s; GStreamer elements present: %s; OpenCV GStreamer: %s"
                % (", ".join(facts.v4l2_devices) or "no device", ", ".join(facts.elements),
                   facts.opencv_gstreamer), facts.to_dict())

    def daemon_on_trt() -> Any:
        from jetseg.jetson.daemon.assembly import run_pipeline

        stats = run_pipeline(bundled(state.model), "synthetic://%s?seed=7" % state.model, backend="trt",
                             backend_options={"precision": "fp16"}, max_frames=120)
        return "pipeline on trt FP16: %d frames at %.1f fps" % (stats["frames"], stats["fps"]), {"stats": stats}

    def power() -> Any:
        from jetseg.jetson.device import telemetry
        from jetseg.jetson.device.info import nvpmodel_mode

        sample = telemetry.sample_once()
        mode = nvpmodel_mode()
        if sample is None:
            raise AssertionError("no tegrastats/jtop sample within 3 s (install nvidia-l4t-tools)")
        return ("power %s mW, nvpmodel %s" % (sample.get("power_total_mw"), mode),
                {"telemetry": sample, "nvpmodel": mode})

    checks = [("engine-fp32", engine("fp32")), ("engine-fp16", engine("fp16")), ("engine-int8", engine("int8")),
              ("dla-int8", dla_int8), ("trt-runner", trt_runner), ("fps-fp32", fps("fp32")),
              ("fps-fp16", fps("fp16")), ("fps-int8", fps("int8")), ("daemon-trt", daemon_on_trt),
              ("power-nvpmodel", power)]
    return ([("capture", "device", needs_device(capture, not_jetson))]
            + [(name, "device", needs_device(fn)) for name, fn in checks])


def main_checks(state: _State) -> List[Check]:
    return portable_checks(state) + device_checks(state)


def run(args: argparse.Namespace) -> int:
    from jetseg import selftest
    from jetseg.errors import JetsegError
    from jetseg.jetson.device.info import describe
    from jetseg.models import bundled

    if getattr(args, "merge_junit", None):
        return _merge(Path(args.out), Path(args.merge_junit))
    if args.calib_count < 8:
        raise JetsegError("--calib-count %d is too small; expected at least 8 frames" % args.calib_count)
    bundled(args.model)  # before any work: an unknown --model is one line, not a failed check minutes later
    out = Path(args.out)
    selftest.check_report_folder(out)  # before the checks: a wrong --out is found in a second, not after minutes
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JetsegError("cannot write the report to %s (%s); choose another --out"
                          % (out, exc.strerror or exc)) from None
    results = []
    with tempfile.TemporaryDirectory(prefix="jetseg-selftest-") as work:
        state = _State(Path(work), args.model, args.calib_count)
        state.out = out
        for name, group, fn in main_checks(state):
            result = selftest.run_check(name, group, fn, verbose=getattr(args, "verbose", False))
            if result.status == selftest.FAILED and name in state.logs:
                result.data["build_log"] = state.logs[name]
            print("%-8s %-22s %s" % (result.status, name, result.detail), flush=True)
            results.append(result)
    machine: Dict[str, Any] = describe().to_dict()
    report = selftest.write_report(out, results, machine)
    counts = report["summary"]
    print("selftest: %d passed, %d failed, %d skipped; report: %s, %s" % (
        counts["passed"], counts["failed"], counts["skipped"], out / "report.json", out / "report.md"))
    return selftest.exit_code(results)


def _merge(out: Path, junit: Path) -> int:
    """``--merge-junit``: the on-device pytest's results added to the report in ``out``; exit 1 if any failed."""
    from jetseg import selftest

    report = selftest.merge_junit(out, junit)
    counts = report["summary"]
    print("selftest: merged %s; %d passed, %d failed, %d skipped; report: %s" % (
        junit, counts["passed"], counts["failed"], counts["skipped"], out / "report.md"))
    return 1 if counts["failed"] else 0
