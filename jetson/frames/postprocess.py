"""From model output to the mask the user sees: smoothing, clean-up, mapping to the frame, areas.

Steps for one frame, all optional except decoding and mapping:

1. temporal smoothing: an exponential moving average of the class probabilities over frames
   (``smoothing`` is the weight of the past, 0 = off); the smoothed probabilities are decoded,
2. decoding with :meth:`Spec.decode` (argmax for softmax outputs, threshold for a sigmoid),
3. mapping the model-size mask back onto the full frame (:meth:`Spec.mask_to_frame`, 0 outside the ROI),
4. removing connected components smaller than ``min_area_px`` frame pixels (set to background),
5. per-class areas in pixels, and in mm^2 when the pixel spacing is known (``Frame.meta["pixel_spacing_mm"]``
   first, then ``spec.pixel_spacing_mm``; both ``[row_mm, column_mm]`` of the frame).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union, cast

import numpy as np

from jetseg.errors import JetsegError
from jetseg.jetson.frames.enhance import EnhancementPostProcessor
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.frames.reference import check_reference
from jetseg.jetson.frames.register import RegistrationPostProcessor
from jetseg.jetson.frames.result import Result
from jetseg.spec import Spec


class PostProcessor:
    """Turns logits ``(1, K, h, w) float32`` into a full-frame mask ``HxW uint8`` and class areas.

    Stateful when ``smoothing > 0`` (it remembers the previous probabilities); :meth:`reset` forgets them
    (the pipeline calls it when the ROI or the frame size changes, or the source reconnects).

    Args:
        spec: the model's spec.
        smoothing: EMA weight of the past in [0, 1); ``p = smoothing * p_prev + (1 - smoothing) * p_now``.
        min_area_px: connected components (8-connected, per class) smaller than this many frame pixels
            become background; 0 keeps everything.
    """

    def __init__(self, spec: Spec, smoothing: float = 0.0, min_area_px: int = 0) -> None:
        if not isinstance(smoothing, (int, float)) or not 0.0 <= float(smoothing) < 1.0:
            raise JetsegError("smoothing is %r; expected a number in [0, 1) (0 = off)" % (smoothing,))
        if not isinstance(min_area_px, int) or min_area_px < 0:
            raise JetsegError("min_area_px is %r; expected a non-negative integer (0 = off)" % (min_area_px,))
        self.spec = spec
        self.smoothing = float(smoothing)
        self.min_area_px = int(min_area_px)
        self._state: Optional[np.ndarray] = None
        self._key: Optional[Tuple[Any, ...]] = None
        self._names = list(spec.classes[1:])
        self._repeat_cache: Optional[Tuple[Tuple[int, int, int, int], np.ndarray, np.ndarray]] = None

    def reset(self) -> None:
        """Forget the smoothing history."""
        self._state = None
        self._key = None

    def decode(self, logits: np.ndarray, key: Optional[Tuple[Any, ...]] = None) -> np.ndarray:
        """Model-size mask ``(h, w) uint8`` from one frame's logits, smoothed over frames if enabled.

        ``key`` identifies the geometry (ROI, frame size); a new key restarts the smoothing.
        """
        if self.smoothing <= 0.0:
            return self.spec.decode(logits)[0]
        probs = self.spec.probabilities(logits)
        if self._state is None or key != self._key or self._state.shape != probs.shape:
            self._state = probs
            self._key = key
        else:
            state = self._state
            state *= self.smoothing
            state += (1.0 - self.smoothing) * probs
        return self.spec.decode(self._as_logits(self._state))[0]

    def _as_logits(self, probs: np.ndarray) -> np.ndarray:
        """Smoothed probabilities in the form Spec.decode takes (so decoding stays in one place)."""
        eps = 1e-6
        given = self.spec.output.activation == "probabilities"
        if self.spec.output.kind == "sigmoid":
            p = np.clip(probs[:, 1:], eps, 1.0 - eps)
            return p if given else np.log(p / (1.0 - p))
        return probs if given else np.log(probs + eps)

    def to_frame(self, mask: np.ndarray, frame_shape: Sequence[int], roi: Sequence[int]) -> np.ndarray:
        """Model-size mask onto the full frame; then small components are removed."""
        full = self.spec.mask_to_frame(mask, frame_shape, roi=roi)
        if self.min_area_px > 0:
            remove_small_components(full, self.min_area_px, self.spec.num_classes)
        return full

    def areas(self, mask: np.ndarray, spacing_mm: Optional[Sequence[float]] = None
              ) -> Tuple[Dict[str, int], Optional[Dict[str, float]]]:
        """Pixels per class name (background excluded), and mm^2 when ``spacing_mm`` or the spec gives it."""
        return self._with_mm2(class_pixels(mask, self.spec.num_classes), spacing_mm)

    def areas_from_small(self, small: np.ndarray, roi: Sequence[int],
                         spacing_mm: Optional[Sequence[float]] = None
                         ) -> Tuple[Dict[str, int], Optional[Dict[str, float]]]:
        """The same areas as :meth:`areas` of the full-frame mask, computed from the model-size mask.

        Mapping to the frame is a nearest-neighbour resize into the ROI, which repeats source row i
        ``rows[i]`` times and column j ``cols[j]`` times, so a class covers ``rows @ (mask == c) @ cols``
        frame pixels: exact, about 50x cheaper than making and counting the full-frame mask. Not valid
        with ``min_area_px`` (component removal changes the full-frame mask).
        """
        rows, cols = self._repeats(small.shape, int(roi[3]), int(roi[2]))
        if self.spec.num_classes == 2:  # decoded masks hold 0 and 1 only
            counts = [int(round(float(rows @ small.astype(np.float32) @ cols)))]
        else:
            counts = [int(round(float(rows @ (small == c).astype(np.float32) @ cols)))
                      for c in range(1, self.spec.num_classes)]
        return self._with_mm2(counts, spacing_mm)

    def _repeats(self, shape: Sequence[int], height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
        key = (int(shape[0]), int(shape[1]), height, width)
        cached = self._repeat_cache
        if cached is None or cached[0] != key:
            import cv2

            h, w = key[0], key[1]
            # cv2's own nearest-neighbour mapping (separable), so the counts match Spec.mask_to_frame exactly
            row_of = cv2.resize(np.arange(h, dtype=np.int32).reshape(h, 1), (1, height),
                                interpolation=cv2.INTER_NEAREST).ravel()
            col_of = cv2.resize(np.arange(w, dtype=np.int32).reshape(1, w), (width, 1),
                                interpolation=cv2.INTER_NEAREST).ravel()
            cached = (key, np.bincount(row_of, minlength=h).astype(np.float32),
                      np.bincount(col_of, minlength=w).astype(np.float32))
            self._repeat_cache = cached
        return cached[1], cached[2]

    def _with_mm2(self, counts: Sequence[int], spacing_mm: Optional[Sequence[float]]
                  ) -> Tuple[Dict[str, int], Optional[Dict[str, float]]]:
        areas_px = dict(zip(self._names, counts))
        spacing = spacing_mm if spacing_mm is not None else self.spec.pixel_spacing_mm
        if spacing is None:
            return areas_px, None
        pixel_mm2 = float(spacing[0]) * float(spacing[1])
        return areas_px, {name: n * pixel_mm2 for name, n in areas_px.items()}

    def __call__(self, logits: np.ndarray, frame_shape: Sequence[int], roi: Sequence[int],
                 spacing_mm: Optional[Sequence[float]] = None
                 ) -> Tuple[np.ndarray, Dict[str, int], Optional[Dict[str, float]]]:
        """``(full-frame mask, areas_px, areas_mm2 or None)`` for one frame's logits."""
        mask, small, areas_px, areas_mm2 = self.process(logits, frame_shape, roi, spacing_mm)
        if mask is None:
            mask = self.spec.mask_to_frame(small, frame_shape, roi=roi)
        return mask, areas_px, areas_mm2

    def process(self, logits: np.ndarray, frame_shape: Sequence[int], roi: Sequence[int],
                spacing_mm: Optional[Sequence[float]] = None
                ) -> Tuple[Optional[np.ndarray], np.ndarray, Dict[str, int], Optional[Dict[str, float]]]:
        """``(full-frame mask or None, model-size mask, areas_px, areas_mm2 or None)`` for one frame's logits.

        The full-frame mask is made here only when small components must be removed from it; otherwise it is
        None and :class:`~jetseg.jetson.frames.result.Result` maps the model-size mask when a sink asks.
        """
        key = (tuple(roi), tuple(frame_shape[:2]))
        small = self.decode(logits, key)
        if self.min_area_px > 0:
            mask = self.to_frame(small, frame_shape, roi)
            areas_px, areas_mm2 = self.areas(mask, spacing_mm)
            return mask, small, areas_px, areas_mm2
        areas_px, areas_mm2 = self.areas_from_small(small, roi, spacing_mm)
        return None, small, areas_px, areas_mm2

    def result(self, output: np.ndarray, frame: Frame, roi: Tuple[int, int, int, int],
               spacing_mm: Optional[Sequence[float]] = None, stamps: Optional[Dict[str, float]] = None,
               inference_ms: float = 0.0, roi_trusted: bool = True) -> Result:
        """The :class:`Result` of one frame's logits (mask, areas)."""
        mask, small, areas_px, areas_mm2 = self.process(output, frame.image.shape, roi, spacing_mm)
        return Result(frame=frame, roi=roi, spec=self.spec, mask=mask, model_mask=small if mask is None else None,
                      areas_px=areas_px, areas_mm2=areas_mm2, stamps=stamps, inference_ms=inference_ms,
                      roi_trusted=roi_trusted)


