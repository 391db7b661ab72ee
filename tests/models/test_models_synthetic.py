"""Synthetic scans: masks match their images, determinism, smooth motion, field of view, text placement."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")

from jetseg.errors import JetsegError  # noqa: E402
from jetseg.models.synthetic import CLIP_LENGTH, field_of_view, make_frame  # noqa: E402
from jetseg.models.synthetic.ultrasound import sector_mask  # noqa: E402

SIZE = (240, 320)


@pytest.mark.parametrize("kind", ["ultrasound", "endoscopy", "ct"])
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
    assert abs(x - xs.min()) <= 1 and abs(y - ys.min()) <= 1  # the box hugs the sector
    assert abs((x + w - 1) - xs.max()) <= 1 and abs((y + h - 1) - ys.max()) <= 1
    text = np.zeros((480, 640), bool)
    text[:y] = True  # above the sector: the patient line
    assert (image[..., 0][text] > 100).sum() > 50  # burned-in text there, cropped away by the ROI


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


@pytest.mark.parametrize("kind", ["ultrasound", "endoscopy"])
@pytest.mark.parametrize("size", [(480, 640), (240, 320), (720, 1280)])
def test_roi_crop_holds_no_burned_in_text(kind, size):
    """Outside the imaging area the frame is black except for text; none of that text is inside the ROI."""
    image, _ = make_frame(kind, 5, seed=1, size=size)
    x, y, w, h = field_of_view(kind, size)
    if kind == "ultrasound":
        area = sector_mask(size)
    else:
        from jetseg.models.synthetic.endoscopy import geometry

        g = geometry(size)
        ys, xs = np.mgrid[0:size[0], 0:size[1]]
        area = (xs - g["cx"]) ** 2 + (ys - g["cy"]) ** 2 <= g["radius"] ** 2
    box = np.zeros(size, bool)
    box[y:y + h, x:x + w] = True
    grey = image.max(axis=2)
    assert not grey[box & ~area].any()  # inside the ROI crop, outside the imaging area: black
    if size[0] >= 480 or kind == "ultrasound":  # a small endoscopy frame has no room for text
        assert grey[~box].max() > 150  # the text is there, outside the crop
