"""`jetseg bench`: throughput and accuracy of bundles against the FP32 reference, with reports and gates."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Dict, List, Optional

from jetseg.bundle import OVERWRITE_HELP
from jetseg.evaluate import BENCH_FRAMES

HELP = "benchmark bundles: speed, accuracy vs FP32, cost; report.json/md + plots; CI gates"


def _counts(what: str) -> Callable[[str], List[int]]:
    """An argparse type for positive integers such as ``1`` or ``1,4`` (``what``: batch sizes, tab counts)."""
    def parse(text: str) -> List[int]:
        try:
            values = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError("expected %s such as 1 or 1,4, got %r" % (what, text)) from None
        if not values or any(v < 1 for v in values):
            raise argparse.ArgumentTypeError("expected positive %s such as 1 or 1,4, got %r" % (what, text))
        return values
    return parse


def _backends(text: str) -> List[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundles", nargs="+", metavar="BUNDLE", help="bundles to measure (e.g. the INT8 one)")
    parser.add_argument("--reference", metavar="FP32_BUNDLE",
                        help="the FP32 bundle the accuracy is measured against (required, except with --viewer)")
    parser.add_argument("--data", metavar="SOURCE",
                        help="frames: synthetic://ultrasound?frames=50, a video, an image folder (+ masks), ... "
                             "(required, except with --viewer)")
    parser.add_argument("--backend", type=_backends, default=["auto"], metavar="NAME[,NAME]",
                        help="backends to run every bundle on: auto (default: trt on a Jetson with an engine, "
                             "openvino on x86 when installed, else onnxrt), onnxrt, openvino, torch, trt")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="report directory (default: bench-YYYYmmdd-HHMMSS)")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    parser.add_argument("--frames", type=int, default=None,
                        help="frames read for accuracy and timing (default %d; required for a live --data source)"
                        % BENCH_FRAMES)
    parser.add_argument("--min-time", type=float, default=3.0, metavar="S",
                        help="measured seconds per row, rows interleaved (default 3)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up calls per row (default 5)")
    parser.add_argument("--min-runs", type=int, default=10, help="minimum timed calls per row (default 10)")
    parser.add_argument("--batch", type=_counts("batch sizes"), default=[1], metavar="N[,N]", help="batch sizes (default 1)")
    parser.add_argument("--threads", type=int, default=0,
                        help="inference threads of CPU backends (default 0: jetseg's default, usable cores - 1, at "
                             "least 1, leaving a core to the pipeline; the naive loop: PyTorch's own default; docs/runtime.md, "
                             "Threads)")
    parser.add_argument("--precision", type=_backends, default=["auto"], metavar="P[,P]",
                        help="float precisions of the reference on CPU backends: fp32 (exact, always measured: the "
                             "accuracy reference), bf16, fp16 (OpenVINO rows, where the CPU has them); default auto: "
                             "every one this CPU offers. Speed-ups are stated against the fastest float row")
    parser.add_argument("--roi", default="bundle", metavar="MODE",
                        help="the ROI each file of --data is cropped to, decided per file from its first frames as "
                             "'calibrate --roi' and 'run --roi' decide it: auto (the imaging area, DICOM region tags "
                             "first), spec (the bundle's input.roi), none, x,y,w,h in frame pixels, or bundle (the "
                             "default: as the bundles were calibrated, else spec); recorded per file in report.json")
    parser.add_argument("--e2e", action="store_true",
                        help="also run the daemon pipeline source -> null sink per bundle (fps, capture-to-sink "
                             "latency, drops, pipeline efficiency)")
    parser.add_argument("--e2e-frames", type=int, default=300,
                        help="frames through the pipeline per bundle (default 300)")
    parser.add_argument("--e2e-segments", type=int, default=3,
                        help="pipeline runs those frames are split into, alternating with bare runner timing "
                             "(default 3)")
    parser.add_argument("--e2e-fps", type=float, default=30.0, metavar="FPS",
                        help="with --e2e: a paced run at this frame rate for capture-to-mask latency and the "
                             "latency jetseg adds to the model (default 30; 0: none)")
    parser.add_argument("--e2e-paced-frames", type=int, default=300,
                        help="frames of the paced run (default 300)")
    triton = parser.add_argument_group("Triton rows (docs/scale.md): the reference served by Triton vs its local runner")
    triton.add_argument("--triton", action="store_true",
                        help="start jetseg serve's Triton server on free 127.0.0.1 ports for the reference bundle and "
                        "add rows: batch 1 (1 and N clients) and dynamic batching (N clients), masks checked")
    triton.add_argument("--triton-url", default=None, metavar="grpc://HOST:PORT",
                        help="instead of starting one: rows for the model --triton-model of this running server")
    triton.add_argument("--triton-model", default=None, help="with --triton-url: the model (default: the bundle's name)")
    triton.add_argument("--triton-clients", type=int, default=4, metavar="N", help="concurrent clients (default 4)")
    triton.add_argument("--triton-seconds", type=float, default=5.0, metavar="S",
                        help="timed seconds per Triton row (default 5)")
    triton.add_argument("--triton-max-batch", type=int, default=8, metavar="N",
                        help="with --triton: the dynamic-batching model's max_batch_size (default 8)")
    parser.add_argument("--streams", type=int, default=None, metavar="N",
                        help="instead of the rows: N paced 30 fps synthetic streams in one daemon (batched) against N "
                        "daemons, fps, capture-to-mask p50/p99, CPU and RSS (the first BUNDLE and --backend; "
                        "docs/runtime.md, Several streams)")
    parser.add_argument("--streams-duration", type=float, default=20.0, metavar="S",
                        help="seconds each side of --streams runs (default 20)")
    parser.add_argument("--viewer", action="store_true",
                        help="instead: measure the web viewer of BUNDLE on screen in headless chromium: start the "
                             "daemon (a synthetic source paced at 30 fps, the web sink on 127.0.0.1 at a free port), "
                             "open --tabs viewer windows, record capture-to-display latency and shown fps, stop the "
                             "daemon; needs chromium and websocket-client")
    parser.add_argument("--tabs", type=_counts("tab counts"), default=[1, 4], metavar="N[,N]",
                        help="with --viewer: tab counts to measure, one after the other (default 1,4)")
    parser.add_argument("--viewer-seconds", type=float, default=15.0, metavar="S",
                        help="with --viewer: recording time per tab count, after 3 s of warm-up (default 15)")
    parser.add_argument("--no-naive", action="store_true", help="leave out the naive-loop peer row")
    parser.add_argument("--no-peers", action="store_true",
                        help="leave out the OpenVINO peer rows (OpenVINO called directly, where installed)")
    parser.add_argument("--no-hd95", action="store_true", help="skip HD95 (the slowest accuracy metric)")
    parser.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    gates = parser.add_argument_group("gates (non-zero exit, one line per failed gate)")
    gates.add_argument("--min-fps", type=float, default=None, help="every bundle row must reach this fps")
    gates.add_argument("--max-dice-drop", type=float, default=None, metavar="D",
                       help="every bundle row's Dice drop vs FP32 must be <= D (e.g. 0.01)")
    gates.add_argument("--baseline", default=None, metavar="REPORT_JSON",
                       help="flag regressions against an earlier report.json")
    gates.add_argument("--tolerance", type=float, default=0.10,
                       help="fps loss vs --baseline that still passes (fraction, default 0.10)")
    gates.add_argument("--dice-tolerance", type=float, default=0.005,
                       help="Dice-drop increase vs --baseline that still passes (default 0.005)")


def run_streams(args: argparse.Namespace) -> int:
    """``--streams N``: one daemon against N daemons (:mod:`jetseg.benchmarks.streams`)."""
    import json
    from pathlib import Path

    from jetseg.benchmarks.streams import measure_streams, streams_markdown

    result = measure_streams(args.bundles[0], args.streams, backend=args.backend[0],
                             options={"threads": args.threads} if args.threads else {},
                             duration_s=args.streams_duration)
    text = streams_markdown(result)
    print(text, end="")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "streams.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / "streams.md").write_text(text)
        print("report: %s/streams.json, streams.md" % out)
    return 0


def _viewer(args: argparse.Namespace, out: str) -> int:
    """``--viewer``: the web viewer of one bundle measured against a daemon started here (its own report)."""
    from jetseg.benchmarks.viewerbench import run_viewer_benchmark
    from jetseg.errors import JetsegError
    from jetseg.jetson.daemon.flags import parse_roi

    if args.reference is not None or args.data is not None or len(args.bundles) != 1:
        raise JetsegError("--viewer measures the web viewer of one bundle in a report of its own; got %d bundle(s)%s; "
                          "run 'jetseg bench BUNDLE --viewer [--tabs 1,4]' alone"
                          % (len(args.bundles), " with --reference/--data" if args.reference or args.data else ""))
    if len(args.backend) != 1:
        raise JetsegError("--viewer runs the daemon on one backend; got --backend %s" % ",".join(args.backend))
    report = run_viewer_benchmark(args.bundles[0], args.tabs, args.viewer_seconds, out_dir=out,
                                  backend=args.backend[0], roi=parse_roi(args.roi), overwrite=args.overwrite)
    for run in report["viewer"]["runs"]:
        print("%d tab(s): pipeline %.1f fps; on screen p50/p95 %s ms, shown %s fps"
              % (run["tabs"], run["pipeline_fps_during"],
                 ", ".join("%s/%s" % (t["p50_ms"], t["p95_ms"]) for t in run["per_tab"]),
                 ", ".join(str(t["shown_fps"]) for t in run["per_tab"])))
    print("report: %s/report.json, report.md" % out)
    return 0


def _triton(args: argparse.Namespace) -> Optional[Dict[str, Any]]:
    """The Triton rows' settings (benchmarks/tritonrows.py), or None without --triton / --triton-url."""
    from jetseg.errors import JetsegError

    if args.triton and args.triton_url:
        raise JetsegError("--triton starts a server and --triton-url names one; give one of them")
    if args.triton_model and not args.triton_url:
        raise JetsegError("--triton-model names a model of --triton-url's server; add --triton-url grpc://HOST:PORT")
    if not (args.triton or args.triton_url):
        return None
    return {"clients": args.triton_clients, "url": args.triton_url, "model": args.triton_model,
            "max_batch": args.triton_max_batch, "seconds": args.triton_seconds}