#: What the pipeline's post-processing stage runs: the one of the model's task.
AnyPostProcessor = Union[PostProcessor, EnhancementPostProcessor, RegistrationPostProcessor]


def post_processor(spec: Spec, smoothing: float = 0.0, min_area_px: int = 0,
                   reference: str = "first") -> AnyPostProcessor:
    """The post-processor of ``spec.task``: masks and areas for segmentation, the enhanced frame for
    enhancement, the warped frame, flow and landmarks for registration against ``reference`` (``first``,
    ``previous`` or an image file). ``min_area_px`` (a mask clean-up) is refused for the tasks without masks,
    ``smoothing`` for registration, and a reference other than ``first`` for the tasks without one."""
    check_reference(reference, spec.task)
    if spec.task != "segmentation" and min_area_px:
        raise JetsegError("postprocess.min_area_px is %r; it removes small mask components, and this model (task "
                          "%s) has no mask (set it to 0)" % (min_area_px, spec.task))
    if spec.task == "registration":
        if smoothing:
            raise JetsegError("postprocess.smoothing is %r; a registration model's field is not smoothed over "
                              "frames (set it to 0)" % (smoothing,))
        return RegistrationPostProcessor(spec, reference)
    if spec.task == "enhancement":
        return EnhancementPostProcessor(spec, smoothing)
    spec.require_task("jetseg run", "segmentation", "enhancement", "registration")
    return PostProcessor(spec, smoothing, min_area_px)


def class_pixels(mask: np.ndarray, num_classes: int) -> List[int]:
    """Pixels of each foreground class ``1..num_classes-1`` in a ``HxW uint8`` mask.

    (``cv2.countNonZero`` per class: several times faster than ``np.bincount`` on a full frame.)
    """
    import cv2

    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    if num_classes == 2:  # decoded masks hold 0 and 1 only
        return [int(cv2.countNonZero(mask))]
    # a scalar second operand is valid for cv2.compare; OpenCV's type stubs declare arrays only
    return [int(cv2.countNonZero(cv2.compare(mask, cast(Any, cls), cv2.CMP_EQ))) for cls in range(1, num_classes)]


def remove_small_components(mask: np.ndarray, min_area_px: int, num_classes: int) -> np.ndarray:
    """Set 8-connected components of each foreground class smaller than ``min_area_px`` to 0, in place."""
    import cv2

    for cls in range(1, num_classes):
        sel = (mask == cls).view(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(sel, connectivity=8)
        if count <= 1:
            continue
        small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < min_area_px)
        small = small[small > 0]
        if small.size:
            mask[np.isin(labels, small)] = 0
    return mask
