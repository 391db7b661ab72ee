"""The web viewer page in headless Chromium (DevTools protocol): live, frozen, not live, ended, on a phone.

Each state is screenshotted under the test's tmp_path (JETSEG_KEEP_SCREENSHOTS=DIR copies them there) and
checked on pixels and on the page's DOM.
"""
from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator

import numpy as np
import pytest

from jetseg.benchmarks.browser import Browser, Tab, chromium_path
from jetseg.jetson.sinks import SinkContext, open_sink
from tests.fixtures.media import make_result
from tests.jetson.sinks.test_sink_web import METRICS, PIPELINE_STATS, TOKEN, red_pixels

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="needs Debian's chromium (apt-get install chromium)")
pytest.importorskip("websocket", reason="needs websocket-client (the dev extra) to drive chromium")


class Feed:
    """A web sink fed at 30 frames/s from a thread until stopped."""

    def __init__(self, spec: Any) -> None:
        self.stats: Dict[str, Any] = dict(PIPELINE_STATS, source_state="running")
        self.sink = open_sink("http://127.0.0.1:0", token=TOKEN)
        self.sink.open(SinkContext(spec=spec, fps=30.0, metrics=lambda: METRICS, stats=lambda: self.stats,
                                   health=lambda: {"status": "ok"}))
        self.spec = spec
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._stop.wait(1 / 30):
            self.sink.write(make_result(i, self.spec, shape=(480, 640)))
            i += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def feed(spec) -> Iterator[Feed]:
    running = Feed(spec)
    yield running
    running.stop()
    running.sink.close()


def shoot(tab: Tab, tmp_path: Path, name: str) -> np.ndarray:
    import cv2

    path = tab.screenshot(tmp_path / ("%s.png" % name))
    keep = os.environ.get("JETSEG_KEEP_SCREENSHOTS")
    if keep:
        shutil.copy(str(path), keep)
    image = cv2.imread(str(path))
    assert image is not None
    return image


def picture(image: np.ndarray, box: Dict[str, float]) -> np.ndarray:
    """The stage's part of a screenshot."""
    return image[int(box["y"]):int(box["y"] + box["h"]), int(box["x"]):int(box["x"] + box["w"])]


def banner(tab: Tab) -> str:
    return str(tab.evaluate("document.getElementById('banner').hidden ? '' : "
                            "document.getElementById('banner').innerText"))


def stage_box(tab: Tab) -> Dict[str, float]:
    return dict(tab.evaluate("(function(){var r=document.getElementById('stage').getBoundingClientRect();"
                             "return {x:r.x, y:r.y, w:r.width, h:r.height};})()"))


def test_live_frozen_not_live_and_ended(tmp_path, feed):
    with Browser(1280, 900) as browser:
        tab = browser.open(feed.sink.url + "?token=" + TOKEN)
        tab.viewport(1280, 900)
        tab.wait_for("window.jetsegViewer && window.jetsegViewer.log.length > 20 && "
                     "document.body.dataset.state === 'live'")
        tab.wait_for("document.getElementById('model').textContent === 'test-unet'")
        # live: the overlay is on the picture, the page's numbers are its own
        image = shoot(tab, tmp_path, "live")
        box = stage_box(tab)
        view = image[int(box["y"]):int(box["y"] + box["h"]), int(box["x"]):int(box["x"] + box["w"])]
        assert red_pixels(view) > 200 and view.std() > 5
        assert banner(tab) == ""
        assert abs(box["w"] / box["h"] - 640 / 480) < 0.02  # sized by the picture's aspect ratio
        # the footer's number is a picture's that was on screen (it follows the picture at most 4 times a second)
        footer = int(tab.evaluate("document.getElementById('frame-index').textContent"))
        assert footer in tab.evaluate("window.jetsegViewer.log.map(function (r) { return r.index; })")
        # the page's own latency figure is computed on its stats tick: wait for its first value
        tab.wait_for("['', '\u2013'].indexOf(document.getElementById('latency').textContent) < 0")
        assert "lesion" in tab.evaluate("document.getElementById('areas').innerText")

        # frozen: the picture stops on one frame while the stream goes on; the banner says so
        tab.evaluate("document.getElementById('freeze').click()")
        frozen = tab.evaluate("window.jetsegViewer.shown.meta.index")
        time.sleep(0.6)
        assert tab.evaluate("window.jetsegViewer.shown.meta.index") == frozen
        assert banner(tab).startswith("FROZEN - frame %d" % frozen)
        assert tab.evaluate("document.getElementById('frame-index').textContent") == str(frozen)
        # contour only and a class switched off: the palette changes, the frozen picture is drawn again
        full = red_pixels(picture(shoot(tab, tmp_path, "frozen-full"), box))
        tab.evaluate("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'c'}))")
        time.sleep(0.3)
        contour = red_pixels(picture(shoot(tab, tmp_path, "frozen-contour"), box))
        assert 0 < contour < full / 2, (contour, full)
        tab.evaluate("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'c'}))")
        tab.evaluate("document.dispatchEvent(new KeyboardEvent('keydown', {key: '1'}))")
        time.sleep(0.3)
        assert red_pixels(picture(shoot(tab, tmp_path, "frozen-class-off"), box)) < 20
        tab.evaluate("document.dispatchEvent(new KeyboardEvent('keydown', {key: '1'}))")
        time.sleep(0.3)
        assert red_pixels(picture(shoot(tab, tmp_path, "frozen-class-on"), box)) > full / 2
        shoot(tab, tmp_path, "frozen")
        tab.evaluate("document.getElementById('step-back').click()")
        tab.wait_for("window.jetsegViewer.shown.meta.index < %d" % frozen, 5)
        tab.evaluate("document.getElementById('freeze').click()")
        tab.wait_for("window.jetsegViewer.shown.meta.index > %d" % frozen, 5)

        # overlay off: no class colour on the picture
        tab.evaluate("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'o'}))")
        time.sleep(0.3)
        image = shoot(tab, tmp_path, "overlay-off")
        view = image[int(box["y"]):int(box["y"] + box["h"]), int(box["x"]):int(box["x"] + box["w"])]
        assert red_pixels(view) < 20
        tab.evaluate("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'o'}))")

        # not live: the stream stalls; a large banner over a dimmed picture
        feed.stop()
        tab.wait_for("document.body.dataset.state === 'stalled'", 10)
        assert banner(tab).startswith("NOT LIVE - last frame ")
        image = shoot(tab, tmp_path, "not-live")
        centre = image[int(box["y"] + box["h"] / 2) - 5:int(box["y"] + box["h"] / 2) + 5,
                       int(box["x"] + box["w"] / 2) - 5:int(box["x"] + box["w"] / 2) + 5]
        b, g, r = (float(centre[..., i].mean()) for i in range(3))
        assert r > 80 and r > 2 * g and r > 2 * b, "the red NOT LIVE banner is not in the middle of the picture"

        # ended: the source's end reaches the page, the last frame stays on screen
        feed.stats["source_state"] = "ended"
        feed.sink.close()
        tab.wait_for("document.body.dataset.state === 'ended'", 10)
        assert "source ended" in banner(tab)
        image = shoot(tab, tmp_path, "ended")
        view = image[int(box["y"]):int(box["y"] + box["h"]), int(box["x"]):int(box["x"] + box["w"])]
        assert view.std() > 5, "the last frame is gone"
        time.sleep(2.5)  # the page does not reconnect after the end, nor lose the picture
        assert tab.evaluate("document.body.dataset.state") == "ended"
        assert tab.evaluate("window.jetsegViewer.shown.meta.index") >= 0


