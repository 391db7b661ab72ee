"""Displacement fields: units, the warp, and the scores of the registration task (docs/tasks.md).

A field is ``(2, H, W)`` (or ``(N, 2, H, W)``) float: channel 0 the displacement along x (columns), channel 1
along y (rows). The warped moving image samples the moving image at ``p + u(p)`` for every output pixel ``p``
(backward warping, as grid_sample does). Fields in ``normalized`` units are grid_sample's [-1, 1]
coordinates with align_corners=False: one unit is half the image's width (x) or height (y).

- End-point error (EPE): ``|u - u_ref|`` per pixel, in pixels; its mean and 95th percentile.
- Jacobian determinant of ``p -> p + u(p)`` (central differences, ``np.gradient``): a value <= 0 is a fold
  (the map is not locally invertible there); the *folding fraction* is the share of such pixels.
- Dice of labels warped by two fields compares what the fields do to anatomy, not the fields themselves.

numpy only.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np

__all__ = ["to_pixels", "endpoint_error", "jacobian_determinant", "folding_fraction", "warp", "smooth_field",
           "FlowScores"]

UNITS = ("pixels", "normalized")


def _field(flow: Any) -> np.ndarray:
    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim == 4 and flow.shape[0] == 1:
        flow = flow[0]
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError("a displacement field must be (2, H, W) or (1, 2, H, W) (x then y), got shape %s"
                         % (flow.shape,))
    return flow


def to_pixels(flow: Any, units: str) -> np.ndarray:
    """A field ``(2, H, W)`` (or ``(1, 2, H, W)``) in ``units`` (pixels or normalized) as pixels, ``(2, H, W)``."""
    flow = _field(flow)
    if units == "pixels":
        return flow
    if units != "normalized":
        raise ValueError("field units %r are unknown; expected one of %s" % (units, ", ".join(UNITS)))
    height, width = flow.shape[1:]
    return flow * np.array([width / 2.0, height / 2.0]).reshape(2, 1, 1)


def endpoint_error(flow: Any, ref: Any) -> np.ndarray:
    """Per-pixel end-point error ``|flow - ref|`` ``(H, W)`` of two pixel fields."""
    flow, ref = _field(flow), _field(ref)
    if flow.shape != ref.shape:
        raise ValueError("fields differ in shape: %s vs %s" % (flow.shape, ref.shape))
    return np.sqrt(((flow - ref) ** 2).sum(axis=0))


def jacobian_determinant(flow: Any) -> np.ndarray:
    """Determinant ``(H, W)`` of the Jacobian of ``p -> p + u(p)`` for a pixel field ``u``."""
    u = _field(flow)
    dux_dy, dux_dx = np.gradient(u[0])
    duy_dy, duy_dx = np.gradient(u[1])
    return (1.0 + dux_dx) * (1.0 + duy_dy) - dux_dy * duy_dx


def folding_fraction(flow: Any) -> float:
    """Share of pixels whose Jacobian determinant is <= 0 (folds) for a pixel field."""
    return float(np.mean(jacobian_determinant(flow) <= 0.0))


def warp(image: Any, flow: Any, order: str = "linear") -> np.ndarray:
    """The image sampled at ``p + u(p)``: ``linear`` (bilinear, images) or ``nearest`` (labels); zeros outside.

    Args:
        image: ``(H, W)`` or ``(C, H, W)``.
        flow: a pixel field ``(2, H, W)`` of the same size.
    """
    img = np.asarray(image)
    u = _field(flow)
    planes = img[None] if img.ndim == 2 else img
    if planes.ndim != 3 or planes.shape[1:] != u.shape[1:]:
        raise ValueError("image %s and field %s differ in size; expected (H, W) or (C, H, W) of the field's H, W"
                         % (img.shape, u.shape))
    height, width = u.shape[1:]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    sx, sy = xx + u[0], yy + u[1]
    if order == "nearest":
        ix, iy = np.floor(sx + 0.5).astype(np.int64), np.floor(sy + 0.5).astype(np.int64)
        inside = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
        out = np.zeros_like(planes)
        out[:, inside] = planes[:, iy[inside], ix[inside]]
    elif order == "linear":
        x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
        fx, fy = sx - x0, sy - y0
        flat = planes.reshape(planes.shape[0], -1)
        acc = np.zeros(flat.shape, dtype=np.float64)
        for dy, dx, wgt in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
            cx, cy = x0 + dx, y0 + dy
            inside = (cx >= 0) & (cx < width) & (cy >= 0) & (cy < height)
            # a gather of clipped indices with zero weight outside: 4x faster than boolean indexing
            where = (np.clip(cy, 0, height - 1) * width + np.clip(cx, 0, width - 1)).ravel()
            acc += np.where(inside, wgt, 0.0).ravel() * np.take(flat, where, axis=1)
        out = acc.reshape(planes.shape).astype(planes.dtype if planes.dtype.kind == "f" else np.float32)
    else:
        raise ValueError("warp order %r is unknown; expected linear or nearest" % (order,))
    return out[0] if img.ndim == 2 else out


def smooth_field(seed: int, size: Tuple[int, int], amplitude: float = 4.0, waves: int = 4) -> np.ndarray:
    """A random smooth pixel field ``(2, H, W) float32``, a pure function of ``seed``: per axis a shift of up to
    ``amplitude / 2`` plus ``waves`` plane sine waves of at most one cycle across the image with normal
    weights, scaled so each axis's wave part has a standard deviation near ``amplitude / 2`` pixels (its
    gradients stay well below 1, so the map does not fold). The synthetic deformations of the registration
    task (docs/tasks.md): training pairs, calibration pairs and the bench's pairs all come from here."""
    rng = np.random.default_rng([abs(int(seed)), 25])
    height, width = int(size[0]), int(size[1])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    xx, yy = xx / width, yy / height
    out = np.zeros((2, height, width), np.float64)
    for axis in range(2):
        for _ in range(waves):
            fx, fy = rng.uniform(-1.0, 1.0, 2)
            out[axis] += rng.normal() * np.sin(2 * np.pi * (fx * xx + fy * yy) + rng.uniform(0, 2 * np.pi))
    out *= amplitude / np.sqrt(2.0 * max(1, waves))
    out += rng.uniform(-amplitude / 2, amplitude / 2, size=(2, 1, 1))
    return out.astype(np.float32)


