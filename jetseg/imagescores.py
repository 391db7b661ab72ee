"""Image-to-image accuracy: PSNR and SSIM, the scores of the enhancement task (docs/tasks.md).

Images are ``HxW`` planes or stacks of them (``CxHxW``, ``NxCxHxW``: the last two axes are the plane), float,
compared on a known ``data_range`` (1.0 for :func:`jetseg.tasks.enhanced_images` images).

- PSNR ``10 log10(data_range**2 / MSE)`` in dB, over all pixels; identical images give ``inf``.
- SSIM (Wang et al. 2004) with the standard Gaussian window (sigma 1.5, 11x11), ``K1 = 0.01``,
  ``K2 = 0.03`` and population (co)variances, averaged over the pixels whose window lies inside the image
  and over the planes: the same number as scikit-image's ``structural_similarity(a, b, data_range=R,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` (tests/core/test_imagescores.py checks
  a reference value computed with it). numpy only.

    scores = ImageScores()
    for out, ref in pairs:
        scores.add(out, ref)
    scores.summary()  # {"frames": n, "psnr": mean dB, "psnr_min": .., "ssim": mean, "ssim_min": ..}
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Tuple

import numpy as np

__all__ = ["psnr", "ssim", "gaussian_window", "ImageScores"]

#: SSIM's Gaussian window: sigma and radius (scikit-image/scipy: int(3.5 * sigma + 0.5) = 5, an 11x11 window).
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5
#: PSNR reported for identical images in summaries (JSON has no infinity): the cap of the mean.
PSNR_CAP = 100.0


def _pair(a: Any, b: Any) -> Tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError("images differ in shape: %s vs %s; compare images of the same size" % (a.shape, b.shape))
    if a.ndim < 2:
        raise ValueError("images must be HxW planes (or stacks of them), got shape %s" % (a.shape,))
    return a, b


def psnr(a: Any, b: Any, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio of ``a`` against ``b`` in dB (``inf`` when they are equal)."""
    a, b = _pair(a, b)
    if not data_range > 0:
        raise ValueError("data_range must be positive, got %r" % (data_range,))
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(data_range ** 2 / mse)


def gaussian_window(sigma: float = SSIM_SIGMA, radius: int = SSIM_RADIUS) -> np.ndarray:
    """The normalised 1-D Gaussian ``(2 * radius + 1,)`` that SSIM filters rows and columns with."""
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def _filter_valid(plane: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Separable correlation of an ``HxW`` plane with ``w`` along both axes, 'valid' part only."""
    n = w.size
    rows = sum(w[i] * plane[i:plane.shape[0] - n + 1 + i, :] for i in range(n))
    return sum(w[i] * rows[:, i:rows.shape[1] - n + 1 + i] for i in range(n))


def ssim(a: Any, b: Any, data_range: float = 1.0) -> float:
    """Mean structural similarity of ``a`` and ``b`` (1.0 for identical images; see the module docstring).

    Raises:
        ValueError: shapes differ, or a plane is smaller than the 11x11 window.
    """
    a, b = _pair(a, b)
    if not data_range > 0:
        raise ValueError("data_range must be positive, got %r" % (data_range,))
    w = gaussian_window()
    if min(a.shape[-2:]) < w.size:
        raise ValueError("SSIM needs planes of at least %dx%d pixels, got %s" % (w.size, w.size, a.shape[-2:]))
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for pa, pb in zip(a.reshape((-1,) + a.shape[-2:]), b.reshape((-1,) + b.shape[-2:])):
        mu_a, mu_b = _filter_valid(pa, w), _filter_valid(pb, w)
        var_a = _filter_valid(pa * pa, w) - mu_a ** 2
        var_b = _filter_valid(pb * pb, w) - mu_b ** 2
        cov = _filter_valid(pa * pb, w) - mu_a * mu_b
        num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
        den = (mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)
        values.append(float(np.mean(num / den)))
    return float(np.mean(values))


class ImageScores:
    """Accumulates PSNR and SSIM of output images against reference images (FP32 outputs or clean targets).

    Args:
        data_range: the images' value range (1.0 for :func:`~jetseg.tasks.enhanced_images` images).
    """

    def __init__(self, data_range: float = 1.0) -> None:
        self.data_range = float(data_range)
        self._psnr: List[float] = []
        self._ssim: List[float] = []

    @property
    def frames(self) -> int:
        return len(self._psnr)

    def add(self, image: Any, ref: Any) -> Dict[str, float]:
        """Score one image against its reference; return ``{"psnr", "ssim"}`` of that frame."""
        frame = {"psnr": psnr(image, ref, self.data_range), "ssim": ssim(image, ref, self.data_range)}
        self._psnr.append(frame["psnr"])
        self._ssim.append(frame["ssim"])
        return frame

    def summary(self) -> Dict[str, Any]:
        """``frames``, ``psnr`` (mean dB, each frame capped at :data:`PSNR_CAP`), ``psnr_min``, ``ssim``
        (mean), ``ssim_min``; None for the scores when no frame was added."""
        if not self._psnr:
            return {"frames": 0, "psnr": None, "psnr_min": None, "ssim": None, "ssim_min": None}
        capped = [min(v, PSNR_CAP) for v in self._psnr]
        return {"frames": self.frames, "psnr": float(np.mean(capped)), "psnr_min": float(min(capped)),
                "ssim": float(np.mean(self._ssim)), "ssim_min": float(min(self._ssim))}
