"""The web viewer's HTTP side: the routes, the multipart stream and the server classes (see :mod:`.web`)."""
from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from jetseg.jetson.sinks import webshare

if TYPE_CHECKING:
    from jetseg.jetson.sinks.web import WebSink

log = logging.getLogger("jetseg.sinks.web")

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/index.html": ("index.html", "text/html; charset=utf-8"),
          "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/palette.js": ("palette.js", "text/javascript; charset=utf-8"),
          "/style.css": ("style.css", "text/css; charset=utf-8"),
          "/grid.html": ("grid.html", "text/html; charset=utf-8"),
          "/grid.js": ("grid.js", "text/javascript; charset=utf-8")}
BOUNDARY = b"jetsegframe"
COOKIE = "jetseg_token"
LAYER_TYPES = {"meta": "application/json", "frame": "image/jpeg", "mask": "image/png", "overlay": "image/jpeg"}
CLIENT_TIMEOUT_S = 15.0
SECURITY_HEADERS = (("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"),
                    ("Referrer-Policy", "no-referrer"), ("X-Frame-Options", "DENY"),
                    ("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data:; "
                                                "style-src 'self'; script-src 'self'"))


class Server(ThreadingHTTPServer):
    """The viewer's server: ``Server((host, port))`` serves :class:`_Handler` for the sinks in ``sinks``
    (``{stream name: sink}``; several when streams share it, :mod:`.webshare`)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.sinks: Dict[str, WebSink] = {}
        self.thread: Optional[threading.Thread] = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, socket.timeout)):
            log.debug("viewer %s disconnected", client_address[0])
        else:
            log.exception("web viewer request from %s failed", client_address[0])


class Server6(Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: Server
    server_version = "jetseg"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    # Malformed requests (binary garbage, a TLS hello) are answered as HTTP/1.0, with a status line, not
    # as HTTP/0.9 (a bare body).
    default_request_version = "HTTP/1.0"
    timeout = CLIENT_TIMEOUT_S

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        sink, route = webshare.route(self.server, parts.path)
        root = not parts.path.startswith("/s/")
        grid = root and len(self.server.sinks) > 1
        try:
            if sink is None:
                self._send(404, ("no stream %r here; streams: %s\n" % (parts.path[3:].split("/")[0], ", ".join(
                    list(self.server.sinks)))).encode("utf-8"), "text/plain; charset=utf-8")
            elif route == "/health":
                self._health(sink, grid)
            elif not sink.authorised(self, query):
                self._send(401, b"this jetseg viewer needs a token: open /?token=YOUR_TOKEN or send "
                                b"'Authorization: Bearer YOUR_TOKEN'\n", "text/plain; charset=utf-8",
                           [("WWW-Authenticate", 'Bearer realm="jetseg"')])
            elif route == "":  # /s/NAME: the page's own requests are relative to /s/NAME/
                self._send(301, b"", "text/plain", [("Location", "/s/%s/" % sink.stream)])
            elif grid and route in ("/", "/index.html"):
                self._static(sink, "/grid.html", query)
            elif root and route == "/streams":
                self._json(200, webshare.streams(self.server))
            elif route in STATIC:
                self._static(sink, route, query)
            elif route == "/stream.mjpg":
                self._stream(sink, query.get("layers", ["0"])[-1] == "1", _rate(query))
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

    def do_POST(self) -> None:
        """``POST /reference`` (``/s/NAME/reference`` for a stream of a shared viewer): a registration model
        registers the next frames against the frame on screen. It needs the header ``X-Requested-With: jetseg``
        (a page of another site cannot send it) and the token."""
        parts = urlsplit(self.path)
        sink, route = webshare.route(self.server, parts.path)
        if sink is None or route != "/reference":
            self._send(404, b"not found; POST /reference is the only POST route\n", "text/plain; charset=utf-8")
        elif not sink.authorised(self, parse_qs(parts.query)):
            self._send(401, b"this jetseg viewer needs a token\n", "text/plain; charset=utf-8")
        elif self.headers.get("X-Requested-With") != "jetseg":
            self._json(403, {"message": "POST /reference needs the header X-Requested-With: jetseg"})
        else:
            code, message = sink.set_reference()
            self._json(code, {"message": message})

    def _health(self, sink: WebSink, grid: bool) -> None:
        health = webshare.health(self.server) if grid else dict(sink.run_context.health() or {})
        failed = health.get("ok") is False or str(health.get("status", "")).lower() in (
            "error", "failed", "down", "unhealthy", "stopped", "starting")
        self._json(503 if failed else 200, health)

    def _static(self, sink: WebSink, route: str, query: Dict[str, Any]) -> None:
        name, ctype = STATIC[route]
        extra = []
        if sink.token and query.get("token"):
            extra.append(("Set-Cookie", "%s=%s; Path=/; HttpOnly; SameSite=Strict" % (COOKIE, sink.token)))
        self._send(200, (WEB_DIR / name).read_bytes(), ctype, extra)

    def _stream(self, sink: WebSink, layers: bool, max_fps: Optional[float]) -> None:
        if not sink.enter_client(self.connection):
            self._send(503, b"too many viewers (max_clients)\n", "text/plain; charset=utf-8",
                       [("Retry-After", "5")])
            return
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=" + BOUNDARY.decode())
            for name, value in SECURITY_HEADERS:
                self.send_header(name, value)
            self.send_header("Pragma", "no-cache")
            self.end_headers()
            self.wfile.write(b"--%s\r\n" % BOUNDARY)
            interval = max(1.0 / sink.max_fps if sink.max_fps else 0.0, 1.0 / max_fps if max_fps else 0.0)
            sent, next_at = 0, 0.0
            while not sink._stopping.is_set():
                if not sink.wait_newer(sent, timeout=1.0):
                    continue
                delay = next_at - time.monotonic()
                if delay > 0 and sink._stopping.wait(delay):
                    break
                parts = sink.newest_layer("layers" if layers else "stream")
                if parts is None:
                    continue
                sent, data = parts
                next_at = time.monotonic() + interval
                self.wfile.write(data)
            if layers and sink.end_state is not None:
                self.wfile.write(part(json.dumps({"state": sink.end_state}).encode("utf-8"),
                                       "application/json", ()) + b"--%s--\r\n" % BOUNDARY)
        except OSError:
            log.debug("stream viewer %s left", self.client_address[0])
        finally:
            sink.leave_client(self.connection)

    def _json(self, code: int, data: Any) -> None:
        self._send(code, json.dumps(data, default=jsonable).encode("utf-8"), "application/json")

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


def part(data: bytes, ctype: str, headers: Any) -> bytes:
    """One multipart part, closed at once by the boundary that follows it (a browser shows it without waiting
    for the next one)."""
    head = "".join("%s: %s\r\n" % kv for kv in headers)
    return (b"Content-Type: %s\r\nContent-Length: %d\r\n%s\r\n" % (ctype.encode(), len(data), head.encode())
            + data + b"\r\n--%s\r\n" % BOUNDARY)


def _rate(query: Dict[str, Any]) -> Optional[float]:
    """``?max_fps=N`` of one stream request (the grid's tiles ask for fewer frames), or None."""
    try:
        value = float(query.get("max_fps", ["0"])[-1])
    except ValueError:
        return None
    return value if value > 0 else None


def jsonable(value: Any) -> Any:
    """numpy scalars and arrays, paths and anything else in stats as JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
