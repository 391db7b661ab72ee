"""The live loop on one screen: source -> runner -> overlay -> sink, with jetseg's public API.

    python examples/segment_loop.py --model models/bundles/ultrasound-unet \
        --source "synthetic://ultrasound?frames=30" --sink file://out.mp4

``jetseg run`` does the same with threads, metrics, reconnection and a config file (jetseg.jetson.daemon).
"""
from __future__ import annotations

import argparse

from jetseg.bundle import Bundle
from jetseg.jetson.frames.postprocess import PostProcessor
from jetseg.jetson.frames.result import Result
from jetseg.jetson.runners import open_runner
from jetseg.jetson.sinks import SinkContext, open_sink
from jetseg.jetson.sources import open_source

parser = argparse.ArgumentParser(description="segment every frame of a source and write the overlay to a sink")
parser.add_argument("--model", default="models/bundles/ultrasound-unet", help="a model bundle directory")
parser.add_argument("--source", default="synthetic://ultrasound?frames=30", help="a source URI (docs/sources.md)")
parser.add_argument("--sink", default="file://out.mp4", help="a sink URI (docs/sinks.md)")
parser.add_argument("--backend", default="auto", help="onnxrt, openvino, torch, trt or auto")
args = parser.parse_args()

bundle = Bundle(args.model)
spec = bundle.spec
post = PostProcessor(spec)
source = open_source(args.source)
sink = open_sink(args.sink)
with open_runner(args.backend, bundle) as runner, source, sink.open(SinkContext(spec=spec, fps=source.fps)):
    for frame in source:                                  # a finite source ends; a live one runs until Ctrl-C
        roi = spec.roi_for(frame.image.shape)             # the part of the frame the model sees
        logits = runner.infer(spec.preprocess(frame.image, roi))
        mask, areas_px, areas_mm2 = post(logits, frame.image.shape, roi)
        sink.write(Result(frame=frame, roi=roi, spec=spec, mask=mask, areas_px=areas_px, areas_mm2=areas_mm2))
        print("frame %d: %s" % (frame.index, ", ".join("%s %d px" % kv for kv in areas_px.items())))
