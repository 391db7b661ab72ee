"""http:// web viewer: real HTTP requests over loopback, and the page rendered by headless Chromium."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Dict, Optional, Tuple

import numpy as np
import pytest

from jetseg.errors import SinkError
from jetseg.jetson.sinks import SinkContext, open_sink
from jetseg.jetson.sinks.web import WebSink, parse_address
from jetseg.jetson.sinks.webpng import EDGE, FILL_ALPHA, png_indices
from tests.fixtures.media import make_result
from tests.fixtures.specs import ROI

TOKEN = "s3cret-Token_1.viewer"
# shaped like jetseg.jetson.frames.metrics.Metrics.stats()
PIPELINE_STATS = {"fps": 24.5, "frames": 120, "dropped": {"source": 2, "pipeline": 1},
                  "latency_ms": {"stages": {"infer": {"mean": 11.2, "p50": 11.0, "p95": 12.5}}}}
METRICS = (b"# TYPE jetseg_frames_total counter\njetseg_frames_total 42\n", "text/plain; version=0.0.4")


def context(spec, **extra: Any) -> SinkContext:
    return SinkContext(spec=spec, fps=25.0, health=lambda: {"status": "ok", "source": "synthetic"},
                       metrics=lambda: METRICS,
                       stats=lambda: PIPELINE_STATS, extra=extra)


def get(url: str, headers: Optional[Dict[str, str]] = None) -> Tuple[int, Any, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=20) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def first_part(url: str) -> Tuple[Any, Dict[str, str], bytes]:
    """Open the MJPEG stream and read its first part: (response headers, part headers, JPEG bytes)."""
    with urllib.request.urlopen(url, timeout=20) as resp:
        assert resp.readline() == b"--jetsegframe\r\n"
        part: Dict[str, str] = {}
        while True:
            line = resp.readline().decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            part[name.lower()] = value.strip()
        return resp.headers, part, resp.read(int(part["content-length"]))


def jpeg(data: bytes) -> np.ndarray:
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a JPEG"
    return image


def red_pixels(image: np.ndarray) -> int:
    b, g, r = (image[..., i].astype(int) for i in range(3))
    return int(((r > 180) & (g < 150) & (b < 150) & (r - g > 60)).sum())


@pytest.fixture
def web(spec):
    sinks = []

    def start(uri: str = "http://127.0.0.1:0", **extra: Any) -> WebSink:
        sink = open_sink(uri)
        sinks.append(sink)
        sink.open(context(spec, **extra))
        return sink

    yield start
    for sink in sinks:
        sink.close()


@pytest.mark.parametrize("target,expected", [
    (":8080", ("127.0.0.1", 8080)), ("localhost:0", ("127.0.0.1", 0)), ("", ("127.0.0.1", 8080)),
    ("0.0.0.0:9000", ("0.0.0.0", 9000)), ("[::1]:0", ("::1", 0)), ("10.1.2.3:80/", ("10.1.2.3", 80))])
def test_parse_address(target, expected):
    assert parse_address(target) == expected


def test_address_errors():
    with pytest.raises(SinkError, match=r"http://host:http: port 'http' is not a number from 0 to 65535"):
        open_sink("http://host:http")
    with pytest.raises(SinkError, match=r"http://127.0.0.1:80/view: the web viewer takes no path"):
        open_sink("http://127.0.0.1:80/view")
    with pytest.raises(SinkError, match=r"http:// sink option max_fps=0.0: expected a number > 0"):
        open_sink("http://:0?max_fps=0")


def test_default_bind_is_loopback(web):
    for uri in ("http://:0", "http://localhost:0"):
        sink = web(uri)
        host, port = sink.address
        assert host == "127.0.0.1" and port > 0
        assert sink._server.socket.getsockname() == ("127.0.0.1", port)
        assert sink.url == "http://127.0.0.1:%d/" % port
        assert get(sink.url + "health")[0] == 200


def test_routes(web, spec):
    sink = web()
    base = sink.url
    status, headers, body = get(base + "frame.jpg")
    assert status == 503 and body == b"no frame yet\n"
    for i in range(3):
        sink.write(make_result(i, spec))

    status, headers, body = get(base + "health")
    assert status == 200 and json.loads(body) == {"status": "ok", "source": "synthetic"}
    status, headers, body = get(base + "metrics")
    assert (status, body, headers["Content-Type"]) == (200, METRICS[0], METRICS[1])

    status, headers, body = get(base + "stats")
    stats = json.loads(body)
    assert headers["Content-Type"] == "application/json"
    assert {k: stats[k] for k in PIPELINE_STATS} == PIPELINE_STATS
    viewer = stats["viewer"]
    assert viewer["model"] == "test-unet" and viewer["classes"] == ["background", "lesion"]
    assert viewer["colors"][1] == [255, 40, 40]
    assert viewer["frame"] == 2 and viewer["frames"] == 3 and viewer["inference_ms"] == 1.5
    area = int(make_result(2, spec).mask.sum())
    assert viewer["areas_px"] == {"lesion": area} and viewer["areas_mm2"] == {"lesion": area * 0.25}

    status, headers, body = get(base + "frame.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert headers["Cache-Control"] == "no-store"
    image = jpeg(body)
    assert image.shape == (96, 128, 3) and red_pixels(image) > 100

    resp_headers, part, data = first_part(base + "stream.mjpg")
    assert resp_headers["Content-Type"] == "multipart/x-mixed-replace; boundary=jetsegframe"
    assert part["content-type"] == "image/jpeg"
    assert red_pixels(jpeg(data)) > 100

    status, headers, body = get(base)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'<script src="app.js">' in body and b'href="style.css"' in body
    assert get(base + "app.js")[1]["Content-Type"].startswith("text/javascript")
    assert get(base + "style.css")[1]["Content-Type"].startswith("text/css")
    status, headers, body = get(base + "../etc/passwd")
    assert status == 404 and body.startswith(b"not found")
    # however many clients, each frame is encoded once: 3 frames written, all requests above saw the last
    assert sink.encoded == 1


def test_health_failure_is_503(spec):
    sink = open_sink("http://127.0.0.1:0")
    sink.open(SinkContext(spec=spec, health=lambda: {"ok": False, "reason": "source lost"}))
    try:
        status, _, body = get(sink.url + "health")
    finally:
        sink.close()
    assert status == 503 and json.loads(body)["reason"] == "source lost"


def test_roi_only_frames(spec):
    sink = open_sink("http://127.0.0.1:0?roi=1")
    sink.open(context(spec))
    try:
        sink.write(make_result(0, spec))
        image = jpeg(get(sink.url + "frame.jpg")[2])
    finally:
        sink.close()
    assert image.shape == (ROI[3], ROI[2], 3)


def test_token(web, spec):
    sink = web(token=TOKEN)  # from SinkContext.extra, as the daemon passes it
    sink.write(make_result(0, spec))
    base = sink.url
    for route in ("", "stats", "metrics", "frame.jpg", "stream.mjpg", "app.js"):
        status, headers, body = get(base + route)
        assert status == 401, route
        assert body.startswith(b"this jetseg viewer needs a token: open /?token=YOUR_TOKEN")
        assert headers["WWW-Authenticate"].startswith("Bearer")
    assert get(base + "stats?token=wrong")[0] == 401
    assert get(base + "stats", {"Authorization": "Bearer wrong"})[0] == 401
    assert get(base + "health")[0] == 200  # liveness probes need no token
    assert get(base + "stats", {"Authorization": "Bearer " + TOKEN})[0] == 200
    assert get(base + "frame.jpg?token=" + TOKEN)[0] == 200
    status, headers, _ = get(base + "?token=" + TOKEN)
    assert status == 200
    cookie = headers["Set-Cookie"]
    assert cookie.startswith("jetseg_token=%s;" % TOKEN) and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    # the page's own requests carry the cookie instead of the token
    assert get(base + "stats", {"Cookie": cookie.split(";")[0]})[0] == 200
    assert get(base + "stats", {"Cookie": "jetseg_token=wrong"})[0] == 401


def test_token_option_and_bad_token(spec):
    sink = open_sink("http://127.0.0.1:0", token=TOKEN)
    sink.open(context(spec))
    try:
        assert get(sink.url + "stats")[0] == 401
    finally:
        sink.close()
    with pytest.raises(SinkError, match=r"the web viewer's token from the http:// sink's token= has 5 characters "
                                        r"and has characters other than letters, digits and - . _ ~; expected "
                                        r"at least 16 characters"):
        open_sink("http://127.0.0.1:0", token="a b;c")  # refused when built, so --check refuses it too


def test_port_in_use_and_release_on_close(spec):
    sink = open_sink("http://127.0.0.1:0")
    sink.open(context(spec))
    port = sink.address[1]
    other = open_sink("http://127.0.0.1:%d" % port)
    with pytest.raises(SinkError, match=r"cannot serve the web viewer on 127.0.0.1:%d: .*; choose another port "
                                        r"\(http://127.0.0.1:0 picks a free one\)" % port):
        other.open(context(spec))
    sink.close()
    sink.close()  # idempotent
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    again = open_sink("http://127.0.0.1:%d" % port)
    again.open(context(spec))  # the port was released
    again.close()


def test_stuck_client_never_stalls_writes(spec):
    sink = open_sink("http://127.0.0.1:0?max_fps=1000&max_clients=1")
    sink.open(context(spec))
    stuck = socket.create_connection(sink.address, timeout=10)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        sink.write(make_result(0, spec, shape=(480, 640)))
        stuck.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")  # ... and never reads
        assert stuck.recv(12) == b"HTTP/1.0 200"
        # a second stream viewer is over max_clients
        assert get(sink.url + "stream.mjpg")[0] == 503

        def feed() -> None:
            for i in range(1, 200):
                sink.write(make_result(i, spec, shape=(480, 640)))

        writer = threading.Thread(target=feed)
        writer.start()
        writer.join(timeout=120)
        assert not writer.is_alive(), "write() blocked on a client that does not read"
        assert sink.written == 200
        sink.close()  # does not wait for the stuck client
    finally:
        stuck.close()


def read_parts(sock: socket.socket, count: int) -> list:
    """Read ``count`` whole parts (headers, body) of a stream from a raw socket, each up to its closing
    boundary: a part counts only once the boundary after it has arrived."""
    sock.settimeout(10)
    data = b""
    while data.count(b"\r\n--jetsegframe") < count + 1:  # the opening boundary follows the headers
        chunk = sock.recv(65536)
        assert chunk, "the stream closed early"
        data += chunk
    body = data.split(b"\r\n\r\n", 1)[1]  # past the response headers
    assert body.startswith(b"--jetsegframe\r\n")
    pos, parts = len(b"--jetsegframe\r\n"), []
    for _ in range(count):
        end = body.index(b"\r\n\r\n", pos)
        headers = dict(line.split(": ", 1) for line in body[pos:end].decode().split("\r\n"))
        start = end + 4
        stop = start + int(headers["Content-Length"])
        assert body[stop:stop + 17] == b"\r\n--jetsegframe\r\n", "the part is not closed by a boundary"
        parts.append((headers, body[start:stop]))
        pos = stop + 17
    return parts


def test_stream_parts_are_closed_at_once_and_carry_the_frame_identity(spec):
    sink = open_sink("http://127.0.0.1:0")
    sink.open(context(spec))
    sock = socket.create_connection(sink.address, timeout=10)
    try:
        sink.write(make_result(7, spec))
        sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
        # one frame written and no other: its part is complete (boundary included) without a next frame
        (headers, payload), = read_parts(sock, 1)
        assert headers["Content-Type"] == "image/jpeg" and headers["X-Frame-Index"] == "7"
        assert abs(float(headers["X-Captured-Ms"]) - time.time() * 1000) < 60000
        assert jpeg(payload).shape == (96, 128, 3)
    finally:
        sock.close()
        sink.close()
    assert sink.max_fps is None  # every frame by default: the source's rate


def test_layers_stream_and_its_last_part(spec):
    stats = {"source_state": "running"}
    sink = open_sink("http://127.0.0.1:0")
    sink.open(SinkContext(spec=spec, stats=lambda: stats))
    sock = socket.create_connection(sink.address, timeout=10)
    try:
        result = make_result(3, spec)
        sink.write(result)
        sock.sendall(b"GET /stream.mjpg?layers=1 HTTP/1.0\r\n\r\n")
        meta, frame, mask = read_parts(sock, 3)
        assert [p[0]["Content-Type"] for p in (meta, frame, mask)] == ["application/json", "image/jpeg", "image/png"]
        info = json.loads(meta[1])
        assert info["index"] == 3 and info["areas_px"] == result.areas_px and info["captured_ms"] > 0
        import cv2
        values = png_indices(mask[1], cv2)
        assert values.shape == result.mask.shape and ((values % EDGE) == result.mask).all()
        # boundary pixels carry EDGE: a class's border, never inside it nor on the background
        inside = cv2.erode(result.mask, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))
        assert (values >= EDGE).any() and not (values[inside > 0] >= EDGE).any() and not values[result.mask == 0].any()
        # as a browser decodes it: the class colour, transparent background, opaque boundary
        rgba = cv2.imdecode(np.frombuffer(mask[1], np.uint8), cv2.IMREAD_UNCHANGED)
        assert rgba.shape[2] == 4 and (rgba[..., 3][result.mask == 0] == 0).all()
        red = list(spec.colors[1])[::-1]
        assert (rgba[..., :3][result.mask == 1] == red).all()
        assert set(np.unique(rgba[..., 3][result.mask == 1])) == {FILL_ALPHA, 255}
        stats["source_state"] = "ended"
        sink.close()
        rest = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        assert b'{"state": "ended"}' in rest and rest.endswith(b"--jetsegframe--\r\n")
        assert sink.end_state == "ended"
    finally:
        sock.close()
        sink.close()


def test_pair_serves_input_and_output_side_by_side_in_every_layer(spec):
    sink = open_sink("http://127.0.0.1:0?pair=1")
    sink.open(context(spec))
    try:
        result = make_result(2, spec)
        sink.write(result)
        height, width = result.frame.image.shape[:2]
        overlay = jpeg(get(sink.url + "frame.jpg")[2])
        meta = json.loads(sink.newest_layer("meta")[1])
        frame = jpeg(sink.newest_layer("frame")[1])
        import cv2
        labels = png_indices(sink.newest_layer("mask")[1], cv2) % EDGE
    finally:
        sink.close()
    assert overlay.shape == frame.shape == (height, 2 * width, 3)
    assert (meta["width"], meta["height"]) == (2 * width, height)
    assert red_pixels(overlay[:, :width]) == 0 and red_pixels(overlay[:, width:]) > 0
    assert labels.shape == (height, 2 * width)
    assert not labels[:, :width].any() and (labels[:, width:] == result.mask).all()
