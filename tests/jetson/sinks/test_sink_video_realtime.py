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
def test_a_12_s_live_stream_with_drops_records_12_s(tmp_path, spec, caplog):
    out = tmp_path / "live.mp4"
    sink = open_sink("file://%s" % out)
    with caplog.at_level("INFO", logger="jetseg.sinks.video"):
        _stream(sink, spec, live=True)
    assert sink.written == 100 and 355 <= sink.video_frames <= 360
    assert duration_s(out) == pytest.approx(12.0, abs=0.2)
    # the log counts what the file holds (issue 22: "recorded 592 frames" for a 601-frame file)
    assert ("recorded %d video frames to %s (100 results, %d repeated over gaps)"
            % (sink.video_frames, out, sink.video_frames - 100)) in caplog.text


@needs_ffmpeg
def test_a_file_source_records_every_frame_once(tmp_path, spec):
    out = tmp_path / "file.mp4"
    sink = open_sink("file://%s" % out)
    _stream(sink, spec, live=False)
    assert sink.written == sink.video_frames == 100
    assert duration_s(out) == pytest.approx(100 / 30.0, abs=0.1)


@needs_ffmpeg
def test_a_long_outage_is_filled_with_the_last_picture_up_to_the_cap(tmp_path, spec, monkeypatch):
    """A gap is filled with the picture shown before it, and only up to MAX_GAP_FILL_S (a long reconnect
    must not stall the sink thread encoding thousands of frames)."""
    from jetseg.jetson.sinks import video

    monkeypatch.setattr(video, "MAX_GAP_FILL_S", 1.0)
    sink = open_sink("file://%s" % (tmp_path / "gap.mp4"))
    written = []
    sink.open(SinkContext(spec=spec, fps=10.0, live=True))
    monkeypatch.setattr(sink, "_pipe", lambda image: written.append(int(image.sum())))
    before, after, again = make_result(0, spec), make_result(1, spec), make_result(2, spec)
    after.frame.image = after.frame.image // 2  # another picture
    before.stamps["captured"], after.stamps["captured"] = 100.0, 105.0  # a 5 s outage at 10 fps
    again.stamps["captured"] = 105.0  # same slot as `after`: nothing more to fill
    try:
        for result in (before, after, again):
            sink.write(result)
    finally:
        sink.close()
    picture = [int(before.overlay().sum()), int(after.overlay().sum())]
    assert picture[0] != picture[1]
    assert written[:11] == [picture[0]] * 11 and written[11] == picture[1]  # 1 + 10 repeats (1 s), then the new
    assert len(written) == 12
