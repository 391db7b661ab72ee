"""Live capture: V4L2 cameras and capture cards, Jetson CSI cameras, RTSP, UDP MPEG-TS, GStreamer pipelines.

All of them share one machinery (:class:`LiveSource`): a grabber thread reads frames as fast as the device
delivers them into a :class:`~jetseg.jetson.frames.slot.Slot` (newest wins), so ``read(timeout)`` always returns the *newest* unseen frame (or
None on timeout) and a frame overwritten before anyone read it is counted in ``dropped``. A lost source
(open failure, read failure, end of stream) is reopened with exponential backoff
(:class:`~jetseg.jetson.sources.reconnect.Backoff`) while ``read()`` keeps
returning None; ``stats()`` reports the state and the ``reconnects`` / ``failures`` counters.

Backends: OpenCV's CAP_GSTREAMER with the pipelines of :mod:`jetseg.jetson.sources.pipelines` when this
cv2 was built with GStreamer; otherwise rtsp:// and udp:// go through CAP_FFMPEG (with low-latency
options) and v4l2:// through CAP_V4L2, while csi:// and gst:// need GStreamer and say so.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np

from jetseg.errors import SourceError
from jetseg.jetson.device.info import on_jetson
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.frames.slot import EMPTY, Slot
from jetseg.jetson.sources import pipelines
from jetseg.jetson.sources.base import Source
from jetseg.jetson.sources.clock import CaptureClock
from jetseg.jetson.sources.reconnect import Backoff
from jetseg.optional import require
from jetseg.options import OptionReader
from jetseg.redact import redact

log = logging.getLogger("jetseg.sources.live")

FFMPEG_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_ENV_LOCK = threading.Lock()
COMMON_OPTIONS = ("backend", "open_timeout", "read_timeout", "backoff", "backoff_max")
NO_GSTREAMER = ("OpenCV here (cv2 %s) was built without GStreamer; on a Jetson use JetPack's python3-opencv (in a "
                "venv made with --system-site-packages, without pip's opencv-python), on Debian/Ubuntu "
                "apt install python3-opencv")


def has_gstreamer(cv2: Any) -> bool:
    """True when this cv2 says ``GStreamer: YES`` in its build information."""
    return re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()) is not None


@contextlib.contextmanager
def ffmpeg_options(value: str) -> Iterator[None]:
    """Set OPENCV_FFMPEG_CAPTURE_OPTIONS while one capture opens, unless the user set it (theirs wins).

    OpenCV reads the variable when a capture opens; the lock keeps two sources from interleaving.
    """
    if not value:  # nothing to set: never wait for another source's open
        yield
        return
    with _ENV_LOCK:
        if FFMPEG_ENV in os.environ:
            yield
            return
        os.environ[FFMPEG_ENV] = value
        try:
            yield
        finally:
            os.environ.pop(FFMPEG_ENV, None)


class Capture:
    """How to open one capture: OpenCV target, API preference, open parameters and post-open settings."""

    def __init__(self, backend: str, target: Any, api: int, params: Optional[List[int]] = None,
                 env: str = "", setup: Optional[Callable[[Any], None]] = None) -> None:
        self.backend = backend
        self.target = target
        self.api = api
        self.params = params or []
        self.env = env
        self.setup = setup


class LiveSource(Source):
    """Base of the live sources: grabber thread, newest-frame mailbox, reconnection with backoff.

    Common options (URI query or keywords):
        backend: ``auto`` (default), or one of the subclass's ``backends`` to force it.
        open_timeout: seconds an open may take (FFmpeg backend; default 5).
        read_timeout: seconds without a frame before the source counts as lost (FFmpeg backend; default 2).
        backoff, backoff_max: first and largest wait between reopen attempts, doubling (default 0.5 s, 10 s).

    Attributes (also in ``stats()``): ``state`` (closed, connecting, running, reconnecting, failed; stats
    say ``stalled`` while running without a frame for longer than ``read_timeout``), ``reconnects``
    (successful reopens after a loss), ``failures`` (failed opens and lost streams), ``captured``.
    """

    live = True
    kind = "live"
    backends: Tuple[str, ...] = ("auto", "gstreamer")
    extra_options: Tuple[str, ...] = ()

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri)
        opts = self.read_options(options)
        self.backend_choice = opts.choice("backend", self.backends, "auto")
        self.open_timeout = opts.number("open_timeout", 5.0, positive=True)
        self.read_timeout = opts.number("read_timeout", 2.0, positive=True)
        self.backoff = opts.number("backoff", 0.5, positive=True)
        self.backoff_max = opts.number("backoff_max", 10.0, positive=True)
        self._configure(opts)
        opts.done()
        self.backend = ""
        self.state = "closed"
        self.reconnects = 0
        self.failures = 0
        self.captured = 0
        self.last_error = ""
        self._capture: Optional[Capture] = None
        self._slot = Slot(1)  # (image, capture time, capture number); the newest frame wins
        self._last_capture = 0.0
        self._native_fps: Optional[float] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # ------------------------------------------------------------------ subclass hooks
    def _configure(self, opts: OptionReader) -> None:
        """Read the subclass's own options."""

    def _gstreamer_pipeline(self, jetson: bool) -> str:
        raise NotImplementedError

    def _fallback(self, cv2: Any) -> Capture:
        """The capture to use when GStreamer is not available (or another backend is forced)."""
        raise SourceError("%s needs OpenCV with GStreamer: %s" % (self.kind + "://", NO_GSTREAMER % cv2.__version__))

    @property
    def display_uri(self) -> str:
        return redact(self.uri)

    @property
    def fps(self) -> Optional[float]:
        """The frame rate the capture reports once open (or the requested ``fps``), else None."""
        return self._native_fps or getattr(self, "rate", None)

    # ------------------------------------------------------------------ backend selection
    def _select(self) -> Capture:
        cv2 = require("cv2", "live capture")
        gst = has_gstreamer(cv2)
        choice = self.backend_choice
        if choice == "gstreamer" or (choice == "auto" and gst):
            if not gst:
                raise SourceError("%s backend=gstreamer: %s" % (self.kind, NO_GSTREAMER % cv2.__version__))
            pipeline = self._gstreamer_pipeline(on_jetson())
            return Capture("gstreamer", pipeline, cv2.CAP_GSTREAMER)
        return self._fallback(cv2)

    def _open(self) -> None:
        self._capture = self._select()
        self.backend = self._capture.backend
        self._stop = threading.Event()
        self._slot = Slot(1)
        self.state = "connecting"
        self._thread = threading.Thread(target=self._grab_loop, name="jetseg-capture-%s" % self.kind, daemon=True)
        self._thread.start()

    def _close(self) -> None:
        self._stop.set()
        self._slot.wake()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=1.0)
            if thread.is_alive():
                log.debug("%s: capture thread is still inside OpenCV; it exits after its timeout", self.display_uri)
        self.state = "closed"
        self._slot.clear()

    # ------------------------------------------------------------------ grabber thread
    def _open_capture(self) -> Any:
        cv2 = require("cv2", "live capture")
        spec = self._capture
        assert spec is not None
        with ffmpeg_options(spec.env):
            if spec.params:
                cap = cv2.VideoCapture(spec.target, spec.api, spec.params)
            else:
                cap = cv2.VideoCapture(spec.target, spec.api)
        if not cap.isOpened():
            cap.release()
            raise OSError("could not open %s with OpenCV's %s backend" % (self.display_uri, spec.backend))
        if spec.setup is not None:
            spec.setup(cap)
        return cap

    def _grab_loop(self) -> None:
        try:
            self._grab()
        except Exception as exc:  # a bug or an unexpected OpenCV failure: report it, never die silently
            self.state = "failed"
            self.last_error = "capture thread failed: %s: %s" % (type(exc).__name__, exc)
            log.exception("%s: capture thread failed", self.display_uri)
            self._slot.wake()

    def _grab(self) -> None:
        cv2 = require("cv2", "live capture")
        capture_errors = (OSError, cv2.error)
        backoff = Backoff(self.backoff, self.backoff_max)
        ever_opened = False
        stop = self._stop
        while not stop.is_set():
            try:
                cap = self._open_capture()
            except capture_errors as exc:
                self._lost(" ".join(str(exc).split()) or type(exc).__name__)
                if stop.wait(backoff.next()):
                    break
                continue
            native = cap.get(cv2.CAP_PROP_FPS)
            if native and 0 < native < 1000:
                self._native_fps = float(native)
            if ever_opened:
                self.reconnects += 1
                log.info("%s: reconnected (%d)", self.display_uri, self.reconnects)
            ever_opened = True
            self.state = "running"
            got_frame = False
            why = "no frame (stream lost or ended)"
            clock = CaptureClock(monotonic_source=self.kind == "v4l2")  # capture stamps: jetson/sources/clock.py
            try:
                while not stop.is_set():
                    ok, image = cap.read()
                    if not ok or image is None:
                        break
                    got_frame = True
                    self._put(image, clock.stamp(cap.get(getattr(cv2, "CAP_PROP_POS_MSEC", 0)), time.monotonic()))
            except cv2.error as exc:
                why = "read failed: %s" % " ".join(str(exc).split())
            finally:
                cap.release()
            if stop.is_set():
                break
            if got_frame:
                backoff.reset()
            self._lost("%s: %s" % (self.display_uri, why))
            if stop.wait(backoff.next()):
                break
        self.state = "closed"

    def _lost(self, why: str) -> None:
        self.failures += 1
        self.last_error = why
        self.state = "reconnecting"
        log.warning("%s; retrying with backoff (failure %d)", why, self.failures)

    def _put(self, image: np.ndarray, stamp: Optional[float] = None) -> None:
        now = time.monotonic()
        self.captured += 1
        self._last_capture = now
        self.dropped += self._slot.put((image, now if stamp is None else stamp, self.captured))

    # ------------------------------------------------------------------ reading
    def _read(self, timeout: Optional[float]) -> Optional[Frame]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            item = self._slot.get(0.0)
            if item is not EMPTY:
                break
            if self._stop.is_set():
                return None
            if self.state == "failed":
                raise SourceError("%s: %s" % (self.display_uri, self.last_error))
            remaining = 0.5 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return None
            item = self._slot.get(remaining)
            if item is not EMPTY:
                break
        image, stamp, seq = item
        return Frame(index=self.delivered, image=image, timestamp=stamp, source_id=self.display_uri,
                     meta={"seq": seq, "backend": self.backend})

    def stats(self) -> Dict[str, Any]:
        out = super().stats()
        age = time.monotonic() - self._last_capture if self._last_capture else None
        state = self.state
        if state == "running" and age is not None and age > self.read_timeout:
            state = "stalled"  # open, but no frame for longer than read_timeout
        out.update({"uri": self.display_uri, "state": state, "backend": self.backend,
                    "captured": self.captured, "reconnects": self.reconnects, "failures": self.failures,
                    "last_error": self.last_error, "last_frame_age_s": None if age is None else round(age, 3)})
        return out

    # ------------------------------------------------------------------ helpers for subclasses
    def _ffmpeg_params(self, cv2: Any) -> List[int]:
        params: List[int] = []
        for name, seconds in (("CAP_PROP_OPEN_TIMEOUT_MSEC", self.open_timeout),
                              ("CAP_PROP_READ_TIMEOUT_MSEC", self.read_timeout)):
            if hasattr(cv2, name):
                params += [getattr(cv2, name), int(seconds * 1000)]
        return params


