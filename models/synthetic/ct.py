"""Synthetic axial CT slices (abdomen-like), displayed in a soft-tissue window: the images that low-dose
noise (:mod:`.noise`, ``noise=lowdose``) is added to for denoising.

A slice is built in Hounsfield units and windowed (level 40, width 400) to grey: air outside an elliptic
body, a fat rim, soft tissue, a liver-like organ, two kidneys, the spine (bone) and bowel gas, with mild
tissue texture; hypodense lesions are the target class. The reconstruction circle is the field of view
(outside it the scanner shows black). Per scene the HU map is cached; a frame shifts it (breathing moves the
body a little) and draws the lesions. The grey image is replicated to BGR like a viewer's video output.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Tuple

import numpy as np

from jetseg.models.synthetic.common import (
    CLIP_LENGTH,
    Path2D,
    blob_field,
    cached,
    cv2,
    rng,
    smooth_noise,
    window,
)

CLASSES = ["background", "lesion"]
LEVEL, WIDTH = 40.0, 400.0  # soft-tissue window, HU
_MARGIN = 0.06  # map margin for motion, as a fraction of the frame height


def field_of_view(size: Tuple[int, int]) -> Tuple[int, int, int, int]:
    """Bounding box ``(x, y, w, h)`` of the reconstruction circle (centred, diameter 0.96 * min(h, w))."""
    h, w = size
    d = int(0.96 * min(h, w))
    return (w - d) // 2, (h - d) // 2, d, d


def circle_mask(size: Tuple[int, int]) -> np.ndarray:
    """``HxW bool``: True inside the reconstruction circle."""
    h, w = int(size[0]), int(size[1])

    def make() -> np.ndarray:
        x, y, d, _ = field_of_view((h, w))
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        r = d / 2.0
        return ((xs - (x + r - 0.5)) ** 2 + (ys - (y + r - 0.5)) ** 2) <= r * r

    return cached(("ct-circle", h, w), make)


def _ellipse(shape: Tuple[int, int], center: Tuple[float, float], axes: Tuple[float, float],
             angle: float = 0.0) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2().ellipse(mask, (int(center[0]), int(center[1])), (max(1, int(axes[0])), max(1, int(axes[1]))),
                  math.degrees(angle), 0, 360, 1, -1, cv2().LINE_AA)
    return mask.astype(bool)


def _clip_scene(seed: int, clip: int, size: Tuple[int, int]) -> Dict[str, Any]:
    """Per-scene HU map (body, organs, bone, texture) with a motion margin, and the lesions' parameters."""
    h, w = size
    m = int(_MARGIN * h)
    th, tw = h + 2 * m, w + 2 * m
    gen = rng(seed, clip, 3)
    s = min(h, w)
    cx, cy = tw / 2.0 + gen.uniform(-0.02, 0.02) * s, th / 2.0 + gen.uniform(-0.02, 0.02) * s
    bx, by = gen.uniform(0.40, 0.46) * s, gen.uniform(0.29, 0.35) * s
    hu = np.full((th, tw), -1000.0, np.float32)
    hu[_ellipse((th, tw), (cx, cy), (bx, by))] = -100.0  # subcutaneous fat
    fat = gen.uniform(0.06, 0.10) * s
    hu[_ellipse((th, tw), (cx, cy), (bx - fat, by - fat))] = 45.0  # muscle, soft tissue
    hu[_ellipse((th, tw), (cx, cy), (bx - fat - 0.02 * s, by - fat - 0.02 * s))] = 30.0  # abdominal cavity
    liver = (cx - gen.uniform(0.12, 0.18) * s, cy - gen.uniform(0.0, 0.06) * s)
    hu[_ellipse((th, tw), liver, (gen.uniform(0.17, 0.22) * s, gen.uniform(0.13, 0.17) * s),
                gen.uniform(-0.4, 0.4))] = gen.uniform(55.0, 70.0)
    for side in (-1, 1):  # kidneys, cortex brighter than medulla
        kc = (cx + side * gen.uniform(0.15, 0.19) * s, cy + gen.uniform(0.08, 0.12) * s)
        hu[_ellipse((th, tw), kc, (0.05 * s, 0.075 * s), side * 0.4)] = 150.0
        hu[_ellipse((th, tw), kc, (0.025 * s, 0.045 * s), side * 0.4)] = 35.0
    spine = (cx, cy + by - fat - 0.10 * s)
    hu[_ellipse((th, tw), spine, (0.06 * s, 0.055 * s))] = 700.0
    hu[_ellipse((th, tw), spine, (0.035 * s, 0.03 * s))] = 250.0  # cancellous bone
    for _ in range(int(gen.integers(2, 5))):  # bowel gas
        gc = (cx + gen.uniform(0.0, 0.2) * s, cy + gen.uniform(-0.15, 0.05) * s)
        hu[_ellipse((th, tw), gc, (gen.uniform(0.01, 0.03) * s, gen.uniform(0.01, 0.025) * s))] = -900.0
    hu = cv2().GaussianBlur(hu, (0, 0), 0.8)
    body = hu > -500.0
    hu += 8.0 * smooth_noise(gen, (th, tw), max(4, s // 40)) * body  # tissue heterogeneity
    lesions = []
    for _ in range(1 + int(gen.random() < 0.4)):
        a = gen.uniform(0.03, 0.06) * s
        lesions.append({"center": (liver[0] - m + gen.uniform(-0.08, 0.08) * s,
                                   liver[1] - m + gen.uniform(-0.06, 0.06) * s),
                        "axes": (a, a * gen.uniform(0.7, 1.0)), "angle": gen.uniform(-0.6, 0.6),
                        "harmonics": [(gen.uniform(-0.06, 0.06), gen.uniform(0, 6.28)) for _ in range(3)],
                        "hu": gen.uniform(5.0, 25.0), "path": Path2D(gen, (0.004 * s, 0.004 * s))})
    return {"hu": hu, "breath": Path2D(gen, (0.004 * s, 0.012 * s)), "lesions": lesions}


def make_frame(index: int, seed: int = 0, size: Tuple[int, int] = (480, 640)) -> Tuple[np.ndarray, np.ndarray]:
    """One CT slice and its mask: ``(HxWx3 uint8 BGR, HxW uint8)`` with classes background, lesion."""
    h, w = int(size[0]), int(size[1])
    clip, step = divmod(int(index), CLIP_LENGTH)
    scene = cached(("ct-clip", int(seed), clip, h, w), lambda: _clip_scene(seed, clip, (h, w)))
    t = step / float(CLIP_LENGTH)
    off = scene["breath"].at(t)
    hu = window(scene["hu"], (h, w), off).copy()
    mask = np.zeros((h, w), np.uint8)
    for les in scene["lesions"]:
        ldx, ldy = les["path"].at(t)
        center = (les["center"][0] - off[0] + ldx, les["center"][1] - off[1] + ldy)
        (x0, y0, x1, y1), inside = blob_field((h, w), center, les["axes"], les["angle"], les["harmonics"], edge=1.5)
        if inside.size == 0:
            continue
        box = hu[y0:y1, x0:x1]
        box += (les["hu"] - box) * inside * (box > -500.0)
        mask[y0:y1, x0:x1][(inside > 0.5) & (box > -500.0)] = 1
    grey = np.clip((hu - (LEVEL - WIDTH / 2.0)) / WIDTH, 0.0, 1.0)
    grey = (grey * 255.0 + 0.5).astype(np.uint8)
    inside_fov = circle_mask((h, w))
    grey[~inside_fov] = 0
    mask[~inside_fov] = 0
    return cv2().cvtColor(grey, cv2().COLOR_GRAY2BGR), mask


__all__: List[str] = ["CLASSES", "circle_mask", "field_of_view", "make_frame"]
