"""Auto ROI on real scanner screens (pydicom's vendor ultrasound files) and on generated layouts: IoU >= 0.9
with the hand-measured box, never the header or label text, and the shape named."""
from __future__ import annotations

import numpy as np
import pytest

from jetseg.jetson.frames.roi import RoiPolicy, detect_imaging_area
from jetseg.jetson.sources import open_source
from tests.fixtures.realscreens import REAL_SCREENS, iou, real_screen_frames, real_screen_path
from tests.fixtures.scanner import LAYOUTS, layout_screen
from tests.fixtures.specs import tiny_spec

pytest.importorskip("pydicom")

#: the kind of screen each real file shows
REAL_KINDS = {"examples_jpeg2k.dcm": "rectangle", "examples_rgb_color.dcm": "rectangle",
              "examples_palette.dcm": "sector", "examples_ybr_color.dcm": "sector"}


def _inside(box, truth, margin):
    """True when ``box`` lies within ``truth`` grown by ``margin`` pixels on every side."""
    return (box[0] >= truth[0] - margin and box[1] >= truth[1] - margin
            and box[0] + box[2] <= truth[0] + truth[2] + margin and box[1] + box[3] <= truth[1] + truth[3] + margin)


@pytest.mark.parametrize("name", sorted(REAL_SCREENS))
def test_auto_roi_on_real_vendor_screens(name):
    truth = REAL_SCREENS[name][0]
    frames = real_screen_frames(name)
    area = detect_imaging_area(frames)
    assert iou(area.box, truth) >= 0.9, (area, truth)
    assert area.kind == REAL_KINDS[name]
    assert len(area.views) == 1
    # never the header text above, the label or the footer ruler below: at most a few pixels outside
    height, width = frames[0].shape[:2]
    assert _inside(area.box, truth, margin=max(6, int(0.015 * max(height, width)))), (area.box, truth)


def test_region_tags_agree_with_the_pixels_on_the_sonosite_cine():
    frames = real_screen_frames("examples_ybr_color.dcm", count=8)  # fewer leave part of the sector dark
    source = open_source(real_screen_path("examples_ybr_color.dcm"))
    source.open()
    meta = source.read().meta
    source.close()
    assert meta.get("roi_source") and tuple(meta["roi"]) == REAL_SCREENS["examples_ybr_color.dcm"][0]
    assert iou(detect_imaging_area(frames).box, tuple(meta["roi"])) >= 0.9


@pytest.mark.parametrize("seed", range(6))
def test_endoscopy_stream_circle_found_on_every_seed(seed):
    source = open_source("synthetic://endoscopy?seed=%d" % seed)
    source.open()
    frames = [source.read().image for _ in range(3)]
    source.close()
    area = detect_imaging_area(frames)
    assert area.kind == "circle"
    height, width = frames[0].shape[:2]
    assert area.box[2] * area.box[3] >= 0.4 * height * width


@pytest.mark.parametrize("layout", LAYOUTS)
def test_auto_roi_on_generated_layouts(layout):
    image, views = layout_screen(layout, seed=3)
    area = detect_imaging_area([image])
    expected = {"dual-sector": "sector", "quad-rectangle": "rectangle", "octagon": "octagon",
                "cut-circle": "circle", "full-frame": "full frame"}[layout]
    assert area.kind == expected
    assert len(area.views) == len(views)
    for found, truth in zip(sorted(area.views, key=lambda b: (b[1] // 100, b[0])),
                            sorted(views, key=lambda b: (b[1] // 100, b[0]))):
        assert iou(found, truth) >= 0.9, (area.views, views)
    if layout != "full-frame":
        assert area.box[1] > 16 or layout == "cut-circle"  # not the text line at the top


def test_policy_reports_what_it_found(caplog):
    image, _ = layout_screen("octagon")
    policy = RoiPolicy(tiny_spec(), "auto")
    policy.resolve([image])
    assert policy.kind == "octagon"
    assert policy.origin() == "auto: found a octagon 481x401 at 80,40"
    fixed = RoiPolicy(tiny_spec(), [1, 2, 3, 4])
    fixed.resolve([np.zeros((10, 10), np.uint8)])
    assert fixed.kind is None and fixed.origin() == "fixed"
