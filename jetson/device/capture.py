"""What this machine can capture from: V4L2 devices and the GStreamer elements jetseg's Jetson pipelines use
(docs/PLATFORM: ``nvarguscamerasrc`` for CSI cameras, ``nvv4l2decoder`` for H.264 files and RTSP, ``nvvidconv``
for the colour conversion in NVMM memory), and whether OpenCV was built with GStreamer.

Plain facts for ``jetseg selftest`` and ``jetseg doctor``; nothing is opened or streamed.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional

#: GStreamer elements of JetPack's accelerated capture and decode (nvidia-l4t-gstreamer).
JETSON_ELEMENTS = ("nvarguscamerasrc", "nvv4l2decoder", "nvvidconv")


@dataclass
class CaptureFacts:
    """V4L2 device nodes, GStreamer elements found and missing, OpenCV's GStreamer support.

    Attributes:
        v4l2_devices: ``/dev/video*`` nodes (a capture card or USB camera each; none is not an error).
        gst_inspect: path of ``gst-inspect-1.0``, or None when GStreamer's tools are not installed.
        elements: element name -> present.
        opencv_gstreamer: True/False from ``cv2.getBuildInformation()``, None when OpenCV is missing.
    """

    v4l2_devices: List[str] = field(default_factory=list)
    gst_inspect: Optional[str] = None
    elements: Dict[str, bool] = field(default_factory=dict)
    opencv_gstreamer: Optional[bool] = None

    @property
    def missing(self) -> List[str]:
        return [name for name, present in self.elements.items() if not present]

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def capture_facts(dev: str = "/dev", elements: Any = JETSON_ELEMENTS,
                  run: Callable[..., Any] = subprocess.run) -> CaptureFacts:
    """Collect :class:`CaptureFacts` (``dev`` and ``run`` are for tests)."""
    facts = CaptureFacts(v4l2_devices=sorted(glob.glob(os.path.join(dev, "video*"))),
                         gst_inspect=shutil.which("gst-inspect-1.0"))
    for name in elements:
        if facts.gst_inspect is None:
            facts.elements[name] = False
            continue
        done = run([facts.gst_inspect, name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        facts.elements[name] = done.returncode == 0
    facts.opencv_gstreamer = opencv_has_gstreamer()
    return facts


def opencv_has_gstreamer() -> Optional[bool]:
    """Whether OpenCV's build information says ``GStreamer: YES`` (None without OpenCV)."""
    try:
        import cv2
    except ImportError:
        return None
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False
