"""Shared pieces of the synthetic scan generators: seeded randomness, cached textures, smooth motion.

Everything expensive (noise textures, geometry maps) is computed once per ``(seed, size)`` and cached;
a frame then costs slicing, a few element-wise operations and the targets drawn in their bounding boxes.
Scenes change every :data:`CLIP_LENGTH` frames (a new "view", as when the sonographer or endoscopist moves
on); within a clip everything moves smoothly, so a stream looks like a cine loop.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Callable, Dict, Hashable, List, Tuple

import numpy as np

from jetseg.optional import require

#: frames per scene; within a scene motion is smooth, a new scene starts every CLIP_LENGTH frames
CLIP_LENGTH = 120

_cv2: Any = None
_CACHE: "OrderedDict[Hashable, Any]" = OrderedDict()
_CACHE_SIZE = 8


def cv2() -> Any:
    global _cv2
    if _cv2 is None:
        _cv2 = require("cv2", "the synthetic scan generators")
    return _cv2


def cached(key: Hashable, make: Callable[[], Any]) -> Any:
    """A small LRU cache for per-(kind, seed, size) precomputed data."""
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = make()
    _CACHE[key] = value
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return value


def rng(*keys: int) -> np.random.Generator:
    """A generator determined by integer keys (seed, clip, purpose...)."""
    return np.random.default_rng([abs(int(k)) for k in keys])


def smooth_noise(gen: np.random.Generator, shape: Tuple[int, int], cell: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a coarse random grid upsampled with cubic interpolation."""
    h, w = shape
    coarse = gen.standard_normal((max(2, h // cell + 2), max(2, w // cell + 2))).astype(np.float32)
    big = cv2().resize(coarse, (w + 2 * cell, h + 2 * cell), interpolation=cv2().INTER_CUBIC)
    return big[cell:cell + h, cell:cell + w] / 1.5


class Path2D:
    """A smooth closed path: the sum of a few sinusoids per axis with random phases (one clip)."""

    def __init__(self, gen: np.random.Generator, amplitude: Tuple[float, float], periods: int = 3) -> None:
        self.amp = amplitude
        self.freq = gen.uniform(0.5, 1.6, size=(2, periods))
        self.phase = gen.uniform(0.0, 2 * math.pi, size=(2, periods))
        self.weight = gen.uniform(0.3, 1.0, size=(2, periods))
        self.weight /= self.weight.sum(axis=1, keepdims=True)

    def at(self, t: float) -> Tuple[float, float]:
        """Offset at clip time ``t`` in [0, 1): ``(dx, dy)``."""
        out = []
        for axis in range(2):
            s = float(np.sum(self.weight[axis] * np.sin(2 * math.pi * self.freq[axis] * t + self.phase[axis])))
            out.append(self.amp[axis] * s)
        return out[0], out[1]


def blob_field(shape: Tuple[int, int], center: Tuple[float, float], axes: Tuple[float, float], angle: float,
               harmonics: List[Tuple[float, float]], edge: float) -> Tuple[Tuple[int, int, int, int], np.ndarray]:
    """A lobulated ellipse drawn in its bounding box.

    The boundary radius (relative to the ellipse) is ``1 + sum(c_k cos(k phi + p_k))`` for k = 2, 3, ...;
    small ``c_k`` give plausible, smooth lesion and polyp outlines.

    Returns:
        ``(x0, y0, x1, y1)`` clipped to the frame and the inside weight in that box (float32, 0 outside,
        1 inside, a soft edge of ``edge`` pixels; the label is ``weight > 0.5``).
    """
    h, w = shape
    cx, cy = center
    a, b = axes
    grow = 1.0 + sum(abs(c) for c, _ in harmonics) + 0.1
    r = max(a, b) * grow + edge
    x0, x1 = max(0, int(cx - r)), min(w, int(cx + r) + 2)
    y0, y1 = max(0, int(cy - r)), min(h, int(cy + r) + 2)
    if x1 <= x0 or y1 <= y0:
        return (0, 0, 0, 0), np.zeros((0, 0), np.float32)
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] - cy
    xs = np.arange(x0, x1, dtype=np.float32)[None, :] - cx
    ca, sa = math.cos(angle), math.sin(angle)
    u = (xs * ca + ys * sa) / a
    v = (-xs * sa + ys * ca) / b
    rho = np.sqrt(u * u + v * v)
    phi = np.arctan2(v, u)
    bound = np.ones_like(rho)
    for k, (c, p) in enumerate(harmonics, start=2):
        bound += c * np.cos(k * phi + p)
    scale = min(a, b)
    inside = np.clip((bound - rho) * scale / max(edge, 1e-3) + 0.5, 0.0, 1.0)
    return (x0, y0, x1, y1), inside.astype(np.float32)


def window(texture: np.ndarray, shape: Tuple[int, int], offset: Tuple[float, float]) -> np.ndarray:
    """An ``shape`` view into a larger texture, centred and shifted by ``offset`` (integer pixels)."""
    th, tw = texture.shape[:2]
    h, w = shape
    y = int(round((th - h) / 2 + offset[1]))
    x = int(round((tw - w) / 2 + offset[0]))
    y = min(max(y, 0), th - h)
    x = min(max(x, 0), tw - w)
    return texture[y:y + h, x:x + w]


def params_key(kind: str, seed: int, size: Tuple[int, int]) -> Tuple[str, int, int, int]:
    return (kind, int(seed), int(size[0]), int(size[1]))


Cache = Dict[str, Any]
