"""The imaging area of a scanner screen, found from the frame's structure.

A scanner draws its image (an ultrasound sector or rectangle, an endoscope's circle or octagon) on a dark
background and writes text, rulers, colour bars and markers around it. The image area is the *support* of
the image against that background: every pixel above the background's level, even a far field at grey 1
over a background of 0 (a low-gain OB sector). :func:`find_imaging_area`:

1. reduces the frames to their per-pixel maximum (speckle moves, the area stays) of the colour channels;
2. takes the background as the most common dark level; if there is none, the picture fills the frame;
3. thresholds just above the background, at the lowest level whose largest region is not a ring of noise
   around the whole frame (lossy compression lifts the background a little);
4. opens the support with a square of about 3% of the frame's smaller side, which erases text strokes,
   rulers, calipers and thin strips but not the image area, and keeps the regions of at least
   ``min_fraction`` of the frame that are not bands (more than 4:1);
5. gives back what the opening rounded off (a sector's apex) from the support near the region;
6. names the largest region's shape (sector, rectangle, circle, octagon, full frame, region) and reports
   every region at least half its size as a view (dual and quad screens).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from jetseg.optional import require

Roi = Tuple[int, int, int, int]

#: the shapes :func:`find_imaging_area` names
KINDS = ("sector", "rectangle", "circle", "octagon", "full frame", "region")


@dataclass(frozen=True)
class ImagingArea:
    """What :func:`find_imaging_area` found.

    Attributes:
        box: ``(x, y, w, h)`` of the largest view, in frame pixels.
        kind: one of :data:`KINDS`.
        views: the boxes of all views (the largest included), top to bottom, left to right.
        level: the grey level (0..255) the support was taken above; -1 for a full-frame picture.
    """

    box: Roi
    kind: str
    views: Tuple[Roi, ...]
    level: int

    def describe(self) -> str:
        """One line for the log, e.g. ``sector 585x284 at 168,66`` or ``... (2 views; the largest)``."""
        x, y, w, h = self.box
        more = "" if len(self.views) < 2 else " (%d views; the largest)" % len(self.views)
        return "%s %dx%d at %d,%d%s" % (self.kind, w, h, x, y, more)


class _Region(NamedTuple):
    filled_area: int  # pixels of the region with its holes filled
    box: Roi  # the box reported (a sector's apex given back)
    filled: np.ndarray  # the filled region, cropped to ``bounds``
    bounds: Roi  # the opened region's bounding box


def grey8(image: np.ndarray) -> np.ndarray:
    """The brightest channel of a frame as uint8 (uint16 scaled down, float taken as 0..1)."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(np.asarray(image, dtype=np.float32) * 255.0, 0, 255).astype(np.uint8)
    if image.ndim == 3:
        return image[:, :, :3].max(axis=2) if image.shape[2] >= 3 else image[:, :, 0]
    return image


