"""``http://HOST:PORT``: the web viewer, ``/metrics`` and ``/health``, served by the standard library.

Routes:
    ``/``             the viewer page (jetson/web/: live overlay stream and live statistics)
    ``/stream.mjpg``  multipart MJPEG of the newest overlay, at most ``max_fps`` frames/s per client
    ``/frame.jpg``    the newest overlay as one JPEG (503 until the first frame)
    ``/stats``        JSON: the pipeline's ``context.stats()`` plus ``"viewer"``, this sink's own figures
    ``/metrics``      the pipeline's ``context.metrics()`` (Prometheus text format)
    ``/health``       JSON from ``context.health()``; 503 when it reports a failure, a stop or that it is still
                      starting (the source not open yet; ``"degraded"``
                      stays 200: the process works, its reasons say what is wrong); never needs the token

The server binds exactly the host given: ``http://:8080`` and ``http://localhost:8080`` mean 127.0.0.1,
``http://0.0.0.0:8080`` every interface. Port 0 picks a free port; :attr:`WebSink.address` and
:attr:`WebSink.url` give the real one. With a token (option ``token=`` or ``SinkContext.extra["token"]``)
every route but ``/health`` needs ``?token=...``, ``Authorization: Bearer ...`` or the cookie that a
successful ``?token=`` request sets (so the page's own requests need no token in their URLs).

``write()`` only swaps in the newest Result. JPEG encoding happens lazily in the server's threads, once per
frame however many clients watch, and not at all while nobody does. Each client has its own thread and a
socket timeout, so a slow client delays nobody else and never the pipeline.
"""
from __future__ import annotations

import collections
import hmac
import json
import logging
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Deque, Dict, Optional, Set, Tuple
from urllib.parse import parse_qs, urlsplit

from jetseg.errors import SinkError
from jetseg.jetson.frames.slot import Slot
from jetseg.jetson.sinks.base import Sink, SinkContext
from jetseg.jetson.sinks.tokens import check_token
from jetseg.optional import require
from jetseg.redact import add_secret, redact

log = logging.getLogger("jetseg.sinks.web")

DEFAULT_PORT = 8080
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/index.html": ("index.html", "text/html; charset=utf-8"),
          "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/style.css": ("style.css", "text/css; charset=utf-8")}
