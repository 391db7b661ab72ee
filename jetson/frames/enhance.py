"""From an enhancement model's output to the picture sinks show: the enhanced image back in the frame's ROI.

Steps for one frame (docs/tasks.md):

1. :func:`jetseg.tasks.enhanced_images` reads the output ``(1, C, h, w) float32`` as an image in [0, 1]
   (clipped to ``spec.enhancement.range`` and rescaled),
2. optional temporal smoothing: an exponential moving average of the enhanced images over frames
   (``smoothing`` is the weight of the past, 0 = off; a new ROI or frame size restarts it),
3. to ``uint8`` (BGR for colour models whose ``input.color_order`` is ``rgb``),
4. :class:`EnhancedResult` pastes it, resized (bilinear) to the ROI, over the frame on first use, so sinks
   that never look at pictures cost nothing for it. Outside the ROI the frame is shown as captured.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from jetseg.errors import JetsegError
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.frames.result import Result, to_bgr8
from jetseg.spec import Spec
from jetseg.tasks import enhanced_images


class EnhancementPostProcessor:
    """Turns an enhancement model's output into an :class:`EnhancedResult`.

    Args:
        spec: the model's spec (``task: enhancement``).
        smoothing: EMA weight of the past in [0, 1); ``img = smoothing * img_prev + (1 - smoothing) * img_now``.
    """

    def __init__(self, spec: Spec, smoothing: float = 0.0) -> None:
        spec.require_task("enhancement post-processing", "enhancement")
        if not isinstance(smoothing, (int, float)) or not 0.0 <= float(smoothing) < 1.0:
            raise JetsegError("smoothing is %r; expected a number in [0, 1) (0 = off)" % (smoothing,))
        self.spec = spec
        self.smoothing = float(smoothing)
        self._state: Optional[np.ndarray] = None
        self._key: Optional[Tuple[Any, ...]] = None

    def reset(self) -> None:
        """Forget the smoothing history."""
        self._state = None
        self._key = None

    def image(self, output: np.ndarray, key: Optional[Tuple[Any, ...]] = None) -> np.ndarray:
        """The model-size enhanced image of one frame: ``(h, w) uint8`` (grey) or ``(h, w, 3) uint8`` BGR."""
        assert self.spec.enhancement is not None  # the spec check of task enhancement fills it
        img = enhanced_images(output, self.spec.enhancement)[0]
        if self.smoothing > 0.0:
            if self._state is None or key != self._key or self._state.shape != img.shape:
                self._state, self._key = img, key
            else:
                self._state = self._state * np.float32(self.smoothing) + img * np.float32(1.0 - self.smoothing)
            img = self._state
        pixels = (img * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)
        if pixels.shape[0] == 1:
            return pixels[0]
        pixels = np.ascontiguousarray(pixels.transpose(1, 2, 0))
        return pixels[:, :, ::-1].copy() if self.spec.input.color_order == "rgb" else pixels

    def result(self, output: np.ndarray, frame: Frame, roi: Tuple[int, int, int, int],
               spacing_mm: Optional[Sequence[float]] = None, stamps: Optional[Dict[str, float]] = None,
               inference_ms: float = 0.0, roi_trusted: bool = True) -> EnhancedResult:
        """The :class:`EnhancedResult` of one frame's output (``spacing_mm`` is unused: no areas to measure)."""
        enhanced = self.image(output, (tuple(roi), tuple(frame.image.shape[:2])))
        return EnhancedResult(frame, roi, self.spec, enhanced, stamps=stamps, inference_ms=inference_ms,
                              roi_trusted=roi_trusted)


class EnhancedResult(Result):
    """One frame of an enhancement model: sinks show the enhanced frame (:meth:`overlay`), or with ``pair``
    the input frame and the enhanced frame side by side.

    It has no classes: ``mask`` is all background and ``areas_px`` is empty.

    Attributes:
        enhanced: the model-size enhanced image, ``(h, w) uint8`` or ``(h, w, 3) uint8`` BGR.
    """

    def __init__(self, frame: Frame, roi: Tuple[int, int, int, int], spec: Spec, enhanced: np.ndarray,
                 stamps: Optional[Dict[str, float]] = None, inference_ms: float = 0.0,
                 roi_trusted: bool = True) -> None:
        super().__init__(frame, roi, spec, model_mask=np.zeros((1, 1), dtype=np.uint8), stamps=stamps,
                         inference_ms=inference_ms, roi_trusted=roi_trusted)
        self.enhanced = enhanced

    def __repr__(self) -> str:
        return "EnhancedResult(frame=%d, roi=%r)" % (self.frame.index, self.roi)

    def _picture(self) -> np.ndarray:
        import cv2

        x, y, w, h = (int(v) for v in self.roi)
        full = to_bgr8(self.frame.image).copy()
        fitted = cv2.resize(self.enhanced, (w, h), interpolation=cv2.INTER_LINEAR)
        full[y:y + h, x:x + w] = fitted[:, :, None] if fitted.ndim == 2 else fitted
        return full

    def plain(self, roi_only: bool = False, pair: bool = False) -> np.ndarray:
        """The enhanced picture itself: there is no mask to blend into it."""
        return self.overlay(roi_only, pair)

    def record(self) -> Dict[str, Any]:
        out = super().record()
        out["task"] = "enhancement"
        return out
