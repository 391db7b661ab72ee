"""Live sources against real streams: ffmpeg sends MPEG-TS over UDP to 127.0.0.1 and the source receives it.

Every loop is bounded by a deadline; every ffmpeg process is killed in a finally block.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Iterator, List

import cv2
import pytest

from jetseg.errors import SourceError
from jetseg.jetson.sources import Frame, open_source
from jetseg.jetson.sources.live import GstSource, LiveSource, UDPSource, V4L2Source, has_gstreamer
from tests.fixtures.waiting import free_port, wait_for

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program (apt install ffmpeg)")
FAST = "backend=ffmpeg&open_timeout=1&read_timeout=1&backoff=0.2&backoff_max=0.5"

# OpenCV's own FFmpeg in the opencv-python-headless 4.5.4 wheel (the JetPack 5 twin's, JetPack 5's OpenCV line)
# opens a live MPEG-TS UDP stream joined mid-stream but never decodes a frame ("Invalid frame dimensions 0x0",
# "no frame!"), for MPEG-2 and H.264 alike; 4.6 and later do. On the Jetson UDP goes through GStreamer.
needs_opencv_udp_ffmpeg = pytest.mark.skipif(
    tuple(int(p) for p in cv2.__version__.split(".")[:2]) < (4, 6),
    reason="OpenCV %s's bundled FFmpeg decodes no frame of a live MPEG-TS UDP stream (fixed by 4.6)" % cv2.__version__)


def gst_elements(*names: str) -> bool:
    """True when gst-inspect-1.0 finds every named GStreamer element."""
    if shutil.which("gst-inspect-1.0") is None:
        return False
    return all(subprocess.run(["gst-inspect-1.0", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=30).returncode == 0 for name in names)


@contextmanager
def udp_sender(port: int, h264: bool = False) -> Iterator[subprocess.Popen]:
    """ffmpeg sending a 320x240 25 fps test pattern as MPEG-TS to 127.0.0.1:port, killed on exit."""
    codec = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25"] if h264 else []
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi",
           "-i", "testsrc=size=320x240:rate=25"] + codec + ["-f", "mpegts", "udp://127.0.0.1:%d?pkt_size=1316" % port]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def read_frames(src: LiveSource, count: int, within: float) -> List[Frame]:
    frames: List[Frame] = []
    deadline = time.monotonic() + within
    while len(frames) < count and time.monotonic() < deadline:
        frame = src.read(timeout=0.5)
        if frame is not None:
            frames.append(frame)
    return frames


@needs_ffmpeg
@needs_opencv_udp_ffmpeg
def test_udp_receives_then_reconnects_after_sender_restart() -> None:
    port = free_port(2)
    src = open_source("udp://127.0.0.1:%d?%s" % (port, FAST))
    assert isinstance(src, UDPSource)
    try:
        with udp_sender(port):
            src.open()
            frames = read_frames(src, 5, within=20)
            assert len(frames) == 5, src.stats()
            assert frames[0].image.shape == (240, 320, 3) and frames[0].image.dtype.name == "uint8"
            assert [f.index for f in frames] == list(range(5))
            assert src.stats()["state"] == "running" and src.stats()["backend"] == "ffmpeg"
            assert src.fps == pytest.approx(25.0)
        # sender gone: the source notices, keeps returning None, retries with backoff
        assert wait_for(lambda: src.failures >= 1, timeout=10, every=0.05), src.stats()
        for _ in range(100):  # drain frames still buffered in the decoder
            if src.read(timeout=0.1) is None:
                break
        assert src.read(timeout=0.3) is None
        assert src.stats()["state"] in ("reconnecting", "running")
        with udp_sender(port):
            after = read_frames(src, 5, within=20)
            assert len(after) == 5, src.stats()
            assert src.reconnects >= 1 and src.stats()["reconnects"] == src.reconnects
            assert after[0].meta["seq"] > frames[-1].meta["seq"]
    finally:
        src.close()
    assert src.stats()["state"] == "closed"


@needs_ffmpeg
@needs_opencv_udp_ffmpeg
def test_newest_frame_wins_with_a_slow_reader() -> None:
    port = free_port(2)
    with udp_sender(port):
        with open_source("udp://127.0.0.1:%d?%s" % (port, FAST)) as src:
            assert read_frames(src, 2, within=20), src.stats()
            before = src.read(timeout=2.0)
            assert before is not None
            time.sleep(0.6)  # a slow consumer: ~15 frames arrive meanwhile at 25 fps
            newest = src.read(timeout=2.0)
            assert newest is not None
            assert newest.meta["seq"] - before.meta["seq"] > 2  # skipped straight to the newest
            assert src.dropped >= 1 and src.stats()["dropped"] == src.dropped


def test_unreachable_rtsp_retries_without_leaking_the_password() -> None:
    port = free_port(1)  # nothing listens there
    src = open_source("rtsp://admin:s3cret@127.0.0.1:%d/live?%s" % (port, FAST))
    try:
        src.open()
        assert src.read(timeout=0.5) is None
        assert wait_for(lambda: src.failures >= 2, timeout=10, every=0.05), src.stats()
        stats = src.stats()
        assert stats["state"] == "reconnecting" and stats["reconnects"] == 0 and stats["delivered"] == 0
        assert "s3cret" not in repr(stats) and "admin:***@127.0.0.1" in stats["uri"]
    finally:
        src.close()
    assert src._thread is None and src.stats()["state"] == "closed"


def test_missing_v4l2_device_is_retried() -> None:
    src = open_source("v4l2:///dev/video97?backend=v4l2&backoff=0.1&backoff_max=0.2")
    assert isinstance(src, V4L2Source) and src.device == "/dev/video97"
    with src:
        assert src.read(timeout=0.3) is None
        assert wait_for(lambda: src.failures >= 1, timeout=5, every=0.05)
        assert src.stats()["backend"] == "v4l2"
    assert open_source("v4l2://3", backend="v4l2").device == "/dev/video3"


def test_preflight_says_no_such_device_without_opening_it() -> None:
    missing = open_source("v4l2:///dev/video97", backend="v4l2")
    with pytest.raises(SourceError, match=r"v4l2 source '/dev/video97': no such device /dev/video97 "
                                          r"\(/dev/video\* here: .*\); plug the device in or give the right --source"):
        missing.preflight()
    assert missing.stats()["state"] == "closed"  # preflight never opens
    open_source("v4l2:///dev/null", backend="v4l2").preflight()  # a device path that exists passes


def test_option_errors() -> None:
    with pytest.raises(SourceError, match=r"unknown v4l2 source option 'fsp' \(did you mean 'fps'\?\)"):
        open_source("v4l2:///dev/video0?fsp=30")
    with pytest.raises(SourceError, match=r"v4l2 source option format='NV12': expected one of yuy2, mjpg"):
        open_source("v4l2:///dev/video0?format=NV12")
    with pytest.raises(SourceError, match=r"udp source udp://127\.0\.0\.1 has no port; expected udp://HOST:PORT"):
        open_source("udp://127.0.0.1")
    with pytest.raises(SourceError, match=r"rtsp source option backend='v4l2': expected one of auto, gstreamer, ffmpeg"):
        open_source("rtsp://cam/live?backend=v4l2")
    with pytest.raises(SourceError, match=r"csi source 'left': expected a sensor number such as csi://0"):
        open_source("csi://left")
    # query parameters jetseg does not know stay in the stream URL (for FFmpeg's udp protocol)
    src = open_source("udp://127.0.0.1:5000?fifo_size=1000&read_timeout=3")
    assert src.uri == "udp://127.0.0.1:5000?fifo_size=1000" and src.read_timeout == 3.0


@pytest.mark.skipif(has_gstreamer(cv2), reason="this OpenCV has GStreamer; the no-GStreamer error cannot happen")
def test_gstreamer_only_sources_say_opencv_lacks_gstreamer() -> None:
    for uri in ("gst://videotestsrc ! videoconvert ! appsink", "csi://0"):
        with pytest.raises(SourceError, match=r"needs OpenCV with GStreamer: OpenCV here \(cv2 .*\) was built without "
                                              r"GStreamer; on a Jetson use JetPack's python3-opencv"):
            open_source(uri).open()
    with pytest.raises(SourceError, match=r"udp backend=gstreamer: OpenCV here"):
        open_source("udp://127.0.0.1:5000", backend="gstreamer").open()


@pytest.mark.skipif(not has_gstreamer(cv2), reason="OpenCV here was built without GStreamer (pip wheel); "
                                                   "Debian's python3-opencv or JetPack's has it")
def test_gst_videotestsrc_pipeline() -> None:
    src = open_source("gst://videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! "
                      "videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false")
    assert isinstance(src, GstSource)
    with src:
        frames = read_frames(src, 3, within=10)
    assert len(frames) == 3 and frames[0].image.shape == (120, 160, 3)


def test_import_stays_light() -> None:
    code = ("import sys, jetseg.jetson.sources.live, jetseg.jetson.sources.video, jetseg.jetson.sources.images, "
            "jetseg.jetson.sources.dicom, jetseg.jetson.sources.nifti; "
            "heavy = [m for m in ('cv2', 'pydicom', 'nibabel') if m in sys.modules]; print(heavy); "
            "sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_ffmpeg
@pytest.mark.skipif(not has_gstreamer(cv2) or not gst_elements("udpsrc", "tsdemux", "h264parse", "avdec_h264"),
                    reason="needs OpenCV with GStreamer and the udpsrc, tsdemux, h264parse, avdec_h264 elements")
def test_udp_over_gstreamer_resumes_after_sender_restart() -> None:
    """The x86 GStreamer pipeline for udp://: udpsrc keeps listening, so a restarted sender resumes the stream."""
    port = free_port(2)
    src = open_source("udp://127.0.0.1:%d?read_timeout=1" % port)
    try:
        with udp_sender(port, h264=True):
            src.open()
            frames = read_frames(src, 5, within=20)
            assert len(frames) == 5 and src.stats()["backend"] == "gstreamer", src.stats()
        assert wait_for(lambda: src.stats()["state"] in ("stalled", "reconnecting"), timeout=10,
                        every=0.05), src.stats()
        with udp_sender(port, h264=True):
            after = read_frames(src, 5, within=20)
            assert len(after) == 5, src.stats()
            assert after[0].meta["seq"] > frames[-1].meta["seq"]
    finally:
        src.close()


def test_ffmpeg_options_are_set_only_while_opening(monkeypatch) -> None:
    from jetseg.jetson.sources.live import FFMPEG_ENV, ffmpeg_options

    monkeypatch.delenv(FFMPEG_ENV, raising=False)
    with ffmpeg_options("fflags;nobuffer"):
        assert os.environ[FFMPEG_ENV] == "fflags;nobuffer"
    assert FFMPEG_ENV not in os.environ
    monkeypatch.setenv(FFMPEG_ENV, "rtsp_transport;udp")  # the user's own value wins
    with ffmpeg_options("fflags;nobuffer"):
        assert os.environ[FFMPEG_ENV] == "rtsp_transport;udp"
    assert os.environ[FFMPEG_ENV] == "rtsp_transport;udp"
