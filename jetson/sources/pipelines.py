"""Capture pipelines and FFmpeg options for the live sources, as pure functions of their arguments.

Every function here returns a string and touches nothing, so the Jetson variants can be checked on any
machine. The platform-specific elements live in one table, :data:`ELEMENTS` (from docs/PLATFORM facts:
``nvarguscamerasrc`` / ``nvv4l2decoder`` / ``nvvidconv`` on a Jetson, ``avdec_*`` / ``videoconvert`` on x86).
Live pipelines end in an appsink that keeps one buffer and drops older ones, never syncing to the clock,
so a slow reader never builds a backlog inside GStreamer.
"""
from __future__ import annotations

import re
from fractions import Fraction
from typing import Dict, List, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jetseg.errors import SourceError

APPSINK = "appsink drop=true max-buffers=1 sync=false"

#: What each live source opens with when OpenCV has no GStreamer (docs/sources.md, "Live capture"; jetseg doctor
#: says the same): None where the source needs GStreamer.
WITHOUT_GSTREAMER: Dict[str, Optional[str]] = {"v4l2": "OpenCV's V4L2 backend", "rtsp": "OpenCV's FFmpeg backend",
                                               "udp": "OpenCV's FFmpeg backend", "csi": None, "gst": None}


def without_gstreamer() -> str:
    """One sentence: which live sources need GStreamer and what the others use without it."""
    need = ", ".join("%s://" % s for s, how in WITHOUT_GSTREAMER.items() if how is None)
    other = "; ".join("%s:// uses %s" % (s, how) for s, how in WITHOUT_GSTREAMER.items() if how is not None)
    return "%s sources need it; without it %s (more latency than GStreamer)" % (need, other)

# platform -> role -> element chain. One place to change when a JetPack release differs.
ELEMENTS: Dict[str, Dict[str, str]] = {
    "jetson": {
        "to_bgr": "nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR",
        "h264": "h264parse ! nvv4l2decoder",
        "h265": "h265parse ! nvv4l2decoder",
        "auto": "decodebin",
        "jpeg": "nvjpegdec ! video/x-raw",  # (unconfirmed on every JetPack; jpegdec is the CPU fallback)
    },
    "x86": {
        "to_bgr": "videoconvert ! video/x-raw,format=BGR",
        "h264": "h264parse ! avdec_h264",
        "h265": "h265parse ! avdec_h265",
        "auto": "decodebin",
        "jpeg": "jpegdec",
    },
}
CODECS = ("h264", "h265", "auto")
V4L2_FORMATS = ("yuy2", "mjpg")


def _platform(jetson: bool) -> Dict[str, str]:
    return ELEMENTS["jetson" if jetson else "x86"]


def quote(value: str) -> str:
    """A property value for gst_parse_launch, in double quotes."""
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')


def framerate(fps: float) -> str:
    """GStreamer fraction for a frame rate: 30 -> ``30/1``, 29.97 -> ``2997/100``."""
    frac = Fraction(fps).limit_denominator(1001)
    return "%d/%d" % (frac.numerator, frac.denominator)


def _caps(media: str, width: Optional[int], height: Optional[int], fps: Optional[float],
          fmt: Optional[str] = None) -> str:
    parts = [media]
    if fmt:
        parts.append("format=%s" % fmt)
    if width:
        parts.append("width=%d" % width)
    if height:
        parts.append("height=%d" % height)
    if fps:
        parts.append("framerate=%s" % framerate(fps))
    return ",".join(parts)


def csi_pipeline(sensor_id: int = 0, width: int = 1280, height: int = 720, fps: float = 30.0,
                 flip: int = 0) -> str:
    """Jetson CSI camera through nvarguscamerasrc (exists only on a Jetson)."""
    caps = _caps("video/x-raw(memory:NVMM)", width, height, fps, "NV12")
    return ("nvarguscamerasrc sensor-id=%d ! %s ! nvvidconv flip-method=%d ! video/x-raw,format=BGRx ! "
            "videoconvert ! video/x-raw,format=BGR ! %s" % (sensor_id, caps, flip, APPSINK))


def v4l2_pipeline(device: str, width: Optional[int] = None, height: Optional[int] = None,
                  fps: Optional[float] = None, fmt: Optional[str] = None, jetson: bool = False) -> str:
    """USB camera or capture card; ``fmt`` is ``yuy2`` (raw), ``mjpg`` (JPEG-compressed) or None (any raw)."""
    elements = _platform(jetson)
    if fmt == "mjpg":
        source = "%s ! %s" % (_caps("image/jpeg", width, height, fps), elements["jpeg"])
    else:
        source = _caps("video/x-raw", width, height, fps, "YUY2" if fmt == "yuy2" else None)
    return "v4l2src device=%s ! %s ! %s ! %s" % (quote(device), source, elements["to_bgr"], APPSINK)


def rtsp_pipeline(url: str, latency_ms: int = 200, codec: str = "h264", transport: Optional[str] = "tcp",
                  jetson: bool = False) -> str:
    """RTSP camera or encoder; ``latency_ms`` replaces rtspsrc's 2000 ms default jitter buffer."""
    elements = _platform(jetson)
    protocols = " protocols=%s" % transport if transport else ""
    if codec == "auto":
        chain = elements["auto"]
    else:
        chain = "rtp%sdepay ! %s" % (codec, elements[codec])
    return ("rtspsrc location=%s latency=%d%s ! %s ! %s ! %s"
            % (quote(url), latency_ms, protocols, chain, elements["to_bgr"], APPSINK))


def udp_pipeline(host: str, port: int, codec: str = "h264", jetson: bool = False) -> str:
    """An MPEG-TS stream over UDP (``ffmpeg ... -f mpegts udp://HOST:PORT``), received on HOST:PORT."""
    elements = _platform(jetson)
    address = "address=%s " % host if host else ""
    demux = elements["auto"] if codec == "auto" else "tsdemux ! %s" % elements[codec]
    return ("udpsrc %sport=%d ! video/mpegts,systemstream=true ! %s ! %s ! %s"
            % (address, port, demux, elements["to_bgr"], APPSINK))


def check_appsink(pipeline: str) -> str:
    """Return the pipeline if its last element is an appsink, else raise a SourceError saying so."""
    last = pipeline.strip().split("!")[-1].strip()
    if not pipeline.strip() or not re.match(r"appsink(\s|$)", last):
        raise SourceError("gst:// pipeline must end in an appsink, got %r; expected e.g. gst://videotestsrc "
                          "is-live=true ! videoconvert ! video/x-raw,format=BGR ! %s" % (last or pipeline, APPSINK))
    return pipeline.strip()


def ffmpeg_capture_options(kind: str, transport: Optional[str] = None) -> str:
    """The value for OPENCV_FFMPEG_CAPTURE_OPTIONS: no input buffering, low-delay decoding."""
    options: List[str] = ["fflags;nobuffer", "flags;low_delay"]
    if kind == "rtsp" and transport:
        options.append("rtsp_transport;%s" % transport)
    return "|".join(options)


def ffmpeg_udp_url(url: str) -> str:
    """A udp:// URL for FFmpeg with ``overrun_nonfatal=1`` (a late reader loses packets, not the stream)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(key == "overrun_nonfatal" for key, _ in query):
        query.append(("overrun_nonfatal", "1"))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
