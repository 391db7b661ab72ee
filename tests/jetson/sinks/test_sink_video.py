"""file:// recordings checked with the real ffmpeg/ffprobe and decoded back with OpenCV."""
from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jetseg.errors import SinkError
from jetseg.jetson.sinks import SinkContext, open_sink
from jetseg.jetson.sinks.video import VideoFileSink
from tests.fixtures.media import make_result
from tests.fixtures.specs import ROI

ROOT = Path(__file__).resolve().parents[3]  # the folder holding tests/, for the child to import tests.fixtures
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                  reason="needs ffmpeg and ffprobe (apt-get install ffmpeg)")


def probe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                          "stream=nb_read_frames,width,height,codec_name,pix_fmt,r_frame_rate", "-of", "json",
                          str(path)], capture_output=True, timeout=60, check=True)
    return json.loads(out.stdout)["streams"][0]


def decode(path: Path) -> list:
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames


def top_level_atoms(path: Path) -> list:
    """The names of an MP4 file's top-level boxes, in order."""
    names, data, pos = [], path.read_bytes(), 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        names.append(data[pos + 4:pos + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[pos + 8:pos + 16], "big")
        if size < 8:
            break
        pos += size
    return names


def red_pixels(image: np.ndarray) -> int:
    """Pixels of the blended lesion colour (BGR: red high, green and blue low)."""
    b, g, r = image[..., 0].astype(int), image[..., 1].astype(int), image[..., 2].astype(int)
    return int(((r > 180) & (g < 150) & (b < 150) & (r - g > 60)).sum())


def record(sink, spec, count, shape=(96, 128), fps=25.0):
    sink.open(SinkContext(spec=spec, fps=fps))
    for i in range(count):
        sink.write(make_result(i, spec, shape=shape))
    sink.close()


def leftovers(directory: Path, keep: str) -> list:
    return sorted(p.name for p in directory.iterdir() if p.name != keep)


@needs_ffmpeg
def test_records_every_frame_as_browser_playable_h264(tmp_path, spec):
    out = tmp_path / "out.mp4"
    sink = open_sink("file://%s" % out)
    assert isinstance(sink, VideoFileSink) and sink.blocking_ok
    record(sink, spec, 12)
    assert sink.encoder == "ffmpeg" and sink.written == 12
    info = probe(out)
    assert info["nb_read_frames"] == "12"
    assert (info["codec_name"], info["pix_fmt"]) == ("h264", "yuv420p")
    assert (info["width"], info["height"]) == (128, 96)
    assert info["r_frame_rate"] == "25/1"  # from context.fps
    frames = decode(out)
    assert len(frames) == 12
    assert all(red_pixels(f) > 100 for f in frames)  # the overlay is burned in
    assert leftovers(tmp_path, "out.mp4") == []  # no temporary file left behind
    atoms = top_level_atoms(out)
    assert atoms.index("moov") < atoms.index("mdat")  # +faststart: the index comes first (browsers stream it)


@needs_ffmpeg
def test_roi_only_odd_sizes_resizing_and_fps_option(tmp_path, spec):
    roi = tmp_path / "roi.mp4"
    record(open_sink("file://%s?roi=1&fps=10" % roi), spec, 5)
    info = probe(roi)
    assert (info["width"], info["height"]) == (ROI[2], ROI[3])
    assert info["r_frame_rate"] == "10/1" and info["nb_read_frames"] == "5"
    top = decode(roi)[0][:6]
    assert top.mean() < 120  # the bright "burned-in text" band above the ROI is not recorded

    odd = tmp_path / "odd.mp4"
    sink = open_sink("file://%s" % odd)
    sink.open(SinkContext(spec=spec))
    sink.write(make_result(0, spec, shape=(95, 127)))
    sink.write(make_result(1, spec, shape=(95, 127)))
    sink.close()
    info = probe(odd)
    assert (info["width"], info["height"]) == (128, 96)  # yuv420p: odd sizes padded by one pixel
    assert info["nb_read_frames"] == "2" and info["r_frame_rate"] == "30/1"  # default fps


@needs_ffmpeg
def test_a_new_picture_size_starts_a_new_segment_never_a_squashed_frame(tmp_path, spec, caplog):
    """roi=1 over files of several layouts: each ROI size gets its own file, at its own size."""
    out = tmp_path / "rec.mp4"
    sink = open_sink("file://%s?roi=1" % out)
    sink.open(SinkContext(spec=spec, fps=25.0))
    small = (ROI[0], ROI[1], ROI[2] // 2, ROI[3] // 2)
    with caplog.at_level(logging.INFO, logger="jetseg"):
        for index, roi in enumerate([ROI, ROI, small, small, small, ROI]):
            result = make_result(index, spec)
            result.roi = roi
            sink.write(result)
        sink.close()
    assert sink.segments == [out, tmp_path / "rec-001.mp4", tmp_path / "rec-002.mp4"]
    sizes = [(probe(p)["width"], probe(p)["height"], probe(p)["nb_read_frames"]) for p in sink.segments]
    assert sizes == [(ROI[2], ROI[3], "2"), (ROI[2] // 2, ROI[3] // 2, "3"), (ROI[2], ROI[3], "1")]
    assert sink.written == 6 and leftovers(tmp_path, "rec.mp4") == ["rec-001.mp4", "rec-002.mp4"]
    assert "file://%s: the picture changed from 80x60 to 40x30 (the ROI changed); rec.mp4 is finished, " \
           "recording on in rec-001.mp4" % out in caplog.text


@needs_ffmpeg
def test_encoder_killed_leaves_no_file(tmp_path, spec):
    out = tmp_path / "crash.mp4"
    sink = open_sink("file://%s" % out)
    sink.open(SinkContext(spec=spec))
    sink.write(make_result(0, spec))
    sink._proc.kill()  # the encoder dies abruptly (out of memory, crash)
    sink._proc.wait(timeout=60)
    with pytest.raises(SinkError, match=r"ffmpeg stopped while recording .*crash.mp4 \(exit code -9\)"):
        for i in range(1, 50):
            sink.write(make_result(i, spec))
    sink.close()
    assert list(tmp_path.iterdir()) == []  # neither the target nor a partial file
    with pytest.raises(SinkError, match=r"file:// sink is not open; write\(\) came before open\(\) or after close\(\)"):
        sink.write(make_result(99, spec))


@needs_ffmpeg
def test_encoder_signalled_by_service_manager_still_finishes_file(tmp_path, spec):
    # systemd's default KillMode signals every process of the service, ffmpeg included
    out = tmp_path / "term.mp4"
    sink = open_sink("file://%s" % out)
    sink.open(SinkContext(spec=spec))
    for i in range(8):
        sink.write(make_result(i, spec))
    sink._proc.send_signal(signal.SIGTERM)
    try:
        sink._proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass  # ffmpeg was blocked reading its stdin (the read restarts after the signal): the next frame wakes it
    for i in range(8, 12):
        sink.write(make_result(i, spec))  # no error: the rest is dropped
    sink.close()
    assert 1 <= int(probe(out)["nb_read_frames"]) <= 12
    assert leftovers(tmp_path, "term.mp4") == []


CHILD = r"""
import signal, sys, threading
sys.path.insert(0, sys.argv[2])
from tests.fixtures.media import make_result
from tests.fixtures.specs import overlay_spec
from jetseg.jetson.sinks import SinkContext, open_sink
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
spec = overlay_spec()
sink = open_sink("file://" + sys.argv[1])
sink.open(SinkContext(spec=spec, fps=25))
i = 0
while not stop.is_set() and i < 3000:
    sink.write(make_result(i, spec))
    i += 1
    if i == 10:
        print("recording", flush=True)
sink.close()  # what the pipeline does on shutdown
print("closed", sink.written, flush=True)
"""


@needs_ffmpeg
def test_sigterm_to_the_process_group_finishes_a_playable_file(tmp_path):
    out = tmp_path / "daemon.mp4"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(ROOT)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True, text=True)
    try:
        assert select.select([child.stdout], [], [], 120)[0], "the child did not start recording within 120 s"
        assert child.stdout.readline().strip() == "recording"
        assert not out.exists()  # still being written under a temporary name
        os.killpg(child.pid, signal.SIGTERM)  # like Ctrl+C / kill of the job: the whole group
        stdout, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, stderr
    written = int(stdout.split()[-1])
    assert written >= 10
    assert int(probe(out)["nb_read_frames"]) == written
    assert len(decode(out)) == written
    assert leftovers(tmp_path, "daemon.mp4") == []


def test_opencv_fallback(tmp_path, spec):
    out = tmp_path / "cv.mp4"
    sink = open_sink("file://%s" % out, encoder="opencv")
    record(sink, spec, 6)
    assert sink.encoder == "opencv"
    frames = decode(out)
    assert len(frames) == 6 and frames[0].shape == (96, 128, 3)
    assert red_pixels(frames[3]) > 100
    assert leftovers(tmp_path, "cv.mp4") == []


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_auto_falls_back_to_opencv_without_ffmpeg(tmp_path, spec, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no ffmpeg to be found
    collect = Collect()
    logging.getLogger("jetseg.sinks.video").addHandler(collect)
    try:
        sink = open_sink("file://%s" % (tmp_path / "auto.mp4"))
        record(sink, spec, 3)
    finally:
        logging.getLogger("jetseg.sinks.video").removeHandler(collect)
    assert sink.encoder == "opencv"
    assert any("ffmpeg with libx264 not found" in m for m in collect.messages)
    assert len(decode(tmp_path / "auto.mp4")) == 3
    with pytest.raises(SinkError, match=r"encoder=ffmpeg was asked for but ffmpeg is not installed; install it "
                                        r"\(apt-get install ffmpeg\) or use encoder=opencv"):
        open_sink("file://%s" % (tmp_path / "f.mp4"), encoder="ffmpeg").open(SinkContext(spec=spec))


def test_no_frames_no_file_and_strftime_names(tmp_path, spec):
    sink = open_sink("file://%s/rec-%%Y.mp4" % tmp_path)
    sink.open(SinkContext(spec=spec))
    assert sink.path.name == "rec-%s.mp4" % time.strftime("%Y")
    sink.close()
    assert list(tmp_path.iterdir()) == []


def test_video_option_errors(tmp_path, spec):
    with pytest.raises(SinkError, match=r"file://.*out.txt: cannot record to a '.txt' file; expected a name "
                                        r"ending in .avi, .mkv, .mov, .mp4"):
        open_sink("file://%s/out.txt" % tmp_path)
    with pytest.raises(SinkError, match=r"file:// sink option fps=-1.0: expected a number > 0"):
        open_sink("file://out.mp4?fps=-1")
    with pytest.raises(SinkError, match=r"file:// sink option encoder='x264': expected one of auto, "
                                        r"ffmpeg, opencv"):
        open_sink("file://out.mp4?encoder=x264")
    sink = open_sink("file://%s/x.mp4" % tmp_path)
    with pytest.raises(SinkError, match=r"file:// sink is not open; write\(\) came before open\(\) or after close\(\)"):
        sink.write(make_result(0, spec))


def test_two_sinks_whose_names_expand_to_one_file_are_refused(tmp_path):
    from jetseg.jetson.sinks.base import check_targets

    year = time.strftime("%Y")
    sinks = [open_sink("file://%s" % (tmp_path / "t-%Y.mp4")), open_sink("file://%s" % (tmp_path / ("t-%s.mp4" % year)))]
    with pytest.raises(SinkError, match=r"sinks file://.*t-%%Y.mp4 and file://.*t-%s.mp4 both write to .*t-%s.mp4"
                       % (year, year)):
        check_targets(sinks)


@needs_ffmpeg
def test_a_partial_recording_left_by_a_killed_run_is_recovered_at_open(tmp_path, spec, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=60)
    record(open_sink("file://%s" % (tmp_path / "earlier.mp4")), spec, 40)
    left = tmp_path / (".out.%d.partial.mp4" % dead.pid)  # what ffmpeg finished after the daemon's SIGKILL
    (tmp_path / "earlier.mp4").rename(left)
    alive = tmp_path / (".out.%d.partial.mp4" % os.getppid())  # another running recorder's: not touched
    alive.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="jetseg.sinks.video"):
        record(open_sink("file://%s" % (tmp_path / "out.mp4")), spec, 5)
    assert probe(tmp_path / "out.mp4")["nb_read_frames"] == "40"  # recovered under the first free name
    assert probe(tmp_path / "out-001.mp4")["nb_read_frames"] == "5"  # this run's recording
    assert not left.exists() and alive.exists()
    assert "recovered the recording of an earlier run that was killed: %s" % (tmp_path / "out.mp4") in caplog.text
