"""Spec ROIs: pixels for one frame size (clipped with one warning per size elsewhere) or relative to the frame."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from jetseg.errors import SpecError
from jetseg.spec import Spec


def _spec(roi):
    return Spec.from_dict({"name": "t", "input": {"size": [32, 32], "roi": roi}, "classes": ["background", "a"]})


def test_relative_roi_scales_with_the_frame(tmp_path: Path) -> None:
    spec = _spec({"relative": [0.25, 0.1, 0.5, 0.8]})
    assert spec.roi_for((480, 640)) == (160, 48, 320, 384)
    assert spec.roi_for((240, 320)) == (80, 24, 160, 192)
    assert spec.roi_for((1080, 1920)) == (480, 108, 960, 864)
    spec.save(tmp_path / "spec.yaml")
    assert "relative:" in (tmp_path / "spec.yaml").read_text()
    assert Spec.load(tmp_path / "spec.yaml").input.roi == {"relative": [0.25, 0.1, 0.5, 0.8]}
    x = spec.preprocess(np.zeros((240, 320), np.uint8))
    assert x.shape == (1, 1, 32, 32)


@pytest.mark.parametrize("roi", [{"relative": [0.5, 0.0, 0.6, 1.0]}, {"relative": [0, 0, 0, 1]},
                                 {"relative": [0.1, 0.1, 0.5]}, {"relative": [0.1, 0.1, 0.5, 0.5], "x": 1},
                                 {"fraction": [0, 0, 1, 1]}, [0.1, 0.1, 0.5, 0.5]])
def test_invalid_rois_name_both_forms(roi) -> None:
    with pytest.raises(SpecError, match=r"spec field 'input.roi' .*expected .*(fractions of the frame|frame "
                                        r"pixels)"):
        _spec(roi)


def test_pixel_roi_clipped_on_another_size_warns_once_per_size(caplog) -> None:
    spec = _spec([49, 34, 542, 422])  # written for 640x480
    with caplog.at_level(logging.WARNING, logger="jetseg"):
        assert spec.roi_for((480, 640)) == (49, 34, 542, 422)
        assert not caplog.records
        for _ in range(3):
            assert spec.roi_for((240, 320)) == (49, 34, 271, 206)
        spec.roi_for((360, 480))
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0] == ("input.roi [49, 34, 542, 422] does not fit the 320x240 frame; clipped to [49, 34, 271, "
                           "206] (written for another frame size? give it relative to the frame: {relative: [x, "
                           "y, w, h]})")
    assert "480x360 frame" in messages[1]


def test_pixel_roi_outside_the_frame_suggests_relative() -> None:
    with pytest.raises(SpecError, match=r"input.roi \[400, 10, 20, 20\] lies outside the 320x240 frame; .*"
                                        r"\{relative: \[x, y, w, h\]\}"):
        _spec([400, 10, 20, 20]).roi_for((240, 320))
