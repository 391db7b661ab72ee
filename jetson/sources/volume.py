"""What the volume sources share: the intensity window to ``uint16`` frames and the label volume check.

Used by the NIfTI source (nibabel) and the ITK source (SimpleITK: MHA/MHD, NRRD), so that a volume read by
either gives the same frames for the same window.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from jetseg.errors import SourceError


def window_uint16(data: np.ndarray, vmin: Optional[float], vmax: Optional[float], what: str
                  ) -> Tuple[np.ndarray, Tuple[float, float]]:
    """``data`` mapped from ``[vmin, vmax]`` (default: its own finite minimum and maximum) onto 0..65535.

    Returns the ``uint16`` array and the window used. Values outside the window are clipped; NaN becomes the low end.
    """
    if not np.issubdtype(data.dtype, np.number) or np.issubdtype(data.dtype, np.complexfloating):
        raise SourceError("%s has %s voxels; expected real numbers" % (what, data.dtype))
    finite = data[np.isfinite(data)] if np.issubdtype(data.dtype, np.floating) else data
    low = float(finite.min()) if vmin is None and finite.size else vmin
    high = float(finite.max()) if vmax is None and finite.size else vmax
    low = 0.0 if low is None else low
    high = low + 1.0 if high is None or high <= low else high
    scaled = (np.nan_to_num(data.astype(np.float32), nan=low) - low) * (65535.0 / (high - low))
    return np.clip(scaled, 0, 65535).round().astype(np.uint16), (low, high)


def class_labels(labels: np.ndarray, shape: Tuple[int, ...], what: str, volume: str) -> np.ndarray:
    """A label volume as ``uint8`` class indices, checked against the image's ``shape``."""
    if labels.shape != shape:
        raise SourceError("%s is %s, volume %s is %s; expected the same shape"
                          % (what, "x".join(map(str, labels.shape)), volume, "x".join(map(str, shape))))
    labels = np.rint(np.nan_to_num(labels.astype(np.float64)))
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise SourceError("%s holds values %g..%g; expected class indices 0..255" % (what, labels.min(), labels.max()))
    return labels.astype(np.uint8)
