"""PSNR and SSIM: hand-worked values and a reference value computed with scikit-image."""
from __future__ import annotations

import math

import numpy as np
import pytest

from jetseg.imagescores import PSNR_CAP, ImageScores, gaussian_window, psnr, ssim
from tests.fixtures.images import smooth_pair

#: skimage.metrics.structural_similarity(clean, noisy, data_range=1.0, gaussian_weights=True, sigma=1.5,
#: use_sample_covariance=False) and peak_signal_noise_ratio(clean, noisy, data_range=1.0) on
#: tests.fixtures.images.smooth_pair(), scikit-image 0.26 (computed once; scikit-image is not a dependency).
SKIMAGE_SSIM = 0.6172220186586048
SKIMAGE_PSNR = 23.805736383053144


def test_psnr_by_hand():
    a = np.zeros((4, 4))
    b = np.full((4, 4), 0.1)  # MSE 0.01 -> 20 dB on a range of 1
    assert psnr(a, b) == pytest.approx(20.0)
    assert psnr(a * 255, b * 255, data_range=255.0) == pytest.approx(20.0)
    assert psnr(a, a) == math.inf


def test_ssim_and_psnr_match_scikit_image():
    clean, noisy = smooth_pair()
    assert ssim(clean, noisy) == pytest.approx(SKIMAGE_SSIM, abs=1e-9)
    assert psnr(clean, noisy) == pytest.approx(SKIMAGE_PSNR, abs=1e-9)


def test_ssim_properties():
    clean, noisy = smooth_pair()
    assert ssim(clean, clean) == pytest.approx(1.0)
    assert ssim(clean, noisy) == pytest.approx(ssim(noisy, clean))
    stack = np.stack([clean, clean]), np.stack([noisy, clean])  # planes averaged
    assert ssim(*stack) == pytest.approx((ssim(clean, noisy) + 1.0) / 2)
    assert gaussian_window().shape == (11,) and gaussian_window().sum() == pytest.approx(1.0)


def test_bad_inputs_say_what_was_received():
    with pytest.raises(ValueError, match=r"images differ in shape: \(4, 4\) vs \(4, 5\)"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"SSIM needs planes of at least 11x11 pixels, got \(8, 8\)"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="data_range must be positive, got 0"):
        psnr(np.zeros((4, 4)), np.ones((4, 4)), data_range=0)


def test_image_scores_summary_caps_identical_frames():
    clean, noisy = smooth_pair()
    scores = ImageScores()
    assert scores.summary()["psnr"] is None
    scores.add(clean, clean)
    scores.add(noisy, clean)
    out = scores.summary()
    assert out["frames"] == 2
    assert out["psnr"] == pytest.approx((PSNR_CAP + SKIMAGE_PSNR) / 2)
    assert out["psnr_min"] == pytest.approx(SKIMAGE_PSNR)
    assert out["ssim_min"] == pytest.approx(SKIMAGE_SSIM)