def run(args: argparse.Namespace) -> int:
    import datetime

    if args.streams is not None:
        return run_streams(args)

    from jetseg.benchmarks.gates import Gates, failures, load_baseline
    from jetseg.benchmarks.report import markdown_table
    from jetseg.benchmarks.suite import Settings, run_benchmark
    from jetseg.errors import GateError, JetsegError
    from jetseg.jetson.daemon.flags import parse_roi

    out = args.out or datetime.datetime.now().strftime("bench-%Y%m%d-%H%M%S")
    if args.viewer:
        return _viewer(args, out)
    if args.reference is None or args.data is None:
        raise JetsegError("bench needs --reference FP32_BUNDLE and --data SOURCE (missing: %s); or --viewer to "
                          "measure the web viewer of one bundle"
                          % ", ".join(flag for flag, value in (("--reference", args.reference),
                                                               ("--data", args.data)) if value is None))

    gates = Gates(min_fps=args.min_fps, max_dice_drop=args.max_dice_drop,
                  baseline=load_baseline(args.baseline) if args.baseline else None,
                  fps_tolerance=args.tolerance, dice_tolerance=args.dice_tolerance)
    settings = Settings(backends=args.backend, frames=BENCH_FRAMES if args.frames is None else args.frames,
                        frames_given=args.frames is not None, min_time=args.min_time, warmup=args.warmup,
                        min_runs=args.min_runs, batch_sizes=args.batch, threads=args.threads,
                        precisions=args.precision, roi=parse_roi(args.roi),
                        naive=not args.no_naive, e2e=args.e2e, e2e_frames=args.e2e_frames,
                        e2e_segments=args.e2e_segments, e2e_fps=args.e2e_fps,
                        e2e_paced_frames=args.e2e_paced_frames, peers=not args.no_peers,
                        hd95=not args.no_hd95, plots=not args.no_plots, progress=sys.stderr.isatty(),
                        triton=_triton(args))
    report = run_benchmark(args.bundles, args.reference, args.data, out_dir=out, settings=settings,
                           gates=gates if gates.active else None, overwrite=args.overwrite)
    print(markdown_table(report["results"]))
    for item in report["skipped"]:
        print("skipped: %s on %s: %s" % (item["bundle"], item["backend"], item["reason"]))
    print("report: %s/report.json, report.md%s" % (out, "" if args.no_plots else ", plots"))
    failed = failures(report.get("gates", []))
    for line in failed:
        print("jetseg bench: gate failed: %s" % line, file=sys.stderr)
    if failed:
        return GateError.exit_code
    if gates.active:
        print("all %d gate checks passed" % len(report["gates"]))
    return 0
