"""`jetseg calibrate`: an FP32 bundle + representative scans -> an INT8 bundle that passed the accuracy gate."""
from __future__ import annotations

import argparse
from typing import Any

from jetseg.bundle import OVERWRITE_HELP
from jetseg.trtcompat import DEFAULT_TRT_VERSION

HELP = "make an INT8 bundle from representative scans, with an accuracy gate against FP32"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="BUNDLE", help="the FP32 model bundle")
    parser.add_argument("--scans", required=True, metavar="SOURCE",
                        help="representative scans: an image folder, a video, a DICOM or NIfTI file, "
                             "synthetic://ultrasound, ...")
    parser.add_argument("--out", metavar="DIR", help="INT8 bundle to write (default: ./<bundle name>-int8)")
    parser.add_argument("--method", default="entropy", choices=("entropy", "minmax", "percentile"),
                        help="how activation ranges are chosen (default: entropy; a minmax cache cannot build "
                             "for the DLA, which requires TensorRT's entropy calibrator)")
    parser.add_argument("--count", type=int, default=64, metavar="N",
                        help="calibration frames, chosen for diversity (default: 64)")
    parser.add_argument("--holdout", type=int, default=32, metavar="M",
                        help="held-out frames for the accuracy gate, disjoint from the calibration frames "
                             "(default: 32)")
    parser.add_argument("--target", default="tensorrt", choices=("tensorrt", "cpu"),
                        help="tensorrt: Q/DQ following TensorRT's rules (symmetric int8); cpu: the fastest form "
                             "for ONNX Runtime on the CPU (uint8 activations) (default: tensorrt)")
    parser.add_argument("--gate-dice", type=float, default=0.01, metavar="D",
                        help="segmentation: largest allowed drop of the mean Dice on the held-out frames; "
                             "registration: of the Dice of labels warped by INT8 vs FP32 fields (default: 0.01)")
    parser.add_argument("--gate-epe", type=float, default=0.5, metavar="PX",
                        help="registration: largest allowed 95th percentile of the end-point error of the INT8 "
                             "field against FP32, pixels (default: 0.5)")
    parser.add_argument("--gate-ssim", type=float, default=0.99, metavar="S",
                        help="enhancement: smallest allowed mean SSIM of INT8 against FP32 (default: 0.99)")
    parser.add_argument("--gate-psnr", type=float, default=0.3, metavar="DB",
                        help="enhancement: largest allowed PSNR drop against clean targets, dB (default: 0.3)")
    parser.add_argument("--max-fallback", type=int, default=8, metavar="K",
                        help="at most K layers kept in float to pass the gate (default: 8; 0 = none)")
    parser.add_argument("--max-frames", type=int, default=300, metavar="N",
                        help="read at most N frames of the scans (default: 300)")
    parser.add_argument("--trt-version", default=DEFAULT_TRT_VERSION, metavar="X.Y.Z",
                        help="TensorRT version the calibration cache is written for (default: %s, JetPack 5)"
                             % DEFAULT_TRT_VERSION)
    parser.add_argument("--memory-mb", type=float, default=1024.0, metavar="MB",
                        help="keep preprocessed frames in memory up to this size, else read twice (default: 1024)")
    parser.add_argument("--roi", default="spec", metavar="MODE",
                        help="the ROI the scans are cropped to, as 'run --roi': auto (the imaging area each file's "
                             "first frames show, or its DICOM region tags), spec (the bundle's input.roi), none, "
                             "x,y,w,h in frame pixels or relative:x,y,w,h in fractions of the frame; recorded per "
                             "file in calibration.json, and run's default "
                             "follows it (default: spec)")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def _stop_on_sigterm(signum: int, _frame: Any) -> None:
    # SIGTERM's default action would leave the work folder (model copies, ranges: megabytes) on disk. An
    # exception raised here could land inside an import or a library call and turn into another error, so
    # the folder is removed here and the process ends at once; nothing has been written to --out before
    # the final atomic rename. A folder left by SIGKILL is removed by the next calibration.
    import os
    import sys

    from jetseg.calibration.workflow import remove_own_work_folders

    remove_own_work_folders()
    sys.stderr.write("jetseg calibrate: stopped by SIGTERM; work folder removed, nothing written\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def run(args: argparse.Namespace) -> int:
    import signal

    from jetseg.calibration.workflow import calibrate
    from jetseg.jetson.daemon.flags import parse_roi

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    report = calibrate(args.bundle, args.scans, out=args.out, method=args.method, count=args.count,
                       holdout=args.holdout, target=args.target, gate_dice=args.gate_dice,
                       max_fallback=args.max_fallback, max_frames=args.max_frames, trt_version=args.trt_version,
                       memory_mb=args.memory_mb, overwrite=args.overwrite, roi=parse_roi(args.roi),
                       gate_psnr=args.gate_psnr, gate_ssim=args.gate_ssim, gate_epe=args.gate_epe)
    gate = report["gate"]["result"]
    model = report["model"]
    print("INT8 bundle: %s" % report["out"])
    print("  target %s, method %s, %d calibration + %d held-out frames (%d read, %d file(s) skipped)"
          % (report["target"], report["method"], len(report["curation"]["calibration_frames"]),
             len(report["curation"]["holdout_frames"]), report["scans"]["frames_read"],
             report["scans"]["skipped_files"]))
    floats = ", ".join(report["float_layers"]) or "none"
    if report["gate"].get("task") == "enhancement":
        drop = gate["psnr_drop"]
        print("  gate: SSIM vs FP32 %.4f >= %g, PSNR vs FP32 %.2f dB, PSNR drop vs targets %s, layers kept in "
              "float: %s" % (gate["ssim"], report["gate"]["threshold"]["min_ssim"], gate["psnr"],
                             "n/a (no clean targets)" if drop is None else "%.3f dB" % drop, floats))
    elif report["gate"].get("task") == "registration":
        drop = gate["dice_drop"]
        print("  gate: EPE vs FP32 mean %.3f px, p95 %.3f px <= %g; warped-label Dice drop %s; folding %.4f (FP32 "
              "%.4f); layers kept in float: %s" % (gate["epe_mean"], gate["epe_p95"],
                                                   report["gate"]["threshold"]["epe_p95_px"],
                                                   "n/a (no labels)" if drop is None else "%.4f" % drop,
                                                   gate["folding"], gate["fp32_folding"], floats))
    else:
        print("  gate: mean Dice drop %.4f <= %g (vs %s), pixel agreement %.4f, layers kept in float: %s"
              % (round(gate["dice_drop"], 4) + 0.0, report["gate"]["threshold"], " and ".join(gate["bases"]),
                 gate["pixel_agreement"] or 0.0, floats))
    print("  model.onnx %.0f KB = %.0f%% of FP32; calibration cache %s"
          % (model["int8_size_bytes"] / 1024.0, 100.0 * model["size_ratio"], report["implicit_int8"]["header"]))
    openvino = report.get("openvino")
    if openvino:  # --target cpu: OpenVINO's own INT8 (calibration/nncfquant.py), kept or not, and why
        print("  OpenVINO INT8 (NNCF): %s: %s" % ("model.openvino.xml" if openvino["kept"] else "not kept",
                                                 openvino["why"]))
    return 0
