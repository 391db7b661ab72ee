"""Frozen input: a source that repeats the same picture is reported as frozen (jetson/pipeline/frozen.py), in
health() per stream, in /health and on each frame, after source.frozen_after_s; a changing picture never is."""
from __future__ import annotations

import json
import time
import urllib.request

import numpy as np

from jetseg.jetson.daemon.config import DaemonConfig
from jetseg.jetson.daemon.service import Daemon
from jetseg.jetson.pipeline.frozen import DIGEST_BYTES, MIN_FRAMES, FrozenInput, digest
from tests.fixtures.media import live_then_still
from tests.fixtures.waiting import run_in_thread


def test_the_same_picture_for_after_s_and_min_frames_is_frozen():
    frozen = FrozenInput(after_s=1.0)
    a, b = np.zeros((48, 64, 3), np.uint8), np.zeros((48, 64, 3), np.uint8)
    b[47, 63, 2] = 1  # one value in the last pixel differs
    assert frozen.see(a, 0.0) is None and frozen.see(a, 0.5) is None
    assert frozen.see(a, 1.0) is None  # 1 s, but only 2 repeats
    assert frozen.see(a, 1.1) == 1.1  # 3 repeats, 1.1 s
    assert frozen.see(b, 1.2) is None  # a new picture: live again, counted afresh
    assert frozen.see(b, 1.3) is None and frozen.see(b, 1.4) is None and frozen.see(b, 2.1) is None
    assert frozen.see(b, 2.2) is not None
    assert MIN_FRAMES == 3
    off = FrozenInput(after_s=0)
    assert all(off.see(a, t) is None for t in range(10))


def test_the_digest_of_a_large_picture_reads_about_one_megabyte_of_rows():
    big = np.zeros((1080, 1920, 3), np.uint8)
    step = -(-big.nbytes // DIGEST_BYTES)
    assert step == 6
    changed = big.copy()
    changed[6 * 100, 5, 1] = 9  # a sampled row
    assert digest(changed) != digest(big)
    changed = big.copy()
    changed[6 * 100 + 1:6 * 100 + 6] = 9  # rows between samples: not seen (documented)
    assert digest(changed) == digest(big)


def _health(url: str) -> dict:
    with urllib.request.urlopen(url + "health", timeout=10) as resp:
        return json.loads(resp.read())


def test_a_video_that_freezes_is_reported_per_stream_and_on_its_frames(tiny_bundle, tmp_path):
    """Two streams: 'cart' plays 1 s of moving pattern then a repeated still picture (ffmpeg, H.264), 'tower'
    a moving pattern throughout; both paced like scanners. Only 'cart' becomes frozen, and only after its
    still part has lasted source.frozen_after_s."""
    cart = live_then_still(tmp_path / "cart.mp4", live_s=1.0, still_s=3.0)
    tower = live_then_still(tmp_path / "tower.mp4", live_s=4.0, still_s=0.2)
    config = DaemonConfig.from_dict({
        "model": str(tiny_bundle.path), "backend": {"options": {"threads": 1}},
        "logging": {"interval_s": 0}, "device": {"telemetry": "off"},
        "sources": [{"name": "cart", "uri": str(cart), "realtime": True, "sinks": ["http://127.0.0.1:0"]},
                    {"name": "tower", "uri": str(tower), "realtime": True}]})
    daemon = Daemon(config)
    started = time.monotonic()
    thread, result = run_in_thread(daemon)
    seen = []
    while thread.is_alive() and time.monotonic() - started < 20:
        streams = daemon.health().get("streams", {})
        if "cart" in streams:
            seen.append((time.monotonic() - started, streams["cart"], streams["tower"]))
            if streams["cart"]["input_frozen_s"] is not None:
                break
        time.sleep(0.05)
    assert seen and seen[-1][1]["input_frozen_s"] is not None, "the still picture was never reported frozen"
    when, cart_health, tower_health = seen[-1]
    assert when >= 1.9  # 1 s of moving picture, then 1 s of the same one at least
    assert cart_health["status"] == "degraded" and cart_health["input_frozen_s"] >= 1.0
    assert any(r.startswith("input frozen: the same picture for ") for r in cart_health["reasons"])
    assert all(h["input_frozen_s"] is None for _, h, _ in seen[:-1])
    assert tower_health["input_frozen_s"] is None
    # the stream's web sink: /health of its stream, and frozen_s on the frame the viewer sends
    sink = next(s for _, s in daemon.streams.parts["cart"].sinks if hasattr(s, "url"))
    assert _health(sink.url)["input_frozen_s"] >= 1.0
    meta = json.loads(sink.newest_layer("meta")[1])
    assert meta["frozen_s"] >= 1.0
    thread.join(timeout=30)
    assert result.get("code") == 0, result
    assert all(h["input_frozen_s"] is None for _, _, h in seen)
