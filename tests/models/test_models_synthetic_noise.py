"""Noise for noisy/clean pairs (models/synthetic/noise.py) and the synthetic CT slices it is made for."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")

from jetseg.errors import JetsegError  # noqa: E402
from jetseg.imagescores import psnr  # noqa: E402
from jetseg.models.synthetic import field_of_view, make_frame  # noqa: E402
from jetseg.models.synthetic.ct import circle_mask  # noqa: E402
from jetseg.models.synthetic.noise import add_noise, imaging_area, parse_noise  # noqa: E402

SIZE = (240, 320)


@pytest.mark.parametrize("kind,names", [("ultrasound", ("speckle",)), ("ultrasound", ("lowgain",)),
                                        ("ultrasound", ("speckle", "lowgain")), ("ct", ("lowdose",))])
def test_noise_changes_only_the_imaging_area_and_is_deterministic(kind, names):
    clean, _ = make_frame(kind, 3, seed=1, size=SIZE)
    noisy = add_noise(clean, kind, names, 3, seed=1)
    area = imaging_area(kind, SIZE)
    assert noisy.shape == clean.shape and noisy.dtype == np.uint8
    assert np.array_equal(noisy[~area], clean[~area])  # burned-in text and the black surround stay as they are
    assert np.array_equal(noisy[..., 0], noisy[..., 2])  # still grey
    assert 10.0 < psnr(noisy[area][None] / 255.0, clean[area][None] / 255.0) < 35.0
    assert np.array_equal(add_noise(clean, kind, names, 3, seed=1), noisy)
    assert not np.array_equal(add_noise(clean, kind, names, 4, seed=1), noisy)


def test_lowgain_darkens_and_level_scales_the_noise():
    clean, _ = make_frame("ultrasound", 0, size=SIZE)
    area = imaging_area("ultrasound", SIZE)
    dark = add_noise(clean, "ultrasound", ("lowgain",), 0)
    assert dark[area].mean() < 0.7 * clean[area].mean()
    weak = add_noise(clean, "ultrasound", ("speckle",), 0, level=0.25)
    strong = add_noise(clean, "ultrasound", ("speckle",), 0, level=1.0)
    assert psnr(weak[area][None] / 255.0, clean[area][None] / 255.0) > psnr(strong[area][None] / 255.0, clean[area][None] / 255.0) + 5


def test_parse_noise_names_the_fix():
    assert parse_noise("speckle, lowgain", "ultrasound") == ("speckle", "lowgain")
    with pytest.raises(JetsegError, match="noise 'lowdose' is made for synthetic://ct, not synthetic://ultrasound; "
                                          "use noise=lowgain or noise=speckle"):
        parse_noise("lowdose", "ultrasound")
    with pytest.raises(JetsegError, match="noise 'blur' is unknown; expected lowdose, lowgain, speckle"):
        parse_noise("blur", "ct")
    with pytest.raises(JetsegError, match="synthetic://endoscopy has no noise option"):
        parse_noise("speckle", "endoscopy")


def test_ct_slice_has_a_body_in_its_circle_and_lesions_inside_it():
    image, mask = make_frame("ct", 0, seed=5, size=SIZE)
    x, y, w, h = field_of_view("ct", SIZE)
    assert w == h == int(0.96 * 240) and x >= 0 and y >= 0
    circle = circle_mask(SIZE)
    assert image[~circle].max() == 0 and mask[~circle].max() == 0
    grey = image[..., 0]
    assert (grey[circle] > 0).mean() > 0.3  # the body fills much of the circle
    assert mask.sum() > 50 and grey[mask == 1].mean() < grey[(mask == 0) & (grey > 60)].mean()  # hypodense
