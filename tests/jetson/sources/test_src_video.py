"""VideoFileSource on an mp4 written with OpenCV in the test."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jetseg.errors import SourceError
from jetseg.jetson.sources import open_source
from jetseg.jetson.sources.video import VideoFileSource
from tests.fixtures.media import write_video


def test_every_frame_in_order(video_file: Path) -> None:
    src = open_source(str(video_file))
    assert isinstance(src, VideoFileSource)
    assert len(src) == 8 and src.fps == pytest.approx(10.0)
    with src:
        frames = list(src)
        assert src.read(0.1) is None
    assert src.ended and [f.index for f in frames] == list(range(8))
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)
    levels = [float(f.image.mean()) for f in frames]
    assert levels == pytest.approx([20 + 25 * i for i in range(8)], abs=4)
    assert frames[3].source_id == "clip.mp4" and frames[3].meta["file_frame"] == 3
    assert frames[3].meta["pos_ms"] == pytest.approx(300.0)


def test_file_uri_with_options_loop(video_file: Path) -> None:
    with open_source("file://%s?loop=1" % video_file) as src:
        frames = [src.read(1.0) for _ in range(11)]
    assert [f.meta["file_frame"] for f in frames] == list(range(8)) + [0, 1, 2]
    assert [f.index for f in frames] == list(range(11)) and not src.ended


def test_realtime_waits_for_the_next_frame(tmp_path: Path) -> None:
    path = write_video(tmp_path / "slow.mp4", frames=3, fps=1.0)
    with open_source(str(path), realtime=True) as src:
        first = src.read(timeout=1.0)
        assert first is not None and first.index == 0
        # the next frame is due one second after the first: a short timeout returns nothing yet
        assert src.read(timeout=0.05) is None
        assert not src.ended


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"source .*nope\.mp4 does not exist"):
        open_source(str(tmp_path / "nope.mp4"))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 300)
    with pytest.raises(SourceError, match=r"cannot (open|decode) video bad\.mp4: OpenCV"):
        open_source(str(bad)).open()
    with pytest.raises(SourceError, match=r"unknown video source option 'realtim' \(did you mean 'realtime'\?\)"):
        VideoFileSource(str(bad), realtim=1)
    with pytest.raises(SourceError, match=r"video source option realtime='maybe': expected 1/0"):
        VideoFileSource(str(bad), realtime="maybe")