class FlowScores:
    """Accumulates EPE of fields against reference fields and the folding of both (pixel fields)."""

    def __init__(self) -> None:
        self._epe: List[np.ndarray] = []
        self._fold: List[Tuple[float, float]] = []

    @property
    def frames(self) -> int:
        return len(self._epe)

    def add(self, flow: Any, ref: Any) -> Dict[str, float]:
        """Score one field against its reference; return that frame's ``epe_mean``, ``epe_p95``, ``folding``."""
        epe = endpoint_error(flow, ref)
        self._epe.append(epe.ravel())
        self._fold.append((folding_fraction(flow), folding_fraction(ref)))
        return {"epe_mean": float(epe.mean()), "epe_p95": float(np.percentile(epe, 95)),
                "folding": self._fold[-1][0]}

    def summary(self) -> Dict[str, Any]:
        """``frames``, ``epe_mean`` and ``epe_p95`` (pixels, over all pixels of all frames), ``folding`` and
        ``reference_folding`` (mean fractions); None for the scores when no frame was added."""
        if not self._epe:
            return {"frames": 0, "epe_mean": None, "epe_p95": None, "folding": None, "reference_folding": None}
        epe = np.concatenate(self._epe)
        fold = np.asarray(self._fold)
        return {"frames": self.frames, "epe_mean": float(epe.mean()), "epe_p95": float(np.percentile(epe, 95)),
                "folding": float(fold[:, 0].mean()), "reference_folding": float(fold[:, 1].mean())}
