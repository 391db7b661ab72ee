"""What this machine can capture from (jetson/device/capture.py): V4L2 nodes and JetPack's GStreamer elements."""
from __future__ import annotations

import subprocess

from jetseg.jetson.device import capture


def test_devices_and_elements(tmp_path, monkeypatch):
    (tmp_path / "video0").touch()
    (tmp_path / "video2").touch()
    (tmp_path / "null").touch()
    monkeypatch.setattr(capture.shutil, "which", lambda name: "/usr/bin/gst-inspect-1.0")
    asked = []

    def run(argv, **kw):
        asked.append(argv[1])
        return subprocess.CompletedProcess(argv, 0 if argv[1] != "nvarguscamerasrc" else 1)

    facts = capture.capture_facts(dev=str(tmp_path), run=run)
    assert facts.v4l2_devices == [str(tmp_path / "video0"), str(tmp_path / "video2")]
    assert asked == list(capture.JETSON_ELEMENTS) and facts.missing == ["nvarguscamerasrc"]
    assert facts.to_dict()["elements"]["nvv4l2decoder"] is True


def test_without_gstreamer_tools_every_element_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(capture.shutil, "which", lambda name: None)

    def run(argv, **kw):
        raise AssertionError("nothing to run without gst-inspect-1.0")

    facts = capture.capture_facts(dev=str(tmp_path), run=run)
    assert facts.gst_inspect is None and facts.missing == list(capture.JETSON_ELEMENTS) and facts.v4l2_devices == []