BOUNDARY = b"jetsegframe"
COOKIE = "jetseg_token"
CLIENT_TIMEOUT_S = 15.0
SECURITY_HEADERS = (("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"),
                    ("Referrer-Policy", "no-referrer"), ("X-Frame-Options", "DENY"),
                    ("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data:; "
                                                "style-src 'self'; script-src 'self'"))


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
        self.max_fps = opts.number("max_fps", 15.0, positive=True)
        self.quality = opts.integer("quality", 80, minimum=1, maximum=100)
        self.roi = opts.flag("roi", None)
        self.max_clients = opts.integer("max_clients", 8, minimum=1)
        opts.done()
        if self.token_option is not None:
            check_token(self.token_option, "the http:// sink's token=")
        self.host, self.port = parse_address(uri)
        self.token: Optional[str] = None
        self.roi_only = False
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # the viewer's figures below
        self._newest = Slot()  # the newest Result; viewers peek at it (version = frames written)
        self._times: Deque[float] = collections.deque(maxlen=60)
        self._latency_ms: Optional[float] = None
        self._last_write = 0.0
        self.skipped = 0
        self._encode_lock = threading.Lock()
        self._jpeg: Optional[Tuple[int, bytes]] = None
        self._encoded_at = 0.0
        self.encoded = 0
        self._clients: Set[socket.socket] = set()
        self._clients_lock = threading.Lock()
        self._cv2: Any = None

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
        server_class = _Server6 if ":" in self.host else _Server
        try:
            self._server = server_class((self.host, self.port), _Handler)
        except OSError as exc:
            raise SinkError("cannot serve the web viewer on %s:%d: %s; choose another port (http://%s:0 picks "
                            "a free one)" % (self.host, self.port, exc.strerror or exc, self.host)) from None
        self._server.sink = self
        self._stopping.clear()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="jetseg-web", daemon=True)
        self._thread.start()
        if self.host not in ("127.0.0.1", "::1") and not self.token:
            log.warning("the web viewer is reachable from the network at %s without a token; set token=... "
                        "to protect patient images", self.url)
        log.info("web viewer at %s", self.url)

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
        self._stopping.set()
        self._newest.wake()
        with self._clients_lock:
            clients = list(self._clients)
        for conn in clients:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                log.debug("a viewer connection was already closed")
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self.port = int(server.server_address[1])
        log.info("web viewer on port %d stopped", self.port)

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
        out: Dict[str, Any] = {
            "model": spec.name if spec else None,
            "classes": list(spec.classes) if spec else [],
            "colors": [list(c) for c in spec.colors] if spec and spec.colors else [],
            "frames": self.written, "skipped": self.skipped, "fps": round(fps, 2),
            "latency_ms": None if latency is None else round(latency, 2),
            "age_s": None if result is None else round(now - last_write, 3),
            "stream_clients": clients, "encoded": self.encoded, "max_fps": self.max_fps,
            "roi_only": self.roi_only,
        }
        if result is not None:
            out.update(frame=result.index, inference_ms=round(float(result.inference_ms), 3),
                       areas_px=dict(result.areas_px))
            out["areas_mm2"] = None if result.areas_mm2 is None else {
                k: round(float(v), 3) for k, v in result.areas_mm2.items()}
        return out

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
        """``(seq, jpeg)`` of the newest overlay, encoded at most once per frame and ``max_fps`` times a second."""
        with self._encode_lock:
            seq, result = self._newest.peek()
            if result is None:
                return None
            cached = self._jpeg
            fresh = time.monotonic() - self._encoded_at >= 1.0 / self.max_fps
            if cached is None or (cached[0] != seq and fresh):
                image = result.overlay(roi_only=self.roi_only)
                ok, buf = self._cv2.imencode(".jpg", image, [int(self._cv2.IMWRITE_JPEG_QUALITY),
                                                             self.quality])
                if not ok:
                    raise SinkError("could not encode frame %d as JPEG" % result.index)
                self._jpeg = cached = (seq, buf.tobytes())
                self._encoded_at = time.monotonic()
                self.encoded += 1
            return cached

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
        for part in handler.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sink: WebSink

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, socket.timeout)):
            log.debug("viewer %s disconnected", client_address[0])
        else:
            log.exception("web viewer request from %s failed", client_address[0])


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "jetseg"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    # Malformed requests (binary garbage, a TLS hello) are answered as HTTP/1.0, with a status line, not
    # as HTTP/0.9 (a bare body).
    default_request_version = "HTTP/1.0"
    timeout = CLIENT_TIMEOUT_S

    def do_GET(self) -> None:
        sink = self.server.sink
        parts = urlsplit(self.path)
        route, query = parts.path, parse_qs(parts.query)
        try:
            if route == "/health":
                self._health(sink)
            elif not sink.authorised(self, query):
                self._send(401, b"this jetseg viewer needs a token: open /?token=YOUR_TOKEN or send "
                                b"'Authorization: Bearer YOUR_TOKEN'\n", "text/plain; charset=utf-8",
                           [("WWW-Authenticate", 'Bearer realm="jetseg"')])
            elif route in STATIC:
                self._static(sink, route, query)
            elif route == "/stream.mjpg":
                self._stream(sink)
            elif route == "/frame.jpg":
                frame = sink.newest_jpeg()
                if frame is None:
                    self._send(503, b"no frame yet\n", "text/plain; charset=utf-8", [("Retry-After", "1")])
                else:
                    self._send(200, frame[1], "image/jpeg", [("X-Frame-Seq", str(frame[0]))])
            elif route == "/stats":
                self._json(200, sink.stats())
            elif route == "/metrics":
                payload, ctype = sink.run_context.metrics()
                self._send(200, payload, ctype or "text/plain; version=0.0.4; charset=utf-8")
            else:
                self._send(404, b"not found; try / /stream.mjpg /frame.jpg /stats /metrics /health\n",
                           "text/plain; charset=utf-8")
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            log.debug("viewer %s left during %s", self.client_address[0], route)

    def _health(self, sink: WebSink) -> None:
        health = dict(sink.run_context.health() or {})
        failed = health.get("ok") is False or str(health.get("status", "")).lower() in (
            "error", "failed", "down", "unhealthy", "stopped", "starting")
        self._json(503 if failed else 200, health)

    def _static(self, sink: WebSink, route: str, query: Dict[str, Any]) -> None:
        name, ctype = STATIC[route]
        extra = []
        if sink.token and query.get("token"):
            extra.append(("Set-Cookie", "%s=%s; Path=/; HttpOnly; SameSite=Strict" % (COOKIE, sink.token)))
        self._send(200, (WEB_DIR / name).read_bytes(), ctype, extra)

    def _stream(self, sink: WebSink) -> None:
        if not sink.enter_client(self.connection):
            self._send(503, b"too many viewers (max_clients)\n", "text/plain; charset=utf-8",
                       [("Retry-After", "5")])
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=" + BOUNDARY.decode())
            for name, value in SECURITY_HEADERS:
                self.send_header(name, value)
            self.send_header("Pragma", "no-cache")
            self.end_headers()
            interval = 1.0 / sink.max_fps
            sent, next_at = 0, 0.0
            while not sink._stopping.is_set():
                if not sink.wait_newer(sent, timeout=1.0):
                    continue
                delay = next_at - time.monotonic()
                if delay > 0 and sink._stopping.wait(delay):
                    break
                frame = sink.newest_jpeg()
                if frame is None:
                    continue
                sent, data = frame
                next_at = time.monotonic() + interval
                self.wfile.write(b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                 % (BOUNDARY, len(data), data))
        except OSError:
            log.debug("stream viewer %s left", self.client_address[0])
        finally:
            sink.leave_client(self.connection)

    def _json(self, code: int, data: Any) -> None:
        self._send(code, json.dumps(data, default=_jsonable).encode("utf-8"), "application/json")

    def _send(self, code: int, body: bytes, ctype: str, headers: Any = ()) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in SECURITY_HEADERS:
            self.send_header(name, value)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        # The path only: a query may hold the token. A malformed request has no path (nor command).
        path = getattr(self, "path", None)
        log.debug("%s %s %s %s", self.client_address[0], getattr(self, "command", None) or "-",
                  urlsplit(path).path if isinstance(path, str) else "-", code)

    def log_error(self, format: str, *args: Any) -> None:
        # send_error() (400 bad request, 414 URI too long, 408 timeout) logs through here: one line, no
        # request text (it may hold a token or binary garbage).
        log.warning("viewer request from %s refused: %s", self.client_address[0],
                    (format % args).split(" (")[0][:120] if args else format[:120])


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays, paths and anything else in stats as JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
