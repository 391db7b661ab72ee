"""synthetic:// source: options, finite/endless streams, labels, ROI, loop cache, pacing, errors."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")

from jetseg.errors import SourceError  # noqa: E402
from jetseg.jetson.sources import open_source  # noqa: E402
from jetseg.models.synthetic import field_of_view, make_frame  # noqa: E402

SMALL = "width=160&height=120"


def test_finite_stream_with_labels_and_roi():
    with open_source("synthetic://ultrasound?frames=4&seed=2&start=5&" + SMALL) as src:
        assert len(src) == 4
        frames = list(src)
        assert src.ended
    assert [f.index for f in frames] == [0, 1, 2, 3]
    image, mask = make_frame("ultrasound", 6, seed=2, size=(120, 160))
    assert np.array_equal(frames[1].image, image) and np.array_equal(frames[1].label, mask)
    assert frames[0].meta["roi"] == field_of_view("ultrasound", (120, 160))
    assert frames[0].meta["classes"] == ["background", "lesion"]
    assert src.read(timeout=0.1) is None


def test_endless_without_frames():
    src = open_source("synthetic://endoscopy?" + SMALL)
    with pytest.raises(TypeError):
        len(src)
    with src:
        for _ in range(3):
            assert src.read(timeout=1.0) is not None
        assert not src.ended


def test_loop_renders_few_frames_and_cycles():
    with open_source("synthetic://endoscopy?frames=7&loop=3&" + SMALL) as src:
        frames = list(src)
        assert len(src._cache) == 3
    assert frames[0].image is frames[3].image is frames[6].image
    assert not np.array_equal(frames[0].image, frames[1].image)
    assert frames[6].index == 6
    with pytest.raises(ValueError):
        frames[0].image[0, 0, 0] = 1  # shared frames are read-only


def test_keyword_options_override_the_query():
    with open_source("synthetic://ultrasound?frames=2", width=128, height=96, realtime=False) as src:
        frame = src.read()
    assert frame.image.shape == (96, 128, 3)


def test_realtime_timeout_returns_none_without_losing_the_frame():
    with open_source("synthetic://ultrasound?frames=3&realtime=1&fps=1&" + SMALL) as src:
        assert src.read(timeout=0.5) is not None  # first frame is due at once
        assert src.read(timeout=0.0) is None  # the next is due in a second
        assert not src.ended and src.delivered == 1


def test_realtime_slow_reader_gets_the_newest_frame_and_drops_are_counted():
    import time

    with open_source("synthetic://ultrasound?realtime=1&fps=50&" + SMALL) as src:
        assert src.live
        first = src.read(timeout=1.0)
        time.sleep(0.3)  # 15 frame periods: a live scanner does not wait
        late = src.read(timeout=1.0)
        assert late.index - first.index >= 10
        assert src.dropped == late.index - first.index - 1
        assert late.timestamp > first.timestamp


def test_realtime_finite_stream_ends_after_its_last_frame():
    import time

    with open_source("synthetic://ultrasound?realtime=1&fps=100&frames=5&" + SMALL) as src:
        src.read(timeout=1.0)
        time.sleep(0.2)
        last = src.read(timeout=1.0)
        assert last.index == 4 and src.ended and src.dropped == 3


@pytest.mark.parametrize("uri, text", [
    ("synthetic://ultrasound?frame=3", "unknown synthetic source option 'frame' (did you mean 'frames'?); known "
                                       "options: fps, frames, height, level, loop, noise, realtime, seed, start, "
                                       "width"),
    ("synthetic://ultrasound?frames=0", "synthetic source option frames=0: expected an integer >= 1"),
    ("synthetic://ultrasound?seed=x", "synthetic source option seed='x': expected an integer"),
    ("synthetic://mri", "kind 'mri' is unknown; expected synthetic://ultrasound or synthetic://endoscopy or synthetic://ct"),
])
def test_bad_options(uri, text):
    with pytest.raises(SourceError) as err:
        open_source(uri)
    assert text in str(err.value)


def test_noise_option_gives_noisy_frames_with_their_clean_frame():
    from jetseg.models.synthetic.noise import add_noise

    with open_source("synthetic://ct?noise=lowdose&level=0.5&frames=2&seed=4&" + SMALL) as src:
        frames = list(src)
    clean, mask = make_frame("ct", 1, seed=4, size=(120, 160))
    assert np.array_equal(frames[1].meta["clean"], clean) and np.array_equal(frames[1].label, mask)
    assert np.array_equal(frames[1].image, add_noise(clean, "ct", ("lowdose",), 1, seed=4, level=0.5))
    with open_source("synthetic://ultrasound?frames=1&" + SMALL) as src:
        assert "clean" not in next(iter(src)).meta
    with open_source("synthetic://ultrasound?noise=speckle&loop=2&frames=4&" + SMALL) as src:
        looped = list(src)
    assert looped[2].meta["clean"] is looped[0].meta["clean"] and not looped[0].meta["clean"].flags.writeable


@pytest.mark.parametrize("uri,message", [
    ("synthetic://ct?noise=speckle", "noise 'speckle' is made for synthetic://ultrasound, not synthetic://ct; "
                                     "use noise=lowdose"),
    ("synthetic://ultrasound?noise=speckle&level=0", "level"),
])
def test_bad_noise_options_are_one_line(uri, message):
    with pytest.raises(SourceError, match=message):
        open_source(uri)
