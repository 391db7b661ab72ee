"""`jetseg run`: the real-time daemon (capture -> model -> overlay, masks, recordings, web viewer).

Examples::

    jetseg run --model bundles/ultrasound-unet --source synthetic://ultrasound --sink http://127.0.0.1:8080
    jetseg run --config /etc/jetseg/daemon.yaml
    jetseg run --model B --source dicom://cine.dcm --sink masks://out      # ends at the end of the cine
    jetseg run --source left=v4l2:///dev/video0 --source right=v4l2:///dev/video1 --sink 'masks://out/{stream}'

SIGTERM/SIGINT stop it cleanly (recordings are finalised), SIGHUP reloads --config.
"""
from __future__ import annotations

import argparse
from typing import Any, Dict

HELP = "run the real-time segmentation daemon: capture -> model -> overlay/masks/recording/web viewer"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="YAML", help="daemon config file (flags below override it; "
                        "SIGHUP re-reads it)")
    parser.add_argument("--model", metavar="BUNDLE", help="model bundle (default: the bundled ultrasound model)")
    parser.add_argument("--backend", metavar="NAME", help="runner: auto (default: trt on a Jetson with a usable engine "
                        "for this device, openvino on x86 when installed, else onnxrt), onnxrt, openvino, trt, torch; "
                        "'jetseg doctor --model BUNDLE' says which and why")
    parser.add_argument("--backend-option", metavar="K=V", action="append", default=[],
                        help="backend option, repeatable (e.g. provider=cuda, threads=2; threads=0 or none: "
                        "usable cores - 1 on the CPU, the runtime's own default on a GPU; docs/runtime.md, Threads)")
    parser.add_argument("--source", metavar="URI", action="append", default=[],
                        help="synthetic://ultrasound, a video file, dicom://cine.dcm, v4l2:///dev/video0, "
                        "udp://127.0.0.1:5000, rtsp://..., gst://...; several streams in one daemon: repeat "
                        "--source NAME=URI (one shared model, batched; --sink URIs then take {stream})")
    parser.add_argument("--source-option", metavar="K=V", action="append", default=[],
                        help="source option, repeatable")
    parser.add_argument("--sink", metavar="URI", action="append", default=None,
                        help="output, repeatable: http://127.0.0.1:8080, masks://DIR, file://out.mp4, display://, "
                        "null:// (replaces the config's sinks)")
    parser.add_argument("--realtime", action="store_true", default=None,
                        help="pace a file or synthetic source at its frame rate, dropping frames like a live one")
    parser.add_argument("--roi", metavar="MODE",
                        help="auto, spec, none, x,y,w,h (frame pixels), relative:x,y,w,h (fractions of the frame, "
                             "e.g. relative:0.1,0.05,0.8,0.9) or bundle (the default: as the bundle was calibrated, "
                             "else spec)")
    parser.add_argument("--roi-only", action="store_true", default=None,
                        help="record and serve only the ROI (no burned-in patient text)")
    parser.add_argument("--smoothing", type=float, metavar="S", help="temporal smoothing 0..1 (0 = off)")
    parser.add_argument("--min-area", type=int, metavar="PX", help="remove mask components under PX frame pixels")
    parser.add_argument("--reference", metavar="REF", help="a registration model's fixed image: first (default: "
                        "the first frame after start or reload), previous (each frame against the one before) or "
                        "an image file")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    parser.add_argument("--scheduler", metavar="NAME",
                        help="how stages share threads: auto (default: latency for a live source whose model fits "
                             "the frame period, else threaded), threaded, latency or serial")
    parser.add_argument("--log-json", action="store_true", default=None, help="log JSON lines (journald)")
    parser.add_argument("--token", metavar="T", help="token the web viewer requires (or $JETSEG_WEB_TOKEN)")
    parser.add_argument("--check", action="store_true",
                        help="validate the configuration, model and URIs, print the result and exit")


def overrides_from(args: argparse.Namespace) -> Dict[str, Any]:
    """The command line as dotted config overrides (``--source NAME=URI`` streams: :func:`~jetseg.jetson.daemon.streams.with_named_sources`)."""
    from jetseg.jetson.daemon.flags import parse_options, parse_roi
    from jetseg.jetson.daemon.streams import split_sources

    uri, named = split_sources(args.source)
    return {
        "model.path": args.model,
        "backend.name": args.backend,
        "backend.options": parse_options(args.backend_option, "--backend-option") or None,
        "source.uri": uri,
        "source.options": parse_options(args.source_option, "--source-option") or None,
        "source.realtime": args.realtime,
        "sinks": None if named else args.sink,  # with named streams each stream gets them
        "roi.mode": parse_roi(args.roi) if args.roi is not None else None,
        "roi.roi_only": args.roi_only,
        "postprocess.smoothing": args.smoothing,
        "postprocess.min_area_px": args.min_area,
        "postprocess.reference": args.reference,
        "pipeline.duration_s": args.duration,
        "pipeline.max_frames": args.max_frames,
        "pipeline.scheduler": args.scheduler,
        "logging.json": args.log_json,
        "web.token": args.token,
    }


def run(args: argparse.Namespace) -> int:
    import json
    import signal

    from jetseg.jetson.daemon.config import DaemonConfig
    from jetseg.jetson.daemon.flags import apply_overrides
    from jetseg.jetson.daemon.service import Daemon, apply_logging
    from jetseg.jetson.daemon.streams import split_sources, with_named_sources

    overrides = overrides_from(args)
    named = split_sources(args.source)[1]

    def load() -> DaemonConfig:
        base = DaemonConfig.load(args.config) if args.config else DaemonConfig()
        return with_named_sources(apply_overrides(base, overrides), named, args.sink)

    config = load()
    apply_logging(config, verbose=args.verbose)
    daemon = Daemon(config, config_path=args.config, reload_config=load)
    if args.check:
        print(json.dumps(daemon.check(), indent=2))
        return 0
    old = daemon.install_signal_handlers()
    try:
        return daemon.run()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
