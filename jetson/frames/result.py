"""What the pipeline hands to every sink for one frame: the frame, its mask, areas and timings."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np

from jetseg.errors import SinkError
from jetseg.jetson.frames.frame import Frame
from jetseg.spec import Spec


@dataclass
class Result:
    """One processed frame.

    Attributes:
        frame: the captured frame (full size, as the source delivered it).
        mask: ``HxW uint8`` class indices in full-frame coordinates (0 outside the ROI).
        roi: the ``(x, y, w, h)`` crop the model saw.
        spec: the model's spec (class names, colours, alpha, pixel spacing).
        areas_px: pixels per class name (background excluded).
        areas_mm2: the same in mm^2 when the spec gives pixel spacing, else None.
        stamps: ``time.monotonic()`` per stage: captured, preprocessed, inferred, postprocessed.
        inference_ms: time inside the runner.
        roi_trusted: False when ``roi: auto`` was not sure and fell back to the whole frame: a ROI-only view
            would show the whole screen, burned-in patient text included, so :meth:`overlay` refuses it.
    """

    frame: Frame
    mask: np.ndarray
    roi: Tuple[int, int, int, int]
    spec: Spec
    areas_px: Dict[str, int] = field(default_factory=dict)
    areas_mm2: Optional[Dict[str, float]] = None
    stamps: Dict[str, float] = field(default_factory=dict)
    inference_ms: float = 0.0
    roi_trusted: bool = True
    _overlay: Optional[np.ndarray] = field(default=None, repr=False)

    @property
    def index(self) -> int:
        return self.frame.index

    def overlay(self, roi_only: bool = False) -> np.ndarray:
        """The frame with the mask blended in and contours drawn (``HxWx3 uint8 BGR``), computed once.

        ``roi_only`` crops to the ROI, so burned-in patient text outside the image area is not shown or stored.
        """
        if self._overlay is None:
            self._overlay = render_overlay(self.frame.image, self.mask, self.spec)
        if roi_only:
            if not self.roi_trusted:
                raise SinkError("roi=1 refused for frame %d: auto ROI found no imaging area it is sure of, and the "
                               "whole frame would record burned-in patient text; set roi: [x, y, w, h] (or --roi "
                               "x,y,w,h) or drop roi=1" % self.frame.index)
            x, y, w, h = self.roi
            return self._overlay[y:y + h, x:x + w]
        return self._overlay

    def record(self) -> Dict[str, Any]:
        """A JSON-able per-frame record (no pixels)."""
        out: Dict[str, Any] = {"frame": self.frame.index, "source": self.frame.source_id,
                               "roi": list(self.roi), "areas_px": self.areas_px,
                               "inference_ms": round(self.inference_ms, 3),
                               "stamps": {k: round(v, 6) for k, v in self.stamps.items()}}
        if self.areas_mm2 is not None:
            out["areas_mm2"] = {k: round(v, 3) for k, v in self.areas_mm2.items()}
        return out


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any frame (grey/BGR, uint8/uint16/float) as ``HxWx3 uint8`` BGR for display and recording."""
    import cv2

    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image * 255.0, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def render_overlay(image: np.ndarray, mask: np.ndarray, spec: Spec, contours: bool = True) -> np.ndarray:
    """Blend class colours (spec.colors, RGB) into the frame with spec.overlay_alpha; draw class contours."""
    import cv2

    base = to_bgr8(image).copy()
    alpha = float(spec.overlay_alpha)
    colors = spec.colors or []
    for cls in range(1, spec.num_classes):
        sel = mask == cls
        if not sel.any():
            continue
        r, g, b = colors[cls]
        color = np.array([b, g, r], dtype=np.float32)
        base[sel] = (base[sel].astype(np.float32) * (1.0 - alpha) + color * alpha).astype(np.uint8)
        if contours:
            found, _ = cv2.findContours(sel.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(base, found, -1, (int(b), int(g), int(r)), 1)
    return base
