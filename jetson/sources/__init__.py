"""Frame sources, named by URI, one registry for the runtime, calibration and benchmarks.

    from jetseg.jetson.sources import open_source
    with open_source("synthetic://ultrasound?frames=100") as src:
        while True:
            frame = src.read(timeout=1.0)
            if frame is None:
                if src.ended:
                    break
                continue          # live source, nothing new yet
            ...

URI forms: ``synthetic://ultrasound``, ``synthetic://endoscopy``, a video file path or ``file://path``,
an image folder, ``dicom://cine.dcm``, ``nifti://volume.nii.gz``, ``v4l2:///dev/video0``, ``csi://0``,
``rtsp://...``, ``udp://...``, ``gst://<pipeline>``.
"""
from __future__ import annotations

from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.sources.base import SOURCES, Source, open_source, parse_uri

__all__ = ["Frame", "Source", "SOURCES", "open_source", "parse_uri"]