def _split_url(url: str, names: Tuple[str, ...]) -> Tuple[str, Dict[str, str]]:
    """Take jetseg's options out of a network URL's query; the rest stays in the URL for the stream."""
    parts = urlsplit(url)
    mine: Dict[str, str] = {}
    rest = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in names:
            mine[key] = value
        else:
            rest.append((key, value))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment)), mine


class _NetworkSource(LiveSource):
    backends = ("auto", "gstreamer", "ffmpeg")

    def __init__(self, uri: str, **options: Any) -> None:
        url, query = _split_url(uri, COMMON_OPTIONS + self.extra_options)
        query.update(options)
        super().__init__(url, **query)


class RTSPSource(_NetworkSource):
    """``rtsp://[user:pass@]host[:port]/path``; options ``latency`` (ms, GStreamer jitter buffer, default 200),
    ``transport`` (tcp default, or udp), ``codec`` (h264 default, h265, auto) for the GStreamer pipeline."""

    kind = "rtsp"
    extra_options = ("latency", "transport", "codec")

    def _configure(self, opts: OptionReader) -> None:
        self.latency = opts.integer("latency", 200, minimum=0)
        self.transport = opts.choice("transport", ("tcp", "udp"), "tcp")
        self.codec = opts.choice("codec", pipelines.CODECS, "h264")

    def _gstreamer_pipeline(self, jetson: bool) -> str:
        return pipelines.rtsp_pipeline(self.uri, self.latency, self.codec, self.transport, jetson)

    def _fallback(self, cv2: Any) -> Capture:
        return Capture("ffmpeg", self.uri, cv2.CAP_FFMPEG, self._ffmpeg_params(cv2),
                       pipelines.ffmpeg_capture_options("rtsp", self.transport))


