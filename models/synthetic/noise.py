"""Noise added to synthetic frames, for noisy/clean pairs (``synthetic://ultrasound?noise=speckle``).

Names (docs/tasks.md, Clean targets), each for the scene it imitates, applied inside the imaging area only
(the ultrasound sector, the CT reconstruction circle; burned-in text and the black surround stay clean):

- ``speckle`` (ultrasound): multiplicative speckle, gamma-distributed with mean 1 (2 looks), correlated
  more laterally than axially like the generator's own speckle; the denoiser's job is despeckling.
- ``lowgain`` (ultrasound): the receive gain turned down (x 0.55) with the electronic noise that then shows:
  additive, slightly correlated Gaussian noise (sigma 0.035 of full scale).
- ``lowdose`` (ct): low-dose-like CT noise in the displayed image: Gaussian noise with a band-pass noise
  power spectrum (the fine-grained texture of filtered back-projection; sigma 0.05 of the window, about 20 HU
  at width 400) plus faint streaks along a few directions. An image-domain imitation: no projections are
  simulated.

Several names join with a comma (``noise=speckle,lowgain``: speckle, then low gain). ``level`` scales every
strength (1.0 by default). Noise is a pure function of ``(seed, index)``, like the frames.
"""
from __future__ import annotations

import zlib
from typing import Dict, Tuple

import numpy as np

from jetseg.errors import JetsegError
from jetseg.models.synthetic.common import cv2, rng

#: noise name -> the synthetic kind it is made for
NOISES: Dict[str, str] = {"speckle": "ultrasound", "lowgain": "ultrasound", "lowdose": "ct"}


def parse_noise(text: str, kind: str) -> Tuple[str, ...]:
    """``"speckle,lowgain"`` -> ``("speckle", "lowgain")``, checked against the scene ``kind``.

    Raises:
        JetsegError: an unknown name, or one made for another kind of scene.
    """
    names = tuple(n.strip() for n in str(text).split(",") if n.strip())
    usable = sorted(n for n, k in NOISES.items() if k == kind)
    if not names:
        raise JetsegError("noise=%r is empty; expected %s" % (text, " or ".join(usable) or "no noise for " + kind))
    for name in names:
        if name not in NOISES:
            raise JetsegError("noise %r is unknown; expected %s (several joined by a comma)"
                              % (name, ", ".join(sorted(NOISES))))
        if NOISES[name] != kind:
            raise JetsegError("noise %r is made for synthetic://%s, not synthetic://%s; %s"
                              % (name, NOISES[name], kind, "use noise=" + " or noise=".join(usable) if usable
                                 else "synthetic://%s has no noise option" % kind))
    return names


def imaging_area(kind: str, size: Tuple[int, int]) -> np.ndarray:
    """``HxW bool`` where the scanner shows an image (sector, reconstruction circle)."""
    if kind == "ultrasound":
        from jetseg.models.synthetic.ultrasound import sector_mask

        return sector_mask(size)
    from jetseg.models.synthetic.ct import circle_mask

    return circle_mask(size)


def _correlated(gen: np.random.Generator, shape: Tuple[int, int], sx: float, sy: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian noise blurred by ``(sx, sy)`` pixels."""
    noise = cv2().GaussianBlur(gen.standard_normal(shape).astype(np.float32), (0, 0), sigmaX=sx, sigmaY=sy)
    return noise / max(float(noise.std()), 1e-6)


def speckle(grey: np.ndarray, gen: np.random.Generator, level: float) -> np.ndarray:
    looks = 2.0
    field = gen.gamma(looks, 1.0 / looks, grey.shape).astype(np.float32)
    field = cv2().GaussianBlur(field, (0, 0), sigmaX=1.2, sigmaY=0.6)
    field /= max(float(field.mean()), 1e-6)
    return grey * np.maximum(0.0, 1.0 + 1.6 * level * (field - 1.0))


def lowgain(grey: np.ndarray, gen: np.random.Generator, level: float) -> np.ndarray:
    gain = max(0.05, 1.0 - 0.45 * level)
    return grey * gain + 0.035 * level * _correlated(gen, grey.shape, 0.7, 0.5)


def lowdose(grey: np.ndarray, gen: np.random.Generator, level: float) -> np.ndarray:
    white = gen.standard_normal(grey.shape).astype(np.float32)
    band = cv2().GaussianBlur(white, (0, 0), 0.8) - cv2().GaussianBlur(white, (0, 0), 2.5)
    band /= max(float(band.std()), 1e-6)
    h, w = grey.shape
    streaks = np.zeros_like(grey)
    for _ in range(3):  # a few directions of photon-starved views
        rows = np.repeat(gen.standard_normal((h, 1)).astype(np.float32), w, axis=1)
        turn = cv2().getRotationMatrix2D((w / 2.0, h / 2.0), float(gen.uniform(0, 180)), 1.0)
        streaks += cv2().warpAffine(rows, turn, (w, h), flags=cv2().INTER_LINEAR, borderMode=cv2().BORDER_REFLECT)
    return grey + level * (0.05 * band + 0.008 * streaks)


_APPLY = {"speckle": speckle, "lowgain": lowgain, "lowdose": lowdose}


def add_noise(image: np.ndarray, kind: str, names: Tuple[str, ...], index: int, seed: int = 0,
              level: float = 1.0) -> np.ndarray:
    """The noisy version of a synthetic frame ``image`` (``HxWx3 uint8`` BGR, grey replicated): the noises
    ``names`` applied in order inside the imaging area, deterministic from ``(seed, index)``."""
    grey = image[:, :, 0].astype(np.float32) / np.float32(255.0)
    noisy = grey
    for name in names:
        gen = rng(seed, index, 11, zlib.crc32(name.encode("ascii")))
        noisy = _APPLY[name](noisy, gen, float(level))
    area = imaging_area(kind, grey.shape)
    out = image[:, :, 0].copy()
    out[area] = np.clip(noisy[area] * np.float32(255.0) + np.float32(0.5), 0, 255).astype(np.uint8)
    return cv2().cvtColor(out, cv2().COLOR_GRAY2BGR)


__all__ = ["NOISES", "add_noise", "imaging_area", "parse_noise"]
