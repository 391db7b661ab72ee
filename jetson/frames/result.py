"""What the pipeline hands to every sink for one frame: the frame, its mask, areas and timings."""
from __future__ import annotations

import threading
from typing import Any, Dict, Optional, Tuple

import numpy as np

from jetseg.errors import SinkError
from jetseg.jetson.frames.frame import Frame
from jetseg.spec import Spec


class Result:
    """One processed frame.

    The full-frame mask is made from the model-size mask on first use, once, by whichever sink reads it
    first (in that sink's thread): sinks that never look at the mask (``null://``, a web viewer nobody
    watches) cost the pipeline nothing for it, and the areas were computed from the model-size mask.

    Attributes:
        frame: the captured frame (full size, as the source delivered it).
        mask: ``HxW uint8`` class indices in full-frame coordinates (0 outside the ROI); given, or made on
            first use from ``model_mask``.
        model_mask: ``hxw uint8`` class indices at the model's size, or None when ``mask`` was given.
        roi: the ``(x, y, w, h)`` crop the model saw.
        spec: the model's spec (class names, colours, alpha, pixel spacing).
        areas_px: pixels per class name (background excluded).
        areas_mm2: the same in mm^2 when the spec gives pixel spacing, else None.
        stamps: ``time.monotonic()`` per stage: captured, preprocessed, inferred, postprocessed.
        inference_ms: time inside the runner.
        roi_trusted: False when ``roi: auto`` was not sure and fell back to the whole frame: a ROI-only view
            would show the whole screen, burned-in patient text included, so :meth:`overlay` refuses it.
        motion: a registration frame's motion (``mean_px``, ``p95_px``, ``folding``), else None.
    """

    motion: Optional[Dict[str, float]] = None

    def __init__(self, frame: Frame, roi: Tuple[int, int, int, int], spec: Spec,
                 mask: Optional[np.ndarray] = None, model_mask: Optional[np.ndarray] = None,
                 areas_px: Optional[Dict[str, int]] = None, areas_mm2: Optional[Dict[str, float]] = None,
                 stamps: Optional[Dict[str, float]] = None, inference_ms: float = 0.0,
                 roi_trusted: bool = True) -> None:
        if (mask is None) == (model_mask is None):
            raise SinkError("result for frame %d: received %s; expected exactly one of mask (full frame) and "
                            "model_mask (model size)" % (frame.index, "both" if mask is not None else "neither"))
        self.frame = frame
        self.roi = roi
        self.spec = spec
        self.model_mask = model_mask
        self.areas_px: Dict[str, int] = areas_px if areas_px is not None else {}
        self.areas_mm2 = areas_mm2
        self.stamps: Dict[str, float] = stamps if stamps is not None else {}
        self.inference_ms = inference_ms
        self.roi_trusted = roi_trusted
        self._mask = mask
        self._overlay: Optional[np.ndarray] = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "Result(frame=%d, roi=%r, areas_px=%r)" % (self.frame.index, self.roi, self.areas_px)

    @property
    def mask(self) -> np.ndarray:
        if self._mask is None:
            with self._lock:
                if self._mask is None:
                    assert self.model_mask is not None  # the constructor holds one of the two
                    self._mask = self.spec.mask_to_frame(self.model_mask, self.frame.image.shape, roi=self.roi)
        return self._mask

    @property
    def index(self) -> int:
        return self.frame.index

    def overlay(self, roi_only: bool = False, pair: bool = False) -> np.ndarray:
        """What a sink shows (``HxWx3 uint8 BGR``): the frame with the mask blended in and contours drawn
        (computed once; an enhancement result shows its enhanced frame instead).

        Args:
            roi_only: crop to the ROI, so burned-in patient text outside the image area is not shown or stored.
            pair: the input frame on the left and this picture on the right (twice as wide).
        """
        if self._overlay is None:
            self._overlay = self._picture()
        return self._view(self._overlay, roi_only, pair)

    def plain(self, roi_only: bool = False, pair: bool = False) -> np.ndarray:
        """The picture under :meth:`labels` (``HxWx3 uint8 BGR``): a viewer that blends :meth:`labels` into it
        with the spec's colours draws what :meth:`overlay` draws (the web viewer's layers)."""
        frame = to_bgr8(self.frame.image)
        return self._view(frame, roi_only, pair)

    def labels(self, roi_only: bool = False, pair: bool = False) -> np.ndarray:
        """Class indices ``HxW uint8`` matching :meth:`plain` (with ``pair``, 0 over the left, input half)."""
        mask = self.mask
        if roi_only:
            mask = self._crop(mask)
        return np.hstack([np.zeros_like(mask), mask]) if pair else mask

    def _picture(self) -> np.ndarray:
        """The full-frame picture this result shows (the hook a task's result overrides)."""
        return render_overlay(self.frame.image, self.mask, self.spec)

    def _view(self, picture: np.ndarray, roi_only: bool, pair: bool) -> np.ndarray:
        if roi_only:
            picture = self._crop(picture)
        if not pair:
            return picture
        frame = to_bgr8(self.frame.image)
        return np.hstack([self._crop(frame) if roi_only else frame, picture])

    def _crop(self, image: np.ndarray) -> np.ndarray:
        if not self.roi_trusted:
            raise SinkError("roi=1 refused for frame %d: auto ROI found no imaging area it is sure of, and the "
                           "whole frame would record burned-in patient text; set roi: [x, y, w, h] (or --roi "
                           "x,y,w,h) or drop roi=1" % self.frame.index)
        x, y, w, h = self.roi
        return image[y:y + h, x:x + w]

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
