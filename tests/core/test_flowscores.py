"""Displacement fields: units, EPE, Jacobian folding, and the warp checked against torch's grid_sample."""
from __future__ import annotations

import numpy as np
import pytest

from jetseg.flowscores import (
    FlowScores,
    endpoint_error,
    folding_fraction,
    jacobian_determinant,
    to_pixels,
    warp,
)
from tests.fixtures.images import smooth_field, smooth_pair


def test_epe_by_hand():
    a = np.zeros((2, 4, 4))
    b = np.zeros((2, 4, 4))
    b[0], b[1] = 3.0, 4.0
    np.testing.assert_allclose(endpoint_error(a, b), 5.0)
    with pytest.raises(ValueError, match=r"a displacement field must be \(2, H, W\) or \(1, 2, H, W\).*\(3, 4, 4\)"):
        endpoint_error(np.zeros((3, 4, 4)), b)


def test_normalized_units_are_half_the_size():
    flow = np.ones((1, 2, 10, 20))
    px = to_pixels(flow, "normalized")
    assert px[0].max() == pytest.approx(10.0) and px[1].max() == pytest.approx(5.0)
    with pytest.raises(ValueError, match="field units 'mm' are unknown"):
        to_pixels(flow, "mm")


def test_jacobian_of_a_scaling_and_a_fold():
    y, x = np.mgrid[0:16, 0:16].astype(np.float64)
    scale = np.stack([0.5 * x, 0.5 * y])  # p -> 1.5 p: determinant 2.25
    np.testing.assert_allclose(jacobian_determinant(scale), 2.25)
    assert folding_fraction(scale) == 0.0
    flip = np.stack([-2.0 * x, np.zeros_like(y)])  # x -> -x: determinant -1 everywhere
    assert folding_fraction(flip) == 1.0
    assert folding_fraction(smooth_field()) == 0.0


def test_warp_by_whole_pixels_shifts_the_image():
    image = np.arange(16, dtype=np.float32).reshape(4, 4)
    shift = np.zeros((2, 4, 4))
    shift[0] = 1.0  # sample one column to the right
    out = warp(image, shift)
    np.testing.assert_allclose(out[:, :3], image[:, 1:])
    np.testing.assert_allclose(out[:, 3], 0.0)
    labels = (image > 7).astype(np.uint8)
    assert warp(labels, shift, order="nearest").dtype == np.uint8


def test_warp_matches_grid_sample():
    torch = pytest.importorskip("torch")
    image, _ = smooth_pair(32, 32)
    flow = smooth_field(32, 32)
    height, width = image.shape
    yy, xx = np.mgrid[0:height, 0:width]
    gx = (xx + flow[0] + 0.5) * 2.0 / width - 1.0  # align_corners=False
    gy = (yy + flow[1] + 0.5) * 2.0 / height - 1.0
    grid = torch.from_numpy(np.stack([gx, gy], axis=-1)[None])
    ref = torch.nn.functional.grid_sample(torch.from_numpy(image[None, None]), grid, mode="bilinear",
                                          padding_mode="zeros", align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(warp(image, flow), ref, atol=1e-9)


def test_flow_scores_summary():
    scores = FlowScores()
    assert scores.summary()["epe_mean"] is None
    ref = smooth_field()
    scores.add(ref + 0.1, ref)
    out = scores.summary()
    assert out["epe_mean"] == pytest.approx(np.hypot(0.1, 0.1))
    assert out["folding"] == 0.0 and out["reference_folding"] == 0.0