def find_imaging_area(frames: Sequence[np.ndarray], min_fraction: float = 0.05) -> Optional[ImagingArea]:
    """The imaging area of scanner frames (see the module docstring), or None when there is none.

    Args:
        frames: one or more frames of one shape (``HxW`` or ``HxWxC`` BGR, uint8/uint16/float 0..1).
        min_fraction: a view covers at least this fraction of the frame.

    Returns:
        An :class:`ImagingArea`, or None when no region is large enough (all dark, or only text and bars).
    """
    cv2 = require("cv2", "ROI detection")
    acc = grey8(frames[0])
    for image in frames[1:]:
        acc = np.maximum(acc, grey8(image))
    height, width = acc.shape
    hist = np.bincount(acc.ravel(), minlength=256)
    background = int(np.argmax(hist[:48]))
    if hist[background] < 0.02 * acc.size:  # no dark background at all: the picture fills the frame
        whole = (0, 0, width, height)
        return ImagingArea(whole, "full frame", (whole,), -1)
    size = max(5, int(round(min(height, width) * 0.03)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    for level in sorted({background + step for step in (0, 1, 2, 4, 8, 16)}):
        found = _regions(acc, level, kernel, min_fraction, cv2)
        if found:
            return _area(found, level, height, width, cv2)
    return None


def _regions(acc: np.ndarray, level: int, kernel: np.ndarray, min_fraction: float, cv2: Any) -> List[_Region]:
    """The candidate views above ``level``; empty when there is none or the support is a ring of noise."""
    height, width = acc.shape
    support = (acc > level).astype(np.uint8)
    opened = cv2.morphologyEx(support, cv2.MORPH_OPEN, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=4)
    found = []
    for i in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area < min_fraction * height * width or w > 4 * h or h > 4 * w:
            continue  # too small, or a band (header, footer, strip)
        filled = _fill((labels[y:y + h, x:x + w] == i).astype(np.uint8), cv2)
        if w >= 0.97 * width and h >= 0.97 * height and float(filled.sum()) < 0.85 * w * h:
            return []  # a ring of noise around the frame: the background level is higher
        bounds = (x, y, w, h)
        box = _with_apex(labels == i, support, kernel, bounds, cv2) if _narrows(filled) else bounds
        found.append(_Region(int(filled.sum()), box, filled, bounds))
    return found


def _area(found: List[_Region], level: int, height: int, width: int, cv2: Any) -> ImagingArea:
    """The largest region as the imaging area, with every region at least half its size as a view."""
    found = sorted(found, key=lambda r: -r.filled_area)
    largest = found[0]
    views = [r.box for r in found if r.filled_area >= 0.5 * largest.filled_area]
    ordered = tuple(sorted(views, key=lambda b: (b[1] // max(1, b[3] // 2), b[0])))
    kind = _kind(largest.filled, largest.bounds, height, width, cv2)
    return ImagingArea(largest.box, kind, ordered, level)


def _with_apex(region: np.ndarray, support: np.ndarray, kernel: np.ndarray, bounds: Roi, cv2: Any) -> Roi:
    """The bounding box of the support within one kernel of the opened region: the opening rounds a
    sector's apex and its thin edges off; this gives them back without reaching text further away."""
    height, width = support.shape
    x, y, w, h = bounds
    k = kernel.shape[0]
    x0, y0, x1, y1 = max(0, x - k), max(0, y - k), min(width, x + w + k), min(height, y + h + k)
    near = cv2.dilate(region[y0:y1, x0:x1].astype(np.uint8), kernel) & support[y0:y1, x0:x1]
    ys, xs = np.nonzero(near)
    return x0 + int(xs.min()), y0 + int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def _fill(region: np.ndarray, cv2: Any) -> np.ndarray:
    """The region with its holes filled (its outer contour drawn solid)."""
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = np.zeros_like(region)
    cv2.drawContours(out, contours, -1, 1, -1)
    return out


def _narrows(filled: np.ndarray) -> bool:
    """True when the region is much narrower near its top than near its bottom (a sector's shape)."""
    rows = filled.sum(axis=1)
    h = len(rows)
    return float(rows[int(h * 0.1)]) < 0.75 * float(rows[int(h * 0.9)])


def _kind(filled: np.ndarray, bounds: Roi, height: int, width: int, cv2: Any) -> str:
    """The shape of a filled region: one of :data:`KINDS`."""
    x, y, w, h = bounds
    fill = float(filled.sum()) / (w * h)
    if w >= 0.97 * width and h >= 0.97 * height and fill >= 0.9:
        return "full frame"
    if fill >= 0.9:
        return "rectangle"
    rows = filled.sum(axis=1)
    if _narrows(filled) and float(rows[h // 2]) < 0.95 * float(rows[int(h * 0.9)]):
        return "sector"
    contours, _ = cv2.findContours(filled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=cv2.contourArea)
    if _is_circle(contour[:, 0, :].astype(np.float64), bounds, height, width):
        return "circle"
    corners = cv2.approxPolyDP(contour, 0.02 * cv2.arcLength(contour, True), True)
    if 7 <= len(corners) <= 9 and fill >= 0.7:
        return "octagon"
    return "sector" if _narrows(filled) else "region"


def _is_circle(points: np.ndarray, bounds: Roi, height: int, width: int) -> bool:
    """True when the contour points off the frame's edges (a circle larger than the frame is cut there) fit
    one circle within 2% of its radius (median) and 5% (90th percentile)."""
    x, y = bounds[0], bounds[1]
    gx, gy = points[:, 0] + x, points[:, 1] + y
    inside = points[(gx > 1) & (gx < width - 2) & (gy > 1) & (gy < height - 2)]
    if len(inside) <= 20:
        return False
    design = np.c_[2 * inside[:, 0], 2 * inside[:, 1], np.ones(len(inside))]
    cx, cy, c0 = np.linalg.lstsq(design, (inside ** 2).sum(axis=1), rcond=None)[0]
    radius = float(np.sqrt(c0 + cx * cx + cy * cy))
    residual = np.abs(np.hypot(inside[:, 0] - cx, inside[:, 1] - cy) - radius)
    return bool(np.median(residual) < 0.02 * radius and np.percentile(residual, 90) < 0.05 * radius)
