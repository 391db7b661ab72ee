"""From a registration model's output to what sinks show: the warped frame, the flow, tracked landmarks.

Steps for one frame (docs/tasks.md, docs/runtime.md "Registration"):

1. :meth:`Field.read`, the one reader of a field: the output ``(1, 2, h, w)`` (x then y) in
   ``registration.units`` (pixels or normalized) -> pixels at the model's size, then scaled to the ROI
   (``x * roi_w / w``, ``y * roi_h / h``; resized to the ROI, bilinear, when a picture needs it);
2. motion of the frame: mean and p95 of ``|u|`` in frame pixels, and the folding fraction (share of
   non-positive Jacobian determinants, :func:`jetseg.flowscores.folding_fraction`) -> ``result.motion``;
3. landmarks: a :data:`GRID` x :data:`GRID` grid of points of the reference, each carried by the field to
   ``p + u(p)`` in the current frame; with ``reference=previous`` the carried points become the next
   frame's reference points, so they follow the tissue frame after frame; a new reference restarts the grid;
4. :class:`RegisteredResult` makes the pictures on first use (sinks that never look cost nothing): the ROI of
   the frame, at the frame's resolution and colours, warped onto the reference by the field resized to the
   ROI by ``cv2.remap``, which agrees with :func:`jetseg.flowscores.warp` within a grey level (a model's own ``registration.warped_output`` is model-size and
   grey, and runners return ``output.name`` only, so it is not read), with the flow blended in as a colour wheel (hue: direction; the colour's
   weight grows with ``|u|`` up to ``spec.overlay_alpha`` at :data:`FULL_COLOUR` of the ROI's smaller side);
   ``pair=1`` puts the input frame with the tracked landmarks on the left.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from jetseg.errors import JetsegError
from jetseg.flowscores import folding_fraction, to_pixels
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.frames.reference import Reference
from jetseg.jetson.frames.result import Result, to_bgr8
from jetseg.spec import Spec

#: landmarks per side: a GRID x GRID grid of the reference's points (cell centres of the model's image)
GRID = 8
#: the flow colour reaches full weight at a displacement of this share of the ROI's smaller side
FULL_COLOUR = 0.05
#: landmark colour (BGR) and radius in frame pixels
LANDMARK_BGR = (0, 255, 0)


class Field:
    """One frame's displacement field in pixels: :attr:`model` ``(2, h, w) float32`` at the model's size and
    :attr:`scale` ``(sx, sy)``, the ROI's pixels per model pixel along x and y."""

    def __init__(self, model: np.ndarray, roi: Tuple[int, int, int, int]) -> None:
        self.model = model
        self.roi = roi
        h, w = model.shape[1:]
        self.scale = (float(roi[2]) / w, float(roi[3]) / h)

    @classmethod
    def read(cls, output: Any, spec: Spec, roi: Tuple[int, int, int, int]) -> Field:
        """The field of a model output ``(1, 2, h, w)`` or ``(2, h, w)`` in ``spec.registration.units``."""
        assert spec.registration is not None  # the spec check of task registration fills it
        out = np.asarray(output, dtype=np.float32)
        expected = (2,) + tuple(spec.input.size)
        if out.shape not in ((1,) + expected, expected):
            raise JetsegError("model output %r has shape %s; expected (1, 2, %d, %d) (x then y) for task "
                              "registration" % (spec.output.name, tuple(out.shape), expected[1], expected[2]))
        return cls(to_pixels(out, spec.registration.units).astype(np.float32), roi)

    def magnitude(self) -> np.ndarray:
        """``|u|`` in frame pixels at each model pixel ``(h, w)``."""
        sx, sy = self.scale
        return np.hypot(self.model[0] * np.float32(sx), self.model[1] * np.float32(sy))

    def motion(self) -> Dict[str, float]:
        """``mean_px`` and ``p95_px`` of ``|u|`` (frame pixels) and ``folding`` (share of folds)."""
        mag = self.magnitude()
        return {"mean_px": float(mag.mean()), "p95_px": float(np.percentile(mag, 95)),
                "folding": folding_fraction(self.model)}

    def at_roi(self) -> np.ndarray:
        """The field resized to the ROI (bilinear) in ROI pixels, ``(2, roi_h, roi_w) float32``."""
        import cv2

        w, h = int(self.roi[2]), int(self.roi[3])
        sx, sy = self.scale
        return np.stack([cv2.resize(self.model[0], (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(sx),
                         cv2.resize(self.model[1], (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(sy)])

    def carry(self, points: np.ndarray) -> np.ndarray:
        """Points ``(n, 2)`` (x, y, model pixels) moved to ``p + u(p)`` (``u`` sampled bilinearly, clamped to
        the image)."""
        h, w = self.model.shape[1:]
        x = np.clip(points[:, 0], 0.0, w - 1.0)
        y = np.clip(points[:, 1], 0.0, h - 1.0)
        x0 = np.minimum(np.floor(x).astype(np.int64), w - 2) if w > 1 else np.zeros(len(x), np.int64)
        y0 = np.minimum(np.floor(y).astype(np.int64), h - 2) if h > 1 else np.zeros(len(y), np.int64)
        fx, fy = x - x0, y - y0
        x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
        u = (self.model[:, y0, x0] * (1 - fx) * (1 - fy) + self.model[:, y0, x1] * fx * (1 - fy)
             + self.model[:, y1, x0] * (1 - fx) * fy + self.model[:, y1, x1] * fx * fy)
        return points + u.T

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """Model-pixel points ``(n, 2)`` in frame pixels (pixel centres map onto pixel centres)."""
        sx, sy = self.scale
        return np.stack([self.roi[0] + (points[:, 0] + 0.5) * sx - 0.5,
                         self.roi[1] + (points[:, 1] + 0.5) * sy - 0.5], axis=1)


def grid_points(height: int, width: int, count: int = GRID) -> np.ndarray:
    """``count x count`` points ``(n, 2)`` (x, y) at the cell centres of a ``height x width`` model image."""
    xs = (np.arange(count) + 0.5) * width / count - 0.5
    ys = (np.arange(count) + 0.5) * height / count - 0.5
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


class RegistrationPostProcessor:
    """Turns a registration model's output into a :class:`RegisteredResult` and keeps the stream's
    reference (:attr:`reference`, read by the preprocessing stage) and tracked landmarks.

    Args:
        spec: the model's spec (``task: registration``).
        reference: ``first``, ``previous`` or an image file (:class:`~jetseg.jetson.frames.reference.Reference`).
    """

    def __init__(self, spec: Spec, reference: str = "first") -> None:
        spec.require_task("registration post-processing", "registration")
        self.spec = spec
        self.reference = Reference(spec, reference)
        self._generation = -1
        self._points: Optional[np.ndarray] = None

    def reset(self) -> None:
        """Forget the tracked landmarks (they restart from the grid on the next frame)."""
        self._points = None

    def result(self, output: Any, frame: Frame, roi: Tuple[int, int, int, int],
               spacing_mm: Optional[Sequence[float]] = None, stamps: Optional[Dict[str, float]] = None,
               inference_ms: float = 0.0, roi_trusted: bool = True, reference: int = 0) -> RegisteredResult:
        """The :class:`RegisteredResult` of one frame (``reference``: the generation of its fixed image)."""
        field = Field.read(output, self.spec, roi)
        if reference != self._generation or self._points is None:
            self._generation = reference
            self._points = grid_points(*self.spec.input.size)
        carried = field.carry(self._points)
        if self.reference.mode == "previous":
            self._points = carried
        result = RegisteredResult(frame, roi, self.spec, field, field.to_frame(carried),
                                  stamps=stamps, inference_ms=inference_ms, roi_trusted=roi_trusted)
        result.motion = field.motion()
        result.reference = self.reference
        return result


def flow_colours(field: np.ndarray, full_px: float) -> Tuple[np.ndarray, np.ndarray]:
    """``(BGR uint8 (h, w, 3), weight float32 (h, w) in [0, 1])`` of a pixel field ``(2, h, w)``: hue is the
    direction (OpenCV's hue circle: 0 along +x), the weight ``min(1, |u| / full_px)``."""
    import cv2

    mag, ang = cv2.cartToPolar(np.ascontiguousarray(field[0]), np.ascontiguousarray(field[1]), angleInDegrees=True)
    hsv = np.empty(field.shape[1:] + (3,), np.uint8)
    hsv[..., 0] = (ang / 2.0).astype(np.uint8) % 180
    hsv[..., 1] = 255
    hsv[..., 2] = 255
    weight = np.minimum(mag / np.float32(max(full_px, 1e-6)), np.float32(1.0)).astype(np.float32)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR), weight


class RegisteredResult(Result):
    """One frame of a registration model: sinks show the frame's ROI warped onto the reference with the flow
    blended in (:meth:`overlay`), and with ``pair`` the input frame with the tracked landmarks on its left.

    It has no classes: ``mask`` is all background and ``areas_px`` is empty.

    Attributes:
        field: the frame's :class:`Field`.
        landmarks: the reference's grid points carried by the field, ``(n, 2)`` (x, y) in frame pixels.
        motion: ``{"mean_px", "p95_px", "folding"}`` of this frame (also in the metrics).
        reference: the stream's :class:`Reference` (:meth:`use_as_reference` sets this frame as its image).
    """

    def __init__(self, frame: Frame, roi: Tuple[int, int, int, int], spec: Spec, field: Field,
                 landmarks: np.ndarray, stamps: Optional[Dict[str, float]] = None, inference_ms: float = 0.0,
                 roi_trusted: bool = True) -> None:
        super().__init__(frame, roi, spec, model_mask=np.zeros((1, 1), dtype=np.uint8), stamps=stamps,
                         inference_ms=inference_ms, roi_trusted=roi_trusted)
        self.field = field
        self.landmarks = landmarks
        self.reference: Optional[Reference] = None
        self._input: Optional[np.ndarray] = None

    def __repr__(self) -> str:
        return "RegisteredResult(frame=%d, roi=%r, motion=%r)" % (self.frame.index, self.roi, self.motion)

    def use_as_reference(self) -> None:
        """Register the frames after this one against this frame (the viewer's reference button)."""
        if self.reference is None:
            raise JetsegError("frame %d has no reference to set" % self.frame.index)
        self.reference.use_frame(self.frame.image, self.roi, self.frame.index)

    def warped_roi(self) -> np.ndarray:
        """The ROI of the frame warped onto the reference, ``(roi_h, roi_w, 3) uint8`` BGR: the backward warp of
        :func:`jetseg.flowscores.warp` (bilinear, zeros outside) done by ``cv2.remap``, which samples at 1/32 px
        and runs in milliseconds where the numpy warp took over 100 ms at 640x480 (docs/runtime.md)."""
        import cv2

        x, y, w, h = (int(v) for v in self.roi)
        crop = np.ascontiguousarray(to_bgr8(self.frame.image)[y:y + h, x:x + w])
        u = self.field.at_roi()
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        return cv2.remap(crop, xx + u[0].astype(np.float32), yy + u[1].astype(np.float32), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))

    def _picture(self) -> np.ndarray:
        import cv2

        x, y, w, h = (int(v) for v in self.roi)
        full = to_bgr8(self.frame.image).copy()
        warped = self.warped_roi().astype(np.float32)
        sx, sy = self.field.scale
        in_frame = np.stack([self.field.model[0] * np.float32(sx), self.field.model[1] * np.float32(sy)])
        colours, weight = flow_colours(in_frame, FULL_COLOUR * min(w, h))
        colours = cv2.resize(colours, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        alpha = cv2.resize(weight, (w, h), interpolation=cv2.INTER_LINEAR)[:, :, None] * np.float32(self.spec.overlay_alpha)
        full[y:y + h, x:x + w] = (warped * (1.0 - alpha) + colours * alpha + 0.5).astype(np.uint8)
        return full

    def input_with_landmarks(self) -> np.ndarray:
        """The input frame (BGR) with the tracked landmarks drawn: a deformed grid of dots and lines."""
        import cv2

        if self._input is None:
            picture = to_bgr8(self.frame.image).copy()
            pts = np.round(self.landmarks).astype(np.int32).reshape(GRID, GRID, 2)
            cv2.polylines(picture, list(pts) + list(pts.transpose(1, 0, 2).copy()), False, LANDMARK_BGR, 1)
            for px, py in pts.reshape(-1, 2):
                cv2.circle(picture, (int(px), int(py)), 2, LANDMARK_BGR, -1)
            self._input = picture
        return self._input

    def _view(self, picture: np.ndarray, roi_only: bool, pair: bool) -> np.ndarray:
        if roi_only:
            picture = self._crop(picture)
        if not pair:
            return picture
        left = self.input_with_landmarks()
        return np.hstack([self._crop(left) if roi_only else left, picture])

    def plain(self, roi_only: bool = False, pair: bool = False) -> np.ndarray:
        """The registered picture itself: there is no mask to blend into it."""
        return self.overlay(roi_only, pair)

    def record(self) -> Dict[str, Any]:
        out = super().record()
        out["task"] = "registration"
        out["motion"] = {k: round(v, 4) for k, v in (self.motion or {}).items()}
        if self.reference is not None:
            out["reference"] = self.reference.mode if self.reference.mode in ("first", "previous") else "file"
        return out
