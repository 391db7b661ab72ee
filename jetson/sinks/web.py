"""``http://HOST:PORT``: the web viewer, ``/metrics`` and ``/health``, served by the standard library.

Routes:
    ``/``             the viewer page (jetson/web/: live overlay stream and live statistics)
    ``/stream.mjpg``  multipart MJPEG of the newest overlay, each frame as it is written (``max_fps=`` caps
                      the rate per client); each part is closed (its boundary written) as soon as it is sent, so
                      a browser shows it at once. Part headers ``X-Frame-Index`` and ``X-Captured-Ms`` (capture
                      time, ms since the epoch) name the picture. ``?layers=1`` (the viewer page) sends per frame
                      a JSON part (index, capture time, areas), the plain picture (JPEG: the frame, or an
                      enhancement model's enhanced frame) and the class-index mask
                      (8-bit PNG), so the page draws the overlay itself; at the end a last JSON part
                      ``{"state": "ended"}`` (finite source done) or ``{"state": "stopped"}``.
    ``/frame.jpg``    the newest overlay as one JPEG (503 until the first frame)
    ``/stats``        JSON: the pipeline's ``context.stats()`` plus ``"viewer"``, this sink's own figures
    ``/metrics``      the pipeline's ``context.metrics()`` (Prometheus text format)
    ``POST /reference`` a registration model registers the next frames against the newest frame (header
                      ``X-Requested-With: jetseg`` required; 409 for other tasks or ``reference=previous``)
    ``/health``       JSON from ``context.health()``; 503 when it reports a failure, a stop or that it is still
                      starting (the source not open yet; ``"degraded"``
                      stays 200: the process works, its reasons say what is wrong); never needs the token

The server binds exactly the host given: ``http://:8080`` and ``http://localhost:8080`` mean 127.0.0.1,
``http://0.0.0.0:8080`` every interface. Port 0 picks a free port; :attr:`WebSink.address` and
:attr:`WebSink.url` give the real one. With a token (option ``token=`` or ``SinkContext.extra["token"]``)
every route but ``/health`` needs ``?token=...``, ``Authorization: Bearer ...`` or the cookie that a
successful ``?token=`` request sets (so the page's own requests need no token in their URLs).

Options include ``roi=1`` (serve the ROI only) and ``pair=1`` (the input frame and the output side by side,
in the stream, ``/frame.jpg`` and the page alike).

``write()`` only swaps in the newest Result. Encoding happens lazily in the server's threads, once per frame
and layer however many clients watch, and not at all while nobody does. Each client has its own thread, takes
the newest frame when it is ready for one (newest frame wins per client) and has a socket timeout, so a slow
client delays nobody else and never the pipeline.
"""
from __future__ import annotations

import collections
import hmac
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Deque, Dict, Optional, Set, Tuple

import numpy as np

from jetseg.errors import JetsegError, SinkError
from jetseg.jetson.frames.slot import Slot
from jetseg.jetson.sinks.base import Sink, SinkContext
from jetseg.jetson.sinks.tokens import check_token
from jetseg.jetson.sinks.webhttp import COOKIE, LAYER_TYPES, STATIC, WEB_DIR, Server, Server6, jsonable, part
from jetseg.jetson.sinks.webpng import indexed_png, palette_chunks
from jetseg.jetson.sinks.webshare import attach, detach
from jetseg.optional import require
from jetseg.redact import add_secret, redact

log = logging.getLogger("jetseg.sinks.web")

DEFAULT_PORT = 8080


def parse_address(target: str) -> Tuple[str, int]:
    """``":8080"`` -> ``("127.0.0.1", 8080)``; ``"localhost"`` -> 127.0.0.1; ``"[::1]:0"`` -> ``("::1", 0)``."""
    text = target.strip().rstrip("/")
    if "@" in text:
        raise SinkError("%s: the web viewer's address takes no user or password; protect it with a token "
                        "(the token= option or --token) and give http://HOST:PORT" % redact("http://" + target))
    if "/" in text:
        raise SinkError("http://%s: the web viewer takes no path; expected http://HOST:PORT such as "
                        "http://127.0.0.1:8080" % target)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") > 1:
        raise SinkError("http://%s: write an IPv6 address in brackets, e.g. http://[::1]:8080" % target)
    else:
        host, _, port_text = text.partition(":")
    if host in ("", "localhost"):
        host = "127.0.0.1"
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or int(port_text) > 65535:
        raise SinkError("http://%s: port %r is not a number from 0 to 65535 (0 picks a free port)"
                        % (target, port_text))
    return host, int(port_text)


