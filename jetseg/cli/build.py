"""`jetseg build`: build a TensorRT engine for this device into BUNDLE/engines/<device-key>/."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jetseg.trtcompat import PRECISIONS

HELP = "build a TensorRT engine for this device (Jetson): fp32/fp16/int8, GPU or DLA"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="BUNDLE", help="model bundle (an INT8 bundle for --precision int8)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp16",
                        help="engine precision (default fp16)")
    parser.add_argument("--dla", type=int, default=None, metavar="N",
                        help="build for DLA core N (0 or 1 on Xavier) with GPU fallback; fp16/int8 only")
    parser.add_argument("--workspace", type=int, default=1024, metavar="MB",
                        help="TensorRT workspace memory limit in MB (default 1024)")
    parser.add_argument("--via", choices=("onnx", "torch2trt"), default="onnx",
                        help="conversion route: the ONNX parser (default) or torch2trt from weights.pt")
    parser.add_argument("--timing-cache", metavar="PATH", default=None,
                        help="timing cache to reuse and update (default: one per device inside the bundle)")
    parser.add_argument("--batch", type=int, default=1, metavar="N",
                        help="largest batch: one optimization profile, batch 1..N (exactly N on the DLA); the ONNX "
                             "needs a dynamic batch axis or a batch of N (default 1)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the engine is up to date")
    parser.add_argument("--calib-scans", metavar="SOURCE", default=None,
                        help="INT8 only: calibrate here with TensorRT's calibrator on frames from SOURCE (instead "
                             "of the INT8 bundle made by 'jetseg calibrate')")
    parser.add_argument("--calib-count", type=int, default=100, metavar="N",
                        help="frames for --calib-scans (default 100)")


def run(args: argparse.Namespace) -> int:
    from jetseg.bundle import Bundle
    from jetseg.engines.build import build_engine

    bundle = Bundle(args.bundle)
    outcome = build_engine(bundle, args.precision, dla_core=args.dla, workspace_mb=args.workspace,
                           timing_cache=Path(args.timing_cache) if args.timing_cache else None,
                           force=args.force, via=args.via, verbose=args.verbose, calib_scans=args.calib_scans,
                           calib_count=args.calib_count, batch=args.batch)
    if outcome.reused:  # a fresh build printed its progress and DLA placement report while building
        for line in outcome.report:
            print(line, file=sys.stderr)
        print(outcome.engine_path)
        return 0
    timings = outcome.record.get("timings", {})
    print("built %s in %.1f s -> %s" % (outcome.key, timings.get("total_s", 0.0), outcome.engine_path),
          file=sys.stderr)
    print(outcome.engine_path)
    return 0
