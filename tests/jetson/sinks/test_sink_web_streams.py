"""Several streams, one web viewer (jetson/sinks/webshare.py): a daemon with sources: whose streams name the same
http:// sink serves a grid at /, each stream's viewer at /s/NAME/, /streams and every stream's /health; in
headless chromium the grid for 2 and 4 streams, a stream's page and a phone viewport are screenshotted."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional

import pytest

from jetseg.errors import SinkError
from jetseg.jetson.daemon.config import DaemonConfig
from jetseg.jetson.daemon.service import Daemon
from jetseg.jetson.sinks import SinkContext, open_sink
from tests.fixtures.media import live_then_still, make_result
from tests.fixtures.waiting import run_in_thread, wait_for

SOURCE = "synthetic://ultrasound?width=160&height=120&realtime=1&fps=15&seed=%d"


def get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=20) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@contextmanager
def streams_daemon(bundle: Any, names: List[str], still: Optional[str] = None, token: Optional[str] = None,
                   ) -> Iterator[Daemon]:
    """A daemon with one paced synthetic stream per name (``still``: an ffmpeg video that freezes), every
    stream naming the same web sink (a free port, shared)."""
    sources = [{"name": n, "uri": still if n == "still" else SOURCE % i, "realtime": True,
                "sinks": ["http://127.0.0.1:0"]} for i, n in enumerate(names)]
    config: Dict[str, Any] = {"model": str(bundle.path), "backend": {"options": {"threads": 1}},
                              "logging": {"interval_s": 0}, "device": {"telemetry": "off"}, "sources": sources}
    if token:
        config["web"] = {"token": token}
    daemon = Daemon(DaemonConfig.from_dict(config))
    daemon.start()
    thread, result = run_in_thread(daemon)
    try:
        yield daemon
    finally:
        daemon.request_stop("test done")
        thread.join(timeout=30)
    assert "error" not in result, result


def viewer_url(daemon: Daemon) -> str:
    urls = {s.url for parts in daemon.streams.parts.values() for _, s in parts.sinks if hasattr(s, "url")}
    assert len(urls) == 1, "the streams do not share one viewer: %s" % urls
    return urls.pop()


def test_streams_share_one_viewer_with_a_grid_pages_and_health(tiny_bundle):
    with streams_daemon(tiny_bundle, ["left", "right"]) as daemon:
        url = viewer_url(daemon)
        wait_for(lambda: all(s["frame"] is not None and s["status"] == "ok" and s["fps"] > 0
                             for s in json.loads(get(url + "streams")[1])), 20)
        code, body = get(url)
        assert code == 200 and b"grid.js" in body  # the grid, not one stream's viewer
        streams = json.loads(get(url + "streams")[1])
        assert [s["name"] for s in streams] == ["left", "right"]
        assert all(s["page"] == "s/%s/" % s["name"] and s["status"] == "ok" and s["fps"] > 0 for s in streams)
        code, body = get(url + "s/right/")
        assert code == 200 and b"app.js" in body
        stats = json.loads(get(url + "s/right/stats")[1])
        assert stats["info"]["stream"] == "right" and stats["viewer"]["stream"] == "right"
        assert stats["viewer"]["streams"] == 2
        with urllib.request.urlopen(url + "s/left/stream.mjpg", timeout=10) as resp:
            assert resp.readline() == b"--jetsegframe\r\n"
        health = json.loads(get(url + "health")[1])
        assert health["status"] == "ok" and set(health["streams"]) == {"left", "right"}
        assert json.loads(get(url + "s/left/health")[1])["status"] == "ok"
        code, body = get(url + "s/nope/")
        assert code == 404 and b"no stream 'nope' here; streams: left, right" in body
        req = urllib.request.Request(url + "s/left", method="GET")
        opener = urllib.request.build_opener(type("NoRedirect", (urllib.request.HTTPRedirectHandler,),
                                                  {"redirect_request": lambda *a, **k: None}))
        with pytest.raises(urllib.error.HTTPError) as moved:
            opener.open(req, timeout=10)
        assert moved.value.code == 301 and moved.value.headers["Location"] == "/s/left/"


def test_the_port_is_released_when_the_last_stream_closes(spec):
    first, second, other = (open_sink("http://127.0.0.1:0") for _ in range(3))
    first.open(SinkContext(spec=spec, extra={"stream": "a", "viewer_group": "g1"}))
    second.open(SinkContext(spec=spec, extra={"stream": "b", "viewer_group": "g1"}))
    other.open(SinkContext(spec=spec, extra={"stream": "a", "viewer_group": "g2"}))  # another daemon's streams
    try:
        assert first.url == second.url != other.url
        first.write(make_result(1, spec))
        first.close()
        assert [s["name"] for s in json.loads(get(second.url + "streams")[1])] == ["b"]  # b still serves
        second.close()
        with pytest.raises(OSError):
            urllib.request.urlopen(second.url + "health", timeout=2)
    finally:
        other.close()


def test_a_stream_name_twice_or_two_tokens_on_one_viewer_are_refused(spec):
    base = open_sink("http://127.0.0.1:0")
    base.open(SinkContext(spec=spec, extra={"stream": "a", "viewer_group": "g", "token": "t" * 16}))
    try:
        twin = open_sink("http://127.0.0.1:0")
        with pytest.raises(SinkError, match="stream a is already served by the web viewer at"):
            twin.open(SinkContext(spec=spec, extra={"stream": "a", "viewer_group": "g", "token": "t" * 16}))
        other = open_sink("http://127.0.0.1:0")
        with pytest.raises(SinkError, match="shared by stream a and stream b with different tokens"):
            other.open(SinkContext(spec=spec, extra={"stream": "b", "viewer_group": "g", "token": "u" * 16}))
    finally:
        base.close()


# --------------------------------------------------------------------------- in headless chromium
def _browser() -> Any:
    from jetseg.benchmarks.browser import chromium_path

    if chromium_path() is None:
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    pytest.importorskip("websocket", reason="needs websocket-client (the dev extra) to drive chromium")
    from jetseg.benchmarks.browser import Browser

    return Browser


def tiles(tab: Any) -> List[Dict[str, Any]]:
    return list(tab.evaluate(
        "Array.prototype.map.call(document.querySelectorAll('.tile-stream'), function (a) {"
        " var r = a.getBoundingClientRect(), img = a.querySelector('img');"
        " return {name: a.dataset.stream, state: a.dataset.state, href: a.getAttribute('href'),"
        " text: a.querySelector('.tile-caption').innerText, banner: a.querySelector('.tile-banner').hidden ? '' :"
        " a.querySelector('.tile-banner').innerText, x: r.x, y: r.y, w: r.width, h: r.height, loaded: img.naturalWidth};})"))


def shoot(tab: Any, tmp_path: Any, name: str) -> Any:
    from tests.jetson.sinks.test_sink_web_browser import shoot as keep_and_read

    return keep_and_read(tab, tmp_path, name)


@pytest.mark.parametrize("names", [["left", "right"], ["a", "b", "c", "still"]], ids=["2-streams", "4-streams"])
def test_grid_in_chromium(tiny_bundle, tmp_path, names):
    Browser = _browser()
    still = str(live_then_still(tmp_path / "still.mp4", live_s=0, still_s=30, size=(160, 120))) \
        if "still" in names else None
    with streams_daemon(tiny_bundle, names, still=still) as daemon, Browser(1280, 900) as browser:
        tab = browser.open(viewer_url(daemon))
        tab.wait_for("document.querySelectorAll('.tile-stream img').length === %d && "
                     "Array.prototype.every.call(document.querySelectorAll('.tile-stream img'), "
                     "function (i) { return i.naturalWidth > 0; })" % len(names), 20)
        if still:
            tab.wait_for("document.querySelector('[data-stream=still]').dataset.state === 'not-live'", 15)
        found = tiles(tab)
        image = shoot(tab, tmp_path, "grid-%d" % len(names))
        assert [t["name"] for t in found] == names
        for t in found:
            assert t["href"] == "s/%s/" % t["name"] and t["text"].startswith(t["name"])
            assert "fps" in t["text"]
            picture = image[int(t["y"]):int(t["y"] + t["w"] * 0.75), int(t["x"]):int(t["x"] + t["w"])]
            assert picture.std() > 5, "tile %s shows no picture" % t["name"]
            if t["name"] == "still":
                assert t["state"] == "not-live" and t["banner"].startswith("NOT LIVE - frozen input: the same picture")
            else:
                assert t["state"] == "live" and "live" in t["text"] and t["banner"] == ""
        rows = sorted({round(t["y"]) for t in found})
        assert len(rows) == (1 if len(names) <= 3 else 2)  # side by side: 3 columns at 1280 px
        assert len({round(t["w"]) for t in found}) == 1


def test_a_stream_page_and_the_grid_on_a_phone(tiny_bundle, tmp_path):
    Browser = _browser()
    with streams_daemon(tiny_bundle, ["left", "right"]) as daemon:
        url = viewer_url(daemon)
        with Browser(1280, 900) as browser:
            tab = browser.open(url)
            tab.wait_for("document.querySelectorAll('.tile-stream').length === 2")
            tab.evaluate("document.querySelector('[data-stream=right]').click()")
            tab.wait_for("window.jetsegViewer && window.jetsegViewer.log.length > 5", 20)
            assert tab.evaluate("location.pathname") == "/s/right/"
            tab.wait_for("document.getElementById('model').textContent.indexOf('right') === 0")
            assert tab.evaluate("document.getElementById('all-streams').hidden") is False
            assert tab.evaluate("document.body.dataset.state") == "live"
            shoot(tab, tmp_path, "stream-page")
        with Browser(390, 844) as browser:
            tab = browser.open(url)
            tab.viewport(390, 844, mobile=True)
            tab.wait_for("document.querySelectorAll('.tile-stream img').length === 2 && "
                         "document.querySelector('.tile-stream img').naturalWidth > 0", 20)
            time.sleep(0.3)
            found = tiles(tab)
            shoot(tab, tmp_path, "grid-phone")
            assert all(t["w"] >= 370 for t in found)  # one column, the full width
            assert found[1]["y"] >= found[0]["y"] + found[0]["h"] - 1
