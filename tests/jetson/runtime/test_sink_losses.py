"""Sinks that lose frames to failures fail the run and say how many (issue 20, high 5 and 10, masks on a full
disk): real `jetseg run` processes, a real ffmpeg, a small tmpfs for the full disk."""
from __future__ import annotations

import re
import shutil

import pytest

from tests.fixtures.disks import tmpfs
from tests.fixtures.media import playable_frames
from tests.fixtures.processes import jetseg, last_line

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                  reason="needs ffmpeg and ffprobe (apt install ffmpeg)")



@needs_ffmpeg
def test_a_file_sink_whose_encoder_fails_on_the_first_frame_fails_the_run(tiny_bundle, tmp_path):
    out = tmp_path / "out.mp4"
    done = jetseg("run", "--model", tiny_bundle.path, "--source", "synthetic://ultrasound?frames=10",
                  "--sink", "file://%s?preset=no-such-preset" % out, "--sink", "null://",
                  "--backend-option", "threads=1")
    assert last_line(done) == ("jetseg run: error: sink file failed on every frame (10 errors); nothing was "
                               "written there; see the log above")
    assert not out.exists() and not list(tmp_path.glob(".out.*"))  # nothing kept: nothing was finished


@needs_ffmpeg
def test_a_full_disk_while_recording_keeps_a_playable_file_says_how_many_frames_were_lost_and_fails(
        tiny_bundle, tmp_path):
    with tmpfs(tmp_path, "size=256k") as mount:
        done = jetseg("run", "--model", tiny_bundle.path, "--source", "synthetic://ultrasound?frames=600&fps=30",
                      "--sink", "file://%s" % (mount / "rec.mp4"), "--backend-option", "threads=1")
        line = last_line(done)
        match = re.match(r"jetseg run: error: sink file lost (\d+) of 600 frames; see the log above$", line)
        assert match, done.stderr[-3000:]
        assert "kept the frames finished before it in %s" % (mount / "rec.mp4") in done.stderr
        kept = playable_frames(mount / "rec.mp4")  # the kept part plays
        # every frame not in a complete fragment is counted (a player may show a few more, from the cut one)
        assert 0 < kept < 600 and 600 - kept <= int(match.group(1)) <= 600 - kept + 30
        assert [p.name for p in mount.iterdir()] == ["rec.mp4"]  # no hidden partial file left


def test_masks_that_lose_some_frames_to_a_full_disk_fail_the_run_with_the_count(tiny_bundle, tmp_path):
    with tmpfs(tmp_path, "size=96k") as mount:
        done = jetseg("run", "--model", tiny_bundle.path, "--source", "synthetic://ultrasound?frames=200",
                      "--sink", "masks://%s" % mount, "--backend-option", "threads=1")
        kept = len(list((mount / "masks").glob("*.png")))
    match = re.match(r"jetseg run: error: sink masks lost (\d+) of 200 frames; see the log above$", last_line(done))
    assert match, done.stderr[-3000:]
    assert 0 < kept < 200 and int(match.group(1)) >= 200 - kept
