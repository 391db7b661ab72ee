"""DICOM ultrasound regions (SequenceOfUltrasoundRegions), validated against the pixel array.

A region is a rectangle ``RegionLocationMinX0..MaxX1`` x ``MinY0..MaxY1`` (inclusive, frame pixels) with
its physical size per pixel (``PhysicalDeltaX/Y``, in cm when ``PhysicalUnitsX/YDirection`` is 3). Exports
that were downsampled after the scanner tagged the frame keep the tags of the larger frame, so the regions
lie (partly) outside the pixels. :func:`read_regions` then looks for the tagged frame size: the smallest
scanner screen size of :data:`SCREEN_SIZES` with the pixels' aspect ratio (within 1%) that holds every
region. If there is one, the regions are scaled by ``Columns / tagged width`` (and the physical deltas
divided by the same factor); if not, the regions are ignored (no ROI, no pixel spacing from them).
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

#: Scanner screen sizes (width, height) that an export may have been downsampled from.
SCREEN_SIZES: Tuple[Tuple[int, int], ...] = (
    (640, 480), (720, 480), (720, 576), (768, 576), (800, 600), (1024, 768), (1280, 720), (1280, 960),
    (1280, 1024), (1440, 1080), (1600, 1200), (1920, 1080), (1920, 1200), (2560, 1440), (3840, 2160))

#: RegionSpatialFormat 1: a 2D tissue or flow image (the imaging area); 2 M-mode, 3 spectral, 4 waveform
SPATIAL_2D = 1
CM = 3  # PhysicalUnitsX/YDirection: 3 = cm (DICOM PS3.3 C.8.5.5.1.15)


class Region:
    """One ultrasound region in pixel coordinates of the pixel array: ``(x, y, w, h)`` and mm per pixel."""

    def __init__(self, box: Tuple[int, int, int, int], spatial_format: int,
                 spacing_mm: Optional[List[float]]) -> None:
        self.box = box
        self.spatial_format = spatial_format
        self.spacing_mm = spacing_mm  # [row_mm, column_mm], or None when not in cm

    def __repr__(self) -> str:
        return "Region(%s, format=%d, spacing_mm=%s)" % (list(self.box), self.spatial_format, self.spacing_mm)


class Regions:
    """The outcome of :func:`read_regions`: valid regions (possibly scaled), or why they were ignored."""

    def __init__(self, regions: List[Region], scale: float = 1.0, tagged_size: Optional[Tuple[int, int]] = None,
                 problem: Optional[str] = None) -> None:
        self.regions = regions
        self.scale = scale
        self.tagged_size = tagged_size  # (width, height) the tags were written for, when scaled
        self.problem = problem  # why the tags were ignored (then ``regions`` is empty)

    @property
    def roi(self) -> Optional[Tuple[int, int, int, int]]:
        """The imaging area: the bounding box of the 2D regions (of all regions if none is 2D), or None."""
        chosen = [r for r in self.regions if r.spatial_format == SPATIAL_2D] or self.regions
        if not chosen:
            return None
        x0 = min(r.box[0] for r in chosen)
        y0 = min(r.box[1] for r in chosen)
        x1 = max(r.box[0] + r.box[2] for r in chosen)
        y1 = max(r.box[1] + r.box[3] for r in chosen)
        return x0, y0, x1 - x0, y1 - y0

    @property
    def spacing_mm(self) -> Optional[List[float]]:
        """``[row_mm, column_mm]`` of the first valid region measured in cm (2D regions first), or None."""
        ordered = sorted(self.regions, key=lambda r: r.spatial_format != SPATIAL_2D)
        return next((r.spacing_mm for r in ordered if r.spacing_mm), None)


def _int(item: Any, keyword: str) -> Optional[int]:
    value = item.get(keyword)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _positive(value: Any) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 and number == number and number != float("inf") else None


def _raw(item: Any) -> Optional[Tuple[int, int, int, int, int, Optional[List[float]]]]:
    """``(x0, y0, x1, y1, format, [dy_mm, dx_mm] | None)`` from one sequence item, None when incomplete."""
    corners = [_int(item, k) for k in ("RegionLocationMinX0", "RegionLocationMinY0", "RegionLocationMaxX1",
                                       "RegionLocationMaxY1")]
    values = [c for c in corners if c is not None]
    if len(values) != 4:
        return None
    x0, y0, x1, y1 = values
    if x0 < 0 or y0 < 0 or x1 < x0 or y1 < y0:
        return None
    spacing = None
    if _int(item, "PhysicalUnitsXDirection") == CM and _int(item, "PhysicalUnitsYDirection") == CM:
        dx, dy = _positive(item.get("PhysicalDeltaX")), _positive(item.get("PhysicalDeltaY"))
        if dx and dy:
            spacing = [dy * 10.0, dx * 10.0]
    return x0, y0, x1, y1, _int(item, "RegionSpatialFormat") or 0, spacing


def tagged_size(extent: Tuple[int, int], pixels: Tuple[int, int],
                sizes: Sequence[Tuple[int, int]] = SCREEN_SIZES) -> Optional[Tuple[int, int]]:
    """The smallest screen size (width, height) larger than ``pixels`` with the same aspect ratio (1%) that
    holds ``extent`` (the regions' right and bottom edge, exclusive), or None."""
    width, height = pixels
    for w, h in sorted(sizes, key=lambda s: s[0] * s[1]):
        if w < width or h < height or abs(w * height - h * width) > 0.01 * w * height:
            continue
        if extent[0] <= w and extent[1] <= h:
            return w, h
    return None


def read_regions(ds: Any) -> Regions:
    """The dataset's ultrasound regions in pixel-array coordinates (validated; see the module docstring)."""
    items = ds.get("SequenceOfUltrasoundRegions") or []
    if not items:
        return Regions([])
    columns, rows = int(ds.get("Columns", 0) or 0), int(ds.get("Rows", 0) or 0)
    raws = [_raw(item) for item in items]
    if any(r is None for r in raws):
        return Regions([], problem="a region has no complete RegionLocationMinX0/MinY0/MaxX1/MaxY1 corners")
    extent = (max(r[2] for r in raws) + 1, max(r[3] for r in raws) + 1)  # type: ignore[index]
    scale, size = 1.0, None
    if extent[0] > columns or extent[1] > rows:
        size = tagged_size(extent, (columns, rows))
        if size is None:
            return Regions([], problem="the regions reach %dx%d but the pixels are %dx%d, and no screen size with "
                           "the pixels' aspect ratio holds them (not a consistent downsampled export)"
                           % (extent[0], extent[1], columns, rows))
        scale = columns / float(size[0])
    regions = []
    for x0, y0, x1, y1, spatial_format, spacing in raws:  # type: ignore[misc]
        left, top = int(round(x0 * scale)), int(round(y0 * scale))
        right = min(columns, int(round((x1 + 1) * scale)))
        bottom = min(rows, int(round((y1 + 1) * scale)))
        if spacing is not None and scale != 1.0:
            spacing = [spacing[0] / scale, spacing[1] / scale]
        regions.append(Region((left, top, max(1, right - left), max(1, bottom - top)), spatial_format, spacing))
    return Regions(regions, scale, size)