def test_phone_viewport(tmp_path, feed):
    with Browser(390, 844) as browser:
        tab = browser.open(feed.sink.url + "?token=" + TOKEN)
        tab.viewport(390, 844, mobile=True)
        tab.wait_for("window.jetsegViewer && window.jetsegViewer.log.length > 10")
        tab.wait_for("document.getElementById('areas').innerText.indexOf('lesion') >= 0")
        image = shoot(tab, tmp_path, "phone")
        assert image.shape[:2] == (844, 390)
        box = stage_box(tab)
        assert box["w"] >= 385 and abs(box["h"] - box["w"] * 480 / 640) < 3  # full width, no black bars
        areas_top = tab.evaluate("document.getElementById('areas').getBoundingClientRect().bottom")
        assert areas_top < 844, "the class areas are below the fold"


def test_frozen_input_from_a_real_video_is_not_live(tmp_path, tiny_bundle):
    """A daemon plays an ffmpeg video whose picture freezes (the same decoded frame over and over): frames keep
    coming, yet after source.frozen_after_s the page says NOT LIVE - frozen input over a dimmed picture."""
    from jetseg.jetson.daemon.config import DaemonConfig
    from jetseg.jetson.daemon.service import Daemon
    from tests.fixtures.media import live_then_still
    from tests.fixtures.waiting import run_in_thread

    video = live_then_still(tmp_path / "freeze.mp4", live_s=4.0, still_s=6.0, size=(320, 240))
    daemon = Daemon(DaemonConfig.from_dict({
        "model": str(tiny_bundle.path), "backend": {"options": {"threads": 1}}, "logging": {"interval_s": 0},
        "device": {"telemetry": "off"}, "source": {"uri": str(video), "realtime": True},
        "sinks": ["http://127.0.0.1:0"]}))
    daemon.start()  # the sinks are open (their url known) before the run
    thread, result = run_in_thread(daemon)
    try:
        with Browser(1280, 900) as browser:
            tab = browser.open(next(s for _, s in daemon.parts.sinks if hasattr(s, "url")).url)
            tab.wait_for("window.jetsegViewer && window.jetsegViewer.log.length > 5")
            assert tab.evaluate("document.body.dataset.state") == "live"  # the moving part (4 s)
            tab.wait_for("document.body.dataset.state === 'repeating'", 15)
            assert banner(tab).startswith("NOT LIVE - frozen input")
            assert "the same picture for " in banner(tab)
            box, image = stage_box(tab), shoot(tab, tmp_path, "frozen-input")
            red = dict(tab.evaluate("(function(){var r=document.getElementById('banner').getBoundingClientRect();"
                                    "return {x:r.x, y:r.y, w:r.width, h:r.height};})()"))
            assert box["x"] < red["x"] < red["x"] + red["w"] < box["x"] + box["w"]  # over the picture
            assert box["y"] < red["y"] < red["y"] + red["h"] < box["y"] + box["h"]
            patch = image[int(red["y"] + red["h"] / 2) - 3:int(red["y"] + red["h"] / 2) + 3,
                          int(red["x"]) + 6:int(red["x"]) + 12]  # the banner's padding, left of its text
            b, g, r = (float(patch[..., i].mean()) for i in range(3))
            assert r > 80 and r > 2 * g and r > 2 * b, "the NOT LIVE banner is not red"
            dimmed = picture(image, box)
            assert float(dimmed.mean()) < 70  # the picture (grey 0x60 = 96) is dimmed and hatched
            arrivals = tab.evaluate("window.jetsegViewer.log.length")
            time.sleep(0.5)
            assert tab.evaluate("window.jetsegViewer.log.length") > arrivals  # frames still come and are shown
    finally:
        daemon.request_stop("test done")
        thread.join(timeout=30)
    assert "error" not in result, result
