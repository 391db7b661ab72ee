"""ROI: auto-detection of the scanner image area (ignoring burned-in text), fixed and spec ROIs."""
from __future__ import annotations

import numpy as np
import pytest

from jetseg.jetson.frames.roi import RoiError, RoiPolicy, clip_roi, detect_roi
from tests.fixtures.media import scanner_frame
from tests.fixtures.scanner import KINDS, scanner_screen
from tests.fixtures.specs import tiny_spec


def _close(found, truth, tol=3):
    return all(abs(a - b) <= tol for a, b in zip(found, truth))


@pytest.mark.parametrize("circle", [False, True], ids=["ultrasound-sector", "endoscope-circle"])
def test_auto_roi_finds_the_image_area_not_the_text(circle):
    frames, truth = [], None
    for seed in range(3):
        image, truth = scanner_frame(seed, circle=circle)
        frames.append(image)
    found = detect_roi(frames)
    assert _close(found, truth), (found, truth)
    x, y, w, h = found
    assert y > 44  # the burned-in patient text lines (y < 44) are outside
    assert x + w < 640 - 22  # so is the depth ruler


def test_auto_roi_works_on_grey_and_uint16_frames():
    image, truth = scanner_frame(1)
    grey = image[:, :, 0]
    assert _close(detect_roi([grey] * 2), truth, tol=8)
    assert _close(detect_roi([grey.astype(np.uint16) * 257] * 2), truth, tol=8)


def test_auto_roi_on_black_frames_says_what_to_do():
    with pytest.raises(RoiError, match="no image area found .* use --roi x,y,w,h or roi: spec"):
        detect_roi([np.zeros((48, 64), np.uint8)])
    with pytest.raises(RoiError, match="needs frames of one size"):
        detect_roi([np.zeros((48, 64), np.uint8), np.zeros((40, 64), np.uint8)])


def test_policies():
    spec = tiny_spec(roi=[10, 5, 30, 20])
    frame = np.zeros((48, 64), np.uint8)
    assert RoiPolicy(spec, "spec").resolve([frame]) == (10, 5, 30, 20)
    assert RoiPolicy(spec, "none").resolve([frame]) == (0, 0, 64, 48)
    fixed = RoiPolicy(spec, [50, 40, 100, 100])
    assert fixed.resolve([frame]) == (50, 40, 14, 8)  # clipped to the frame
    assert fixed.current((48, 64)) == (50, 40, 14, 8)
    assert fixed.current((96, 128)) is None  # a new frame size needs resolving again
    with pytest.raises(RoiError, match=r"lies outside the 64x48 frame; expected x < 64 and y < 48"):
        clip_roi([70, 0, 10, 10], (48, 64), "--roi")
    with pytest.raises(RoiError, match="ROI mode 'sector' is unknown"):
        RoiPolicy(spec, "sector")


def test_relative_roi_fits_every_frame_size():
    policy = RoiPolicy(tiny_spec(), {"relative": [0.25, 0.125, 0.5, 0.75]})
    assert policy.resolve([np.zeros((48, 64), np.uint8)]) == (16, 6, 32, 36)
    assert policy.current((96, 128)) is None  # another size: resolved again, to the same fractions
    assert policy.resolve([np.zeros((96, 128, 3), np.uint8)]) == (32, 12, 64, 72)
    assert policy.origin() == "relative [0.25, 0.125, 0.5, 0.75]"
    with pytest.raises(RoiError, match=r"ROI mode \{'relative': \[0.5, 0, 0.6, 1\]\} is unknown; expected "
                                        r"\{relative: \[x, y, width, height\]\} as fractions of the frame"):
        RoiPolicy(tiny_spec(), {"relative": [0.5, 0, 0.6, 1]})  # x + width > 1
    with pytest.raises(RoiError, match=r"expected \[x, y, width, height\] in frame pixels"):
        RoiPolicy(tiny_spec(), [0.1, 0.1, 0.5, 0.5])  # fractions need {relative: ...}


@pytest.mark.parametrize("kind", KINDS)
def test_auto_roi_on_real_looking_scanner_screens(kind):
    frames, truth = [], None
    for seed in range(3):
        image, truth = scanner_screen(kind, seed)
        frames.append(image)
    x, y, w, h = detect_roi(frames)
    assert _close((x, y, w, h), truth, tol=6), ((x, y, w, h), truth)
    assert y >= 56  # never the header bar with the patient text
    assert x + w < 640 - 40  # nor the ruler


def test_auto_roi_refuses_frames_without_an_imaging_area():
    image, _ = scanner_screen("colour-bar")
    image[80:] = 0
    image[80:300, 20:38] = 200  # only text, a header bar and a bar left
    with pytest.raises(RoiError, match="no imaging area found"):
        detect_roi([image])


def test_fixed_roi_clipped_warns_once_per_size(caplog) -> None:
    import logging

    policy = RoiPolicy(tiny_spec(), [10, 10, 100, 100])
    with caplog.at_level(logging.WARNING, logger="jetseg"):
        for _ in range(3):
            assert policy.resolve([np.zeros((60, 80), np.uint8)]) == (10, 10, 70, 50)
    assert [r.getMessage() for r in caplog.records] == [
        "--roi / roi.mode [10, 10, 100, 100] does not fit the 80x60 frame; clipped to [10, 10, 70, 50] (written "
        "for another frame size? give it relative to the frame: {relative: [x, y, w, h]})"]
