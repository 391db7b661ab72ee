"""Synthetic scans: masks match their images, determinism, smooth motion, field of view, text placement."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")

from jetseg.errors import JetsegError  # noqa: E402
from jetseg.models.synthetic import CLIP_LENGTH, field_of_view, make_frame  # noqa: E402
from jetseg.models.synthetic.ultrasound import sector_mask  # noqa: E402

SIZE = (240, 320)


@pytest.mark.parametrize("kind", ["ultrasound", "endoscopy"])
def test_shapes_types_and_determinism(kind):
    image, mask = make_frame(kind, 7, seed=3, size=SIZE)
    assert image.shape == SIZE + (3,) and image.dtype == np.uint8
    assert mask.shape == SIZE and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 1}
    again_image, again_mask = make_frame(kind, 7, seed=3, size=SIZE)
    assert np.array_equal(image, again_image) and np.array_equal(mask, again_mask)
    other_image, _ = make_frame(kind, 7, seed=4, size=SIZE)
    assert not np.array_equal(image, other_image)


@pytest.mark.parametrize("kind", ["ultrasound", "endoscopy"])
def test_motion_is_smooth_within_a_clip_and_scenes_change(kind):
    a, ma = make_frame(kind, 10, seed=1, size=SIZE)
    b, mb = make_frame(kind, 11, seed=1, size=SIZE)
    c, mc = make_frame(kind, 10 + CLIP_LENGTH, seed=1, size=SIZE)
    iou = lambda p, q: np.logical_and(p, q).sum() / max(1, np.logical_or(p, q).sum())  # noqa: E731
    assert iou(ma, mb) > 0.8  # consecutive frames: the target barely moves
    assert iou(ma, mc) < iou(ma, mb)  # the next scene has other targets
    assert np.abs(a.astype(int) - b.astype(int)).mean() < np.abs(a.astype(int) - c.astype(int)).mean()


def test_ultrasound_is_grey_and_lesions_are_darker_than_surrounding_tissue():
    for index in (0, 50, 300):
        image, mask = make_frame("ultrasound", index, seed=2, size=SIZE)
        assert np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])
        grey = image[..., 0].astype(float)
        lesion = mask == 1
        import cv2

        ring = cv2.dilate(lesion.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool) & ~lesion
        ring &= sector_mask(SIZE)
        assert lesion.sum() > 100 and ring.sum() > 100
        assert grey[lesion].mean() < 0.6 * grey[ring].mean()


def test_ultrasound_mask_and_text_respect_the_sector():
    image, mask = make_frame("ultrasound", 3, seed=0, size=(480, 640))
    inside = sector_mask((480, 640))
    assert not mask[~inside].any()
    outside = image[..., 0][~inside]
    assert (outside > 100).sum() > 200  # burned-in text and depth scale outside the sector
    x, y, w, h = field_of_view("ultrasound", (480, 640))
    ys, xs = np.nonzero(inside)
    assert (x, y) == (xs.min(), ys.min()) or abs(x - xs.min()) <= 1 and abs(y - ys.min()) <= 1
    assert abs((x + w - 1) - xs.max()) <= 1 and abs((y + h - 1) - ys.max()) <= 1
    # the text area (top-left) is outside the field of view: an ROI crop removes it
    assert image[:y, :x].max() > 100 or image[: int(0.15 * 480), : int(0.2 * 640)].max() > 100
    crop = image[y:y + h, x:x + w, 0]
    assert crop.shape == (h, w)


def test_endoscopy_polyps_inside_the_circle_and_colour():
    from jetseg.models.synthetic.endoscopy import geometry

    g = geometry(SIZE)
    ys, xs = np.mgrid[0:SIZE[0], 0:SIZE[1]]
    inside = (xs - g["cx"]) ** 2 + (ys - g["cy"]) ** 2 <= g["radius"] ** 2
    for index in (0, 200, 450):
        image, mask = make_frame("endoscopy", index, seed=5, size=SIZE)
        assert mask.sum() > 100
        assert not mask[~inside].any()
        assert not np.array_equal(image[..., 0], image[..., 2])  # colour, mucosa is red
        assert image[inside][:, 2].mean() > image[inside][:, 0].mean()
    x, y, w, h = field_of_view("endoscopy", SIZE)
    assert x <= xs[inside].min() and x + w >= xs[inside].max() and y <= ys[inside].min()


def test_errors_are_one_line():
    with pytest.raises(JetsegError, match="unknown synthetic kind 'mri'; expected one of ultrasound, endoscopy"):
        make_frame("mri", 0)
    with pytest.raises(JetsegError, match="index -1 is negative"):
        make_frame("ultrasound", -1)
    with pytest.raises(JetsegError, match=r"size \(10, 10\) is invalid"):
        make_frame("ultrasound", 0, size=(10, 10))
