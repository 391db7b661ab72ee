"""`jetseg demo`: the whole story on bundled defaults, on any machine.

1. calibrate the bundled ultrasound model to INT8 from synthetic scans (with the accuracy gate);
2. run the streaming pipeline on a synthetic cine stream in real time: overlay video, web viewer, masks;
3. benchmark FP32 against INT8 with the naive-loop peer and print the table;
4. enhancement, short: calibrate the bundled ultrasound denoiser against clean targets (noisy/clean synthetic
   pairs) and benchmark FP32 against INT8 on PSNR/SSIM and speed;
5. registration, short: calibrate the bundled registration model (end-point error, warped-label Dice, folding),
   stream a few seconds registering each frame to the first (a video of the warped frames with the flow and the
   landmarks carried by the field), and benchmark FP32 against INT8.
"""
from __future__ import annotations

import argparse
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any, Dict

HELP = ("the whole story on bundled defaults: calibrate INT8, stream with overlay, benchmark vs FP32; a denoiser and a "
        "registration model too")

MARKER = ".jetseg-demo"
STEPS = 5
#: the enhancement step's noisy/clean pairs (docs/tasks.md, Clean targets)
DENOISE_DATA = "synthetic://ultrasound?noise=speckle,lowgain&frames=%d&seed=%d"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="jetseg-demo", metavar="DIR",
                        help="where the demo writes its INT8 bundle, video, masks and report (default ./jetseg-demo;"
                             " a previous demo there is replaced)")
    parser.add_argument("--model", default="ultrasound", choices=["ultrasound", "endoscopy"],
                        help="which bundled model to use (default ultrasound)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to stream (default 20)")
    parser.add_argument("--port", type=int, default=0,
                        help="web viewer port on 127.0.0.1 (default: a free port, printed)")
    parser.add_argument("--bench-time", type=float, default=3.0, metavar="S",
                        help="measured seconds per benchmark row (default 3)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare_out(out: Path) -> None:
    from jetseg.errors import JetsegError

    if out.exists():
        if not (out / MARKER).is_file():
            raise JetsegError("%s exists and is not a jetseg demo directory; choose another --out" % out)
        shutil.rmtree(str(out))
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by jetseg demo; replaced by the next demo run\n")


def _step(number: int, title: str) -> float:
    print("\n[%d/%d] %s" % (number, STEPS, title), flush=True)
    return time.monotonic()


def _done(start: float) -> None:
    print("      (%.0f s)" % (time.monotonic() - start), flush=True)


def run(args: argparse.Namespace) -> int:
    from jetseg.benchmarks.report import markdown_table
    from jetseg.benchmarks.suite import Settings, run_benchmark
    from jetseg.calibration.workflow import calibrate
    from jetseg.errors import JetsegError
    from jetseg.jetson.daemon.assembly import run_pipeline
    from jetseg.models import bundled

    if args.seconds <= 0 or args.bench_time <= 0:
        raise JetsegError("--seconds and --bench-time must be positive")
    story_start = time.monotonic()
    fp32 = bundled(args.model)
    out = Path(args.out).resolve()
    _prepare_out(out)
    kind = args.model
    print("jetseg demo: bundled %s model %s -> %s" % (kind, fp32, out))

    # 1. Calibration: the same preprocessing as at run time, an accuracy gate against FP32.
    start = _step(1, "calibrate INT8 (ONNX Runtime CPU form) from synthetic %s scans, gate: Dice drop <= 0.01" % kind)
    int8 = out / ("%s-int8" % fp32.name)
    cal = calibrate(fp32, "synthetic://%s?frames=160&seed=11" % kind, out=int8, target="cpu", method="entropy",
                    count=32, holdout=24, max_frames=160)
    gate = cal["gate"]["result"]
    print("      INT8 bundle %s: %.0f%% of the FP32 file size; held-out Dice drop %.4f (gate passed, %d layer(s) "
          "kept in float)" % (int8, 100.0 * cal["model"]["size_ratio"], _zero(gate["dice_drop"]), len(cal["float_layers"])))
    _done(start)

    # 2. The streaming pipeline, as `jetseg run` runs it, paced like a live scanner.
    port = args.port or _free_port()
    video = out / "overlay.mp4"
    start = _step(2, "stream synthetic %s cine in real time for %.0f s through the INT8 model" % (kind, args.seconds))
    print("      web viewer: http://127.0.0.1:%d/  (open it now; it stops when the stream ends)" % port, flush=True)
    stats = run_pipeline(int8, "synthetic://%s?seed=7&fps=30" % kind,
                         sink_uris=["file://%s" % video, "http://127.0.0.1:%d" % port, "masks://%s?png=0" % (out / "masks")],
                         duration_s=args.seconds, realtime=True)
    e2e = stats["latency_ms"]["capture_to_sink"]
    print("      %d frames at %.1f fps, capture-to-sink latency p50 %.1f ms / p99 %.1f ms, dropped %s" % (
        stats["frames"], stats["fps"], e2e.get("p50", float("nan")), e2e.get("p99", float("nan")),
        _drops(stats)))
    print("      overlay video: %s; per-frame areas: %s" % (video, out / "masks" / "frames.jsonl"))
    _done(start)

    # 3. The benchmark: FP32 reference, INT8, the naive loop and the end-to-end pipeline, in one run.
    start = _step(3, "benchmark FP32 vs INT8 (+ naive loop, + end-to-end pipeline) on held-out synthetic scans")
    settings = Settings(frames=16, min_time=args.bench_time, warmup=2, min_runs=3, e2e=True, e2e_frames=90,
                        e2e_segments=3, e2e_paced_frames=90, hd95=False, progress=sys.stderr.isatty())
    report = run_benchmark([int8], fp32, "synthetic://%s?frames=24&seed=4242" % kind, out_dir=out / "bench",
                           settings=settings)
    print()
    print(markdown_table(report["results"]))
    print("\n      report: %s" % (out / "bench" / "report.md"))
    _done(start)
    for name, entry in report.get("summary", {}).items():
        print("\n%s: %s" % (name, _headline(entry)))
    print("\nmeasured under: %s" % conditions_line(report))
    _denoise(out, args.bench_time)
    _register(out, args.bench_time)
    print("\ndemo finished in %.0f s; everything it wrote is in %s" % (time.monotonic() - story_start, out))
    return 0


def _denoise(out: Path, bench_time: float) -> None:
    """Step 4: the bundled denoiser (task enhancement) calibrated against clean targets and benchmarked, briefly."""
    from jetseg.benchmarks.report import markdown_table
    from jetseg.benchmarks.suite import run_benchmark
    from jetseg.calibration.workflow import calibrate
    from jetseg.models import bundled

    start = _step(4, "enhancement: calibrate the bundled ultrasound denoiser against clean targets, gate: SSIM vs "
                     "FP32 >= 0.99 and PSNR drop <= 0.3 dB; benchmark FP32 vs INT8")
    fp32 = bundled("ultrasound-denoise")
    int8 = out / ("%s-int8" % fp32.name)
    # two scenes (a scene is 120 frames): one scene alone calibrates ranges that other scenes exceed
    cal = calibrate(fp32, DENOISE_DATA % (240, 12), out=int8, target="cpu", count=32, holdout=16, max_frames=240)
    gate = cal["gate"]["result"]
    print("      INT8 denoiser %s: SSIM vs FP32 %.4f, PSNR drop vs clean targets %.3f dB (gate passed)"
          % (int8, gate["ssim"], _zero(gate["psnr_drop"])))
    report = run_benchmark([int8], fp32, DENOISE_DATA % (12, 4343), out_dir=out / "bench-denoise",
                           settings=_short_settings(bench_time))
    print()
    print(markdown_table(report["results"]))
    print("\n      report: %s" % (out / "bench-denoise" / "report.md"))
    _done(start)


def _short_settings(bench_time: float) -> Any:
    """The benchmark settings of the short steps (4, 5): a few frames, no peers, no plots."""
    from jetseg.benchmarks.suite import Settings

    return Settings(frames=12, min_time=min(bench_time, 2.0), warmup=2, min_runs=3, naive=False, peers=False,
                    hd95=False, plots=False, progress=sys.stderr.isatty())


def _register(out: Path, bench_time: float) -> None:
    """Step 5: the bundled registration model calibrated, streamed against the previous frame, benchmarked."""
    from jetseg.benchmarks.report import markdown_table
    from jetseg.benchmarks.suite import run_benchmark
    from jetseg.calibration.workflow import calibrate
    from jetseg.jetson.daemon.assembly import run_pipeline
    from jetseg.models import bundled

    start = _step(5, "registration: calibrate the bundled registration model, gate: EPE p95 vs FP32 <= 0.5 px, "
                     "warped-label Dice, folding; stream against the first frame; benchmark FP32 vs INT8")
    fp32 = bundled("ultrasound-register")
    int8 = out / ("%s-int8" % fp32.name)
    cal = calibrate(fp32, "synthetic://ultrasound?frames=120&seed=13", out=int8, target="cpu", count=32, holdout=16,
                    max_frames=120)
    gate = cal["gate"]["result"]
    print("      INT8 registration model %s: EPE vs FP32 mean %.3f px, p95 %.3f px (gate passed)"
          % (int8, gate["epe_mean"], gate["epe_p95"]))
    video = out / "registration.mp4"
    stats = run_pipeline(int8, "synthetic://ultrasound?seed=7&fps=30", sink_uris=["file://%s?pair=1" % video],
                         duration_s=4.0, realtime=True, reference="first")
    print("      %d frames at %.1f fps registered to the first frame; video (input with landmarks | warped frame "
          "with the flow): %s" % (stats["frames"], stats["fps"], video))
    report = run_benchmark([int8], fp32, "synthetic://ultrasound?frames=12&seed=4343", out_dir=out / "bench-register",
                           settings=_short_settings(bench_time))
    print()
    print(markdown_table(report["results"]))
    print("\n      report: %s" % (out / "bench-register" / "report.md"))
    _done(start)


def _drops(stats: Dict[str, Any]) -> str:
    dropped = stats.get("dropped", {})
    return ", ".join("%s %s" % (k, v) for k, v in dropped.items()) or "none"


def _zero(value: float) -> float:
    """Round to the 4 printed decimals without a "-0.0000" (INT8 a hair better than FP32)."""
    return round(float(value), 4) + 0.0


def conditions_line(report: Dict[str, Any]) -> str:
    """What the demo's figures were measured under, in one line: machine, load, threads, versions."""
    c = report["conditions"]
    m, v, threads = c["machine"], c["versions"], c["threads"]
    cpu_threads = sorted({str(r["runner"].get("threads")) for r in report["results"]
                          if r["kind"] == "runner" and r.get("peer") != "naive-loop" and "threads" in r["runner"]})
    return ("%s, %s usable of %s cores; load average %s at start, %s at end; inference threads %s; %s"
            % (m["cpu"], threads.get("cores_usable"), m["cores"], _load(c.get("load_average_start")),
               _load(c.get("load_average_end")), "/".join(cpu_threads) or "-",
               ", ".join("%s %s" % kv for kv in sorted(v.items()) if kv[1] != "not installed")))


def _load(value: Any) -> str:
    return "/".join("%.2f" % x for x in value) if value else "unknown"


def _headline(entry: Dict[str, Any]) -> str:
    parts = []
    if entry.get("speedup_vs_fastest_float") is not None and entry.get("fastest_float"):
        parts.append("%.2fx the fastest float row (%s)" % (entry["speedup_vs_fastest_float"], entry["fastest_float"]))
    if entry.get("speedup_vs_best_fp32") is not None and entry.get("best_fp32"):
        parts.append("%.2fx the fastest exact-FP32 row (%s)" % (entry["speedup_vs_best_fp32"], entry["best_fp32"]))
    if entry.get("speedup_vs_reference") is not None:
        parts.append("%.2fx ONNX Runtime FP32" % entry["speedup_vs_reference"])
    if entry.get("dice_drop") is not None:
        parts.append("Dice drop %.4f (vs %s)" % (_zero(entry["dice_drop"]), entry.get("dice_drop_basis", "reference")))
    if entry.get("bundle_ratio_vs_reference") is not None:
        parts.append("bundle %.0f%% of the FP32 model" % (100.0 * entry["bundle_ratio_vs_reference"]))
    if entry.get("int8_form") == "tensorrt":
        parts.append("TensorRT-form INT8 (made for TensorRT, not a CPU INT8 figure)")
    if entry.get("pipeline_efficiency") is not None:
        spread = entry.get("pipeline_efficiency_spread") or [entry["pipeline_efficiency"]] * 2
        parts.append("pipeline efficiency %.2f (runs %.2f-%.2f%s)" % (
            entry["pipeline_efficiency"], spread[0], spread[1],
            "; above 1 is noise, not a gain" if entry.get("pipeline_efficiency_note") else ""))
    if entry.get("added_latency_ms_p50") is not None:
        # per frame: capture-to-mask minus that frame's own inference, so never negative
        parts.append("latency the pipeline adds per frame at %s fps: p50 %.2f ms, p99 %.2f ms" % (
            "%g" % entry["paced_fps"] if entry.get("paced_fps") else "the paced rate",
            entry["added_latency_ms_p50"], entry["added_latency_ms_p99"]))
    if entry.get("speedup_vs_naive_loop") is not None:
        parts.append("%.1fx the naive loop%s" % (entry["speedup_vs_naive_loop"], " (its timings have outliers)"
                                                   if entry.get("naive_loop_outliers") else ""))
    if entry.get("int8_verdict"):
        parts.append(entry["int8_verdict"])
    return ", ".join(parts)
