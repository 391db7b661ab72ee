"""Recordings of live sources keep real time: a 12 s stream with dropped frames is about 12 s of video."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from jetseg.jetson.sinks import SinkContext, open_sink
from tests.fixtures.media import make_result

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                  reason="needs ffmpeg and ffprobe (apt-get install ffmpeg)")


def duration_s(path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
                         capture_output=True, timeout=60, check=True)
    return float(json.loads(out.stdout)["format"]["duration"])


def _stream(sink, spec, live: bool) -> None:
    """12 s captured at 30 fps; the pipeline keeps one frame in three, and loses 2 s to a reconnection."""
    sink.open(SinkContext(spec=spec, fps=30.0, live=live))
    t0 = 1000.0
    for i in range(0, 360, 3):
        if 150 <= i < 210:
            continue  # the source was gone for 2 s
        result = make_result(i, spec)
        result.stamps["captured"] = t0 + i / 30.0
        sink.write(result)
    sink.close()


@needs_ffmpeg
def test_a_12_s_live_stream_with_drops_records_12_s(tmp_path, spec):
    out = tmp_path / "live.mp4"
    sink = open_sink("file://%s" % out)
    _stream(sink, spec, live=True)
    assert sink.written == 100 and 355 <= sink.video_frames <= 360
    assert duration_s(out) == pytest.approx(12.0, abs=0.2)


@needs_ffmpeg
def test_a_file_source_records_every_frame_once(tmp_path, spec):
    out = tmp_path / "file.mp4"
    sink = open_sink("file://%s" % out)
    _stream(sink, spec, live=False)
    assert sink.written == sink.video_frames == 100
    assert duration_s(out) == pytest.approx(100 / 30.0, abs=0.1)