class UDPSource(_NetworkSource):
    """``udp://HOST:PORT``: receive an MPEG-TS stream sent to HOST:PORT; option ``codec`` (h264 default, h265,
    auto) for the GStreamer pipeline. Other query parameters go to FFmpeg's udp protocol."""

    kind = "udp"
    extra_options = ("codec",)

    def _configure(self, opts: OptionReader) -> None:
        self.codec = opts.choice("codec", pipelines.CODECS, "h264")
        parts = urlsplit(self.uri)
        try:
            port = parts.port
        except ValueError:
            port = None
        if not port:
            raise SourceError("udp source %s has no port; expected udp://HOST:PORT, e.g. udp://127.0.0.1:5000"
                              % self.uri)
        self.host, self.port = parts.hostname or "", port

    def _gstreamer_pipeline(self, jetson: bool) -> str:
        return pipelines.udp_pipeline(self.host, self.port, self.codec, jetson)

    def _fallback(self, cv2: Any) -> Capture:
        return Capture("ffmpeg", pipelines.ffmpeg_udp_url(self.uri), cv2.CAP_FFMPEG, self._ffmpeg_params(cv2),
                       pipelines.ffmpeg_capture_options("udp"))


class V4L2Source(LiveSource):
    """``v4l2:///dev/video0`` (or ``v4l2://0``); options ``width``, ``height``, ``fps``, ``format`` (YUY2 or
    MJPG; default: the device's)."""

    kind = "v4l2"
    backends = ("auto", "gstreamer", "v4l2")

    def _configure(self, opts: OptionReader) -> None:
        self.width = opts.integer("width", None, minimum=1)
        self.height = opts.integer("height", None, minimum=1)
        self.rate = opts.number("fps", None, positive=True)
        self.format = opts.choice("format", pipelines.V4L2_FORMATS, "") or None
        target = self.uri.strip()
        self.device = "/dev/video%s" % target if target.isdigit() else target
        if not self.device.startswith("/dev/"):
            raise SourceError("v4l2 source %r: expected a device such as v4l2:///dev/video0 or v4l2://0" % self.uri)
        self.local_device = self.device  # run --check says when it does not exist (Source.preflight)

    def _gstreamer_pipeline(self, jetson: bool) -> str:
        return pipelines.v4l2_pipeline(self.device, self.width, self.height, self.rate, self.format, jetson)

    def _fallback(self, cv2: Any) -> Capture:
        def setup(cap: Any) -> None:
            if self.format:
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*("YUYV" if self.format == "yuy2" else "MJPG")))
            for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, self.width), (cv2.CAP_PROP_FRAME_HEIGHT, self.height),
                                (cv2.CAP_PROP_FPS, self.rate)):
                if value:
                    cap.set(prop, value)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)

        return Capture("v4l2", self.device, cv2.CAP_V4L2, setup=setup)