class WebSink(Sink):
    """The web viewer. Thread-safe: ``write()`` runs in the pipeline's worker, requests in server threads."""

    kind = "http"

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri)
        opts = self.read_options(options)
        self.token_option = opts.text("token", None)
        if self.token_option is not None and not self.token_option.strip():
            raise SinkError("http://%s: token= is empty; give a token (or leave token= out for no token)" % uri)
        self.max_fps = opts.number("max_fps", None, positive=True)  # None: every frame, at the source's rate
        self.quality = opts.integer("quality", 80, minimum=1, maximum=100)
        self.roi = opts.flag("roi", None)
        self.pair = opts.flag("pair", False)  # input | output side by side
        self.max_clients = opts.integer("max_clients", 8, minimum=1)
        opts.done()
        if self.token_option is not None:
            check_token(self.token_option, "the http:// sink's token=")
        self.host, self.port = parse_address(uri)
        self.token: Optional[str] = None
        self.roi_only = False
        self._server: Optional[Server] = None
        self.stream = ""  # the stream's name when several streams share the viewer (webshare.py)
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # the viewer's figures below
        self._newest = Slot()  # the newest Result; viewers peek at it (version = frames written)
        self._times: Deque[float] = collections.deque(maxlen=60)
        self._latency_ms: Optional[float] = None
        self._last_write = 0.0
        self.skipped = 0
        self._encode_lock = threading.Lock()
        self._encoded: Dict[str, Tuple[int, bytes]] = {}  # layer -> (seq, bytes) of the newest frame
        self.encoded = 0
        self.end_state: Optional[str] = None  # "ended" (the source's end) or "stopped", set by close()
        self._clients: Set[socket.socket] = set()
        self._clients_lock = threading.Lock()
        self._cv2: Any = None
        self._palette: Optional[bytes] = None  # the mask layer's PLTE + tRNS, from the spec's colours

    # ------------------------------------------------------------------ lifecycle
    @property
    def address(self) -> Tuple[str, int]:
        """``(host, port)`` actually bound (the real port when 0 was asked for)."""
        if self._server is not None:
            return self.host, int(self._server.server_address[1])
        return self.host, self.port

    @property
    def url(self) -> str:
        host, port = self.address
        return "http://%s:%d/" % ("[%s]" % host if ":" in host else host, port)

    def _open(self, context: SinkContext) -> None:
        self._cv2 = require("cv2", "the web viewer's JPEG stream")
        self.token = self.token_option or context.extra.get("token") or None
        add_secret(self.token)
        if self.token is not None:
            check_token(self.token, "the sink context")
        self.roi_only = context.roi_only if self.roi is None else self.roi
        for name in set(STATIC.values()):
            if not (WEB_DIR / name[0]).is_file():
                raise SinkError("the web viewer's page %s is missing; reinstall jetseg" % (WEB_DIR / name[0]))
        self.stream = str(context.extra.get("stream") or "")
        group = context.extra.get("viewer_group")
        self._stopping.clear()
        self._server = attach(self, None if group is None else (self.host, self.port, group), self._bind)
        if len(self._server.sinks) > 1:
            log.info("stream %s joins the web viewer at %s (page %ss/%s/)", self.stream, self.url, self.url,
                     self.stream)
            return
        if self.host not in ("127.0.0.1", "::1") and not self.token:
            log.warning("the web viewer is reachable from the network at %s without a token; set token=... "
                        "to protect patient images", self.url)
        log.info("web viewer at %s", self.url)

    def _bind(self) -> Server:
        server_class = Server6 if ":" in self.host else Server
        try:
            return server_class((self.host, self.port))
        except OSError as exc:
            raise SinkError("cannot serve the web viewer on %s:%d: %s; choose another port (http://%s:0 picks "
                            "a free one)" % (self.host, self.port, exc.strerror or exc, self.host)) from None

    def _write(self, result: Any) -> None:
        now = time.monotonic()
        with self._lock:
            previous = self._newest.peek()[1]
            if previous is not None and result.index > previous.index + 1:
                self.skipped += result.index - previous.index - 1
            self._times.append(now)
            captured = result.stamps.get("captured", result.frame.timestamp)
            latency = (now - captured) * 1000.0
            self._latency_ms = latency if self._latency_ms is None else 0.8 * self._latency_ms + 0.2 * latency
            self._last_write = now
            self.written += 1
            self._newest.put(result)

    def _close(self) -> None:
        """Stop serving, drop every client and release the port (returns within about a second)."""
        server, self._server = self._server, None
        if server is None:
            return
        self.end_state = "ended" if self._source_state() == "ended" else "stopped"
        self._stopping.set()
        self._newest.wake()
        deadline = time.monotonic() + 0.5  # the stream clients write their last part and leave
        while time.monotonic() < deadline:
            with self._clients_lock:
                clients = list(self._clients)
            if not clients:
                break
            time.sleep(0.02)
        for conn in clients:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                log.debug("a viewer connection was already closed")
        self.port = int(server.server_address[1])
        if not detach(self, server):  # other streams still serve there
            return
        server.shutdown()
        server.server_close()
        if server.thread is not None:
            server.thread.join(timeout=2.0)
        log.info("web viewer on port %d stopped", self.port)

    def _source_state(self) -> Optional[str]:
        context = self.context
        if context is None:
            return None
        state = (context.stats() or {}).get("source_state")
        return state if isinstance(state, str) else None

    # ------------------------------------------------------------------ state for the handlers
    def viewer_stats(self) -> Dict[str, Any]:
        """This sink's own figures: what the viewer receives, measured here."""
        now = time.monotonic()
        with self._lock:
            result, times, latency = self._newest.peek()[1], list(self._times), self._latency_ms
            last_write = self._last_write
        fps = 0.0
        if len(times) >= 2 and now - times[-1] < max(2.0, 3.0 * (times[-1] - times[-2])):
            fps = (len(times) - 1) / max(1e-9, times[-1] - times[0])
        context = getattr(self, "context", None)
        spec = result.spec if result is not None else (context.spec if context is not None else None)
        with self._clients_lock:
            clients = len(self._clients)
        server = self._server
        out: Dict[str, Any] = {
            "model": spec.name if spec else None,
            "task": spec.task if spec else None,  # the page shows a legend of classes for segmentation only
            "classes": list(spec.classes) if spec and spec.task == "segmentation" else [],
            "colors": [list(c) for c in spec.colors] if spec and spec.colors and spec.task == "segmentation" else [],
            "frames": self.written, "skipped": self.skipped, "fps": round(fps, 2),
            "latency_ms": None if latency is None else round(latency, 2),
            "age_s": None if result is None else round(now - last_write, 3),
            "stream_clients": clients, "encoded": self.encoded, "max_fps": self.max_fps,
            "roi_only": self.roi_only, "now_ms": round(time.time() * 1000.0, 3),
            "spacing_known": bool(spec and spec.pixel_spacing_mm), "stream": self.stream or None,
            "streams": len(server.sinks) if server is not None else 1,
        }
        if result is not None:
            out.update(frame=result.index, inference_ms=round(float(result.inference_ms), 3),
                       areas_px=dict(result.areas_px))
            out["areas_mm2"] = None if result.areas_mm2 is None else {
                k: round(float(v), 3) for k, v in result.areas_mm2.items()}
        return out

    def set_reference(self) -> Tuple[int, str]:
        """``POST /reference``: the newest frame becomes a registration model's reference; ``(HTTP code, message)``."""
        result = self._newest.peek()[1]
        if result is None:
            return 503, "no frame yet"
        if not hasattr(result, "use_as_reference"):
            return 409, "this model's task is %s; only registration models have a reference" % result.spec.task
        try:
            result.use_as_reference()
        except JetsegError as exc:
            return 409, str(exc)
        return 200, "reference: frame %d" % result.index

    @property
    def run_context(self) -> SinkContext:
        """The context given to ``open()`` (the server runs only while the sink is open)."""
        assert self.context is not None, "the web viewer serves only between open() and close()"
        return self.context

    def stats(self) -> Dict[str, Any]:
        """``context.stats()`` with this sink's figures under ``"viewer"`` (the ``/stats`` payload)."""
        out = dict(self.run_context.stats() or {})
        out["viewer"] = self.viewer_stats()
        return out

    def newest_jpeg(self) -> Optional[Tuple[int, bytes]]:
        """``(seq, jpeg)`` of the newest overlay, encoded once per frame."""
        return self.newest_layer("overlay")

    def newest_layer(self, layer: str) -> Optional[Tuple[int, bytes]]:
        """``(seq, bytes)`` of one layer of the newest frame, encoded once per frame however many clients ask.

        Layers: ``overlay`` (JPEG, the mask blended in), ``frame`` (JPEG, the plain picture), ``mask`` (the
        indexed-colour PNG of :mod:`.webpng`, the frame's size), ``meta`` (JSON: index, capture time, areas);
        ``stream`` and ``layers``: the multipart parts of one frame of ``/stream.mjpg`` (the overlay) and of
        ``/stream.mjpg?layers=1`` (meta, frame, mask), shared by every client. With ``roi=1`` every picture is
        cropped to the ROI.
        """
        with self._encode_lock:
            seq, result = self._newest.peek()
            if result is None:
                return None
            return seq, self._cached(layer, seq, result)

    def _cached(self, layer: str, seq: int, result: Any) -> bytes:
        cached = self._encoded.get(layer)
        if cached is None or cached[0] != seq:
            cached = (seq, self._encode(layer, seq, result))
            self._encoded[layer] = cached
            self.encoded += layer == "overlay"
        return cached[1]

    def _encode(self, layer: str, seq: int, result: Any) -> bytes:
        cv2 = self._cv2
        if layer in ("stream", "layers"):
            names = ("meta", "frame", "mask") if layer == "layers" else ("overlay",)
            headers = [("X-Frame-Seq", str(seq)), ("X-Frame-Index", str(result.index)),
                       ("X-Captured-Ms", "%.3f" % captured_epoch_ms(result))]
            return b"".join(part(self._cached(name, seq, result), LAYER_TYPES[name], headers) for name in names)
        if layer == "meta":
            height, width = self._layer_picture(result).shape[:2]
            meta = {"index": result.index, "seq": seq, "captured_ms": captured_epoch_ms(result),
                    "width": int(width), "height": int(height), "inference_ms": round(float(result.inference_ms), 3),
                    "areas_px": dict(result.areas_px), "frozen_s": result.frame.meta.get("frozen_s"),
                    "areas_mm2": None if result.areas_mm2 is None else {
                        k: round(float(v), 3) for k, v in result.areas_mm2.items()}}
            return json.dumps(meta, default=jsonable).encode("utf-8")
        if layer == "mask":
            if self._palette is None:
                self._palette = palette_chunks(result.spec.colors or [])
            return indexed_png(result.labels(self.roi_only, self.pair), self._palette, cv2)
        if layer == "overlay":
            ok, buf = cv2.imencode(".jpg", result.overlay(roi_only=self.roi_only, pair=self.pair),
                                   [int(cv2.IMWRITE_JPEG_QUALITY), self.quality])
        elif layer == "frame":
            ok, buf = cv2.imencode(".jpg", self._layer_picture(result),
                                   [int(cv2.IMWRITE_JPEG_QUALITY), self.quality])
        else:
            raise SinkError("web viewer layer %r: expected one of overlay, frame, mask, meta, stream, layers" % layer)
        if not ok:
            raise SinkError("could not encode the %s of frame %d" % (layer, result.index))
        return bytes(buf.tobytes())

    def _layer_picture(self, result: Any) -> np.ndarray:
        """The picture the page blends the mask layer into (what the sink draws: the task's result decides)."""
        return result.plain(self.roi_only, self.pair)

    def wait_newer(self, seq: int, timeout: float) -> bool:
        """Wait until a frame newer than ``seq`` exists (True) or ``timeout`` passes / the sink closes (False)."""
        if self._stopping.is_set():
            return False
        return self._newest.wait_newer(seq, timeout) and not self._stopping.is_set()

    def authorised(self, handler: BaseHTTPRequestHandler, query: Dict[str, Any]) -> bool:
        if not self.token:
            return True
        offered = list(query.get("token", []))
        header = handler.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            offered.append(header[7:].strip())
        for cookie in handler.headers.get("Cookie", "").split(";"):
            name, _, value = cookie.strip().partition("=")
            if name == COOKIE:
                offered.append(value)
        expected = self.token.encode("utf-8")
        return any(hmac.compare_digest(o.encode("utf-8"), expected) for o in offered)

    def enter_client(self, conn: socket.socket) -> bool:
        with self._clients_lock:
            if len(self._clients) >= self.max_clients:
                return False
            self._clients.add(conn)
            return True

    def leave_client(self, conn: socket.socket) -> None:
        with self._clients_lock:
            self._clients.discard(conn)


def captured_epoch_ms(result: Any) -> float:
    """The frame's capture time (a ``time.monotonic()`` stamp) as ms since the epoch, for pages on other
    clocks."""
    captured = result.stamps.get("captured", result.frame.timestamp)
    return round((time.time() - (time.monotonic() - captured)) * 1000.0, 3)
