"""The capture pipeline strings (pure functions), Jetson and x86 variants."""
from __future__ import annotations

import pytest

from jetseg.errors import SourceError
from jetseg.jetson.sources import pipelines as p

SINK = "appsink drop=true max-buffers=1 sync=false"


def test_csi_pipeline() -> None:
    assert p.csi_pipeline(1, 1920, 1080, 30, flip=2) == (
        "nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM),format=NV12,width=1920,height=1080,"
        "framerate=30/1 ! nvvidconv flip-method=2 ! video/x-raw,format=BGRx ! videoconvert ! "
        "video/x-raw,format=BGR ! " + SINK)


def test_v4l2_pipelines() -> None:
    assert p.v4l2_pipeline("/dev/video0", 640, 480, 30, "yuy2", jetson=True) == (
        'v4l2src device="/dev/video0" ! video/x-raw,format=YUY2,width=640,height=480,framerate=30/1 ! '
        "nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! " + SINK)
    assert p.v4l2_pipeline("/dev/video0", 640, 480, 30, "yuy2", jetson=False) == (
        'v4l2src device="/dev/video0" ! video/x-raw,format=YUY2,width=640,height=480,framerate=30/1 ! '
        "videoconvert ! video/x-raw,format=BGR ! " + SINK)
    assert p.v4l2_pipeline("/dev/video2", 1920, 1080, 60, "mjpg", jetson=False) == (
        'v4l2src device="/dev/video2" ! image/jpeg,width=1920,height=1080,framerate=60/1 ! jpegdec ! '
        "videoconvert ! video/x-raw,format=BGR ! " + SINK)
    assert "image/jpeg,width=1920,height=1080,framerate=60/1 ! nvjpegdec" in p.v4l2_pipeline(
        "/dev/video2", 1920, 1080, 60, "mjpg", jetson=True)
    assert p.v4l2_pipeline("/dev/video0").startswith('v4l2src device="/dev/video0" ! video/x-raw ! videoconvert')


def test_rtsp_pipelines() -> None:
    url = "rtsp://cam.local:554/stream1"
    assert p.rtsp_pipeline(url, 200, "h264", "tcp", jetson=True) == (
        'rtspsrc location="rtsp://cam.local:554/stream1" latency=200 protocols=tcp ! rtph264depay ! h264parse ! '
        "nvv4l2decoder ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! " + SINK)
    assert p.rtsp_pipeline(url, 100, "h265", None, jetson=False) == (
        'rtspsrc location="rtsp://cam.local:554/stream1" latency=100 ! rtph265depay ! h265parse ! avdec_h265 ! '
        "videoconvert ! video/x-raw,format=BGR ! " + SINK)
    assert "! decodebin !" in p.rtsp_pipeline(url, codec="auto")


def test_udp_pipelines() -> None:
    assert p.udp_pipeline("127.0.0.1", 5000, "h264", jetson=True) == (
        "udpsrc address=127.0.0.1 port=5000 ! video/mpegts,systemstream=true ! tsdemux ! h264parse ! "
        "nvv4l2decoder ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! " + SINK)
    assert p.udp_pipeline("", 5000, "h264", jetson=False) == (
        "udpsrc port=5000 ! video/mpegts,systemstream=true ! tsdemux ! h264parse ! avdec_h264 ! "
        "videoconvert ! video/x-raw,format=BGR ! " + SINK)


def test_helpers() -> None:
    assert p.framerate(29.97) == "2997/100" and p.framerate(30000 / 1001) == "30000/1001"
    assert p.quote('a "b"') == '"a \\"b\\""'
    assert p.check_appsink("videotestsrc ! videoconvert ! appsink max-buffers=1") == \
        "videotestsrc ! videoconvert ! appsink max-buffers=1"
    with pytest.raises(SourceError, match=r"gst:// pipeline must end in an appsink, got 'autovideosink'"):
        p.check_appsink("videotestsrc ! autovideosink")
    assert p.ffmpeg_capture_options("rtsp", "tcp") == "fflags;nobuffer|flags;low_delay|rtsp_transport;tcp"
    assert p.ffmpeg_capture_options("udp") == "fflags;nobuffer|flags;low_delay"
    assert p.ffmpeg_udp_url("udp://127.0.0.1:5000") == "udp://127.0.0.1:5000?overrun_nonfatal=1"
    assert p.ffmpeg_udp_url("udp://@:5000?overrun_nonfatal=0&fifo_size=100") == \
        "udp://@:5000?overrun_nonfatal=0&fifo_size=100"
    from jetseg.redact import redact  # the one rule (jetseg/redact.py) live sources show their URI with

    assert redact("rtsp://admin:s3cret@10.0.0.9/live") == "rtsp://admin:***@10.0.0.9/live"
    assert redact("rtsp://cam/live") == "rtsp://cam/live"


def test_what_live_sources_need_without_gstreamer_is_what_the_docs_table_says():
    """doctor's advice comes from WITHOUT_GSTREAMER; docs/sources.md's "Live capture" table must agree."""
    from jetseg.jetson.sources.pipelines import WITHOUT_GSTREAMER, without_gstreamer
    from tests.fixtures.paths import REPO

    text = (REPO / "docs" / "sources.md").read_text(encoding="utf-8")
    table = text[text.index("## Live capture"):].split("\n\n")[1]  # the first table of that section
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    for scheme, how in WITHOUT_GSTREAMER.items():
        (row,) = [r for r in rows if r.startswith("| `%s://" % scheme)]
        without = row.rstrip(" |").rsplit("|", 1)[1]
        assert ("needs GStreamer" in without) == (how is None), (scheme, without)
        if how is not None:
            assert ("CAP_FFMPEG" in without) == ("FFmpeg" in how) and ("CAP_V4L2" in without) == ("V4L2" in how)
    assert without_gstreamer().startswith("csi://, gst:// sources need it")