class CSISource(LiveSource):
    """``csi://0``: a Jetson CSI camera (nvarguscamerasrc); options ``width`` (1280), ``height`` (720),
    ``fps`` (30), ``flip`` (nvvidconv flip-method, 0)."""

    kind = "csi"

    def _configure(self, opts: OptionReader) -> None:
        self.width = opts.integer("width", 1280, minimum=1)
        self.height = opts.integer("height", 720, minimum=1)
        self.rate = opts.number("fps", 30.0, positive=True)
        self.flip = opts.integer("flip", 0, minimum=0)
        target = self.uri.strip() or "0"
        if not target.isdigit():
            raise SourceError("csi source %r: expected a sensor number such as csi://0" % self.uri)
        self.sensor = int(target)

    def _gstreamer_pipeline(self, jetson: bool) -> str:
        if not jetson:
            raise SourceError("csi://%d needs a Jetson (nvarguscamerasrc comes with JetPack); this machine has no "
                              "/etc/nv_tegra_release: use v4l2:///dev/videoN for a USB camera" % self.sensor)
        return pipelines.csi_pipeline(self.sensor, self.width, self.height, self.rate, self.flip)


class GstSource(LiveSource):
    """``gst://<pipeline ending in appsink>``, passed to OpenCV's GStreamer backend verbatim."""

    kind = "gst"

    def _configure(self, opts: OptionReader) -> None:
        self.pipeline = pipelines.check_appsink(self.uri)

    @property
    def display_uri(self) -> str:
        return "gst://" + self.pipeline

    def _gstreamer_pipeline(self, jetson: bool) -> str:
        return self.pipeline
