"""The region of interest: the part of the frame the model looks at.

Scanner video (an ultrasound machine's HDMI output, an endoscopy tower) shows the image in a sector or a
circle surrounded by black, with burned-in text (patient name, date, depth, gain) around it. The ROI is
cropped before preprocessing (``Spec.preprocess(frame, roi=...)``) and masks are mapped back onto the full
frame (``Spec.mask_to_frame``). It comes from, in order of precedence:

- the config / ``--roi x,y,w,h`` (frame pixels),
- ``auto``: the imaging area the source knows (``Frame.meta["roi"]`` with a ``roi_source``: DICOM's validated
  SequenceOfUltrasoundRegions), else detected from the first frames by :func:`detect_roi`,
- ``spec``: the bundle's ``input.roi`` (or the whole frame),
- ``none``: the whole frame.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from jetseg.errors import JetsegError
from jetseg.spec import Spec, warn_clipped

Roi = Tuple[int, int, int, int]


class RoiError(JetsegError):
    """The ROI does not fit the frames, or none could be detected."""


def detect_roi(frames: Sequence[np.ndarray], threshold: Optional[float] = None, text_px: Optional[int] = None,
               min_fraction: float = 0.05) -> Roi:
    """Find the image area of scanner video: the largest bright region, without the burned-in text.

    The frames are reduced to their per-pixel maximum (speckle moves, the sector stays), thresholded just
    above the black background, and opened with a square of ``text_px`` pixels, which erases text strokes
    and thin graphics (rulers, markers) but not the sector. The largest connected component's bounding box
    is the ROI.

    Args:
        frames: one or more frames of the same shape (``HxW`` or ``HxWx3`` BGR, uint8/uint16/float).
        threshold: grey level (0..255 scale) above which a pixel counts as image; default: a little above
            the frame's dark level.
        text_px: size of the opening; default about 1.5% of the frame's smaller side (at least 5 px).
        min_fraction: the region must cover at least this fraction of the frame.

    Returns:
        ``(x, y, w, h)`` in frame pixels.
    """
    from jetseg.optional import require

    cv2 = require("cv2", "ROI detection")
    if len(frames) == 0:
        raise RoiError("ROI detection needs at least one frame; received none")
    shape = frames[0].shape[:2]
    acc: Optional[np.ndarray] = None
    for image in frames:
        if image.shape[:2] != shape:
            raise RoiError("ROI detection needs frames of one size; received %s and %s"
                           % (shape, image.shape[:2]))
        grey = _grey8(cv2, image)
        acc = grey if acc is None else np.maximum(acc, grey)
    assert acc is not None
    height, width = shape
    size = int(text_px) if text_px else max(5, int(round(min(height, width) * 0.015)) | 1)
    # Averaged over the kernel, low-gain speckle (an OB sector that is mostly fluid) stays above the dark
    # level as one region, and isolated text strokes fade.
    if threshold is None:
        dark = float(np.percentile(acc, 5))
        threshold = min(dark + 12.0, 128.0)
    raw = (acc > threshold).astype(np.uint8)
    binary = (cv2.blur(acc, (size, size)) > threshold).astype(np.uint8)
    binary[_bar_rows(binary, cv2)] = 0  # header and footer bars (patient text on a grey band) span the width
    binary[:, _bar_rows(binary.T, cv2)] = 0  # side bars (a colour map legend) span the height
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    opened = cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    if count <= 1:
        raise RoiError("no image area found in the first frames (all dark); use --roi x,y,w,h or roi: spec")
    colour = _saturation(cv2, frames[0])
    candidates = [i for i in range(1, count) if _imaging_area(stats[i], labels == i, colour, height, width, cv2)]
    if not candidates:
        raise RoiError("no imaging area found: the bright regions are text bands, colour bars or strips; use "
                       "--roi x,y,w,h or roi: spec")
    best = max(candidates, key=lambda i: int(stats[i, cv2.CC_STAT_AREA]))
    area = int(stats[best, cv2.CC_STAT_AREA])
    # The blur widens the region by half a kernel, which gives back what the opening rounded off (the
    # sector's apex and edges); its bright pixels are the image area (text further away stays out).
    ys, xs = np.nonzero((labels == best) & (raw > 0))
    x, y = int(xs.min()), int(ys.min())
    w, h = int(xs.max()) - x + 1, int(ys.max()) - y + 1
    if area < min_fraction * height * width:
        raise RoiError("the largest bright region found is %d px, under %.0f%% of the %dx%d frame; use --roi "
                       "x,y,w,h or roi: spec" % (area, 100 * min_fraction, width, height))
    return x, y, w, h


def _bar_rows(binary: np.ndarray, cv2: Any) -> np.ndarray:
    """Rows that are bright over more than 90% of the width: bands, never part of a sector or a circle."""
    return np.asarray(binary.mean(axis=1) > 0.9)


def _saturation(cv2: Any, image: np.ndarray) -> Optional[np.ndarray]:
    """Per-pixel colour saturation (0..255) of a BGR frame, None for grey frames."""
    if image.ndim != 3 or image.shape[2] < 3:
        return None
    bgr = image[:, :, :3]
    if bgr.dtype != np.uint8:
        bgr = _grey8(cv2, bgr[:, :, 0])[:, :, None].repeat(3, axis=2)
    return cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2HSV)[:, :, 1]


def _imaging_area(stat: np.ndarray, region: np.ndarray, colour: Optional[np.ndarray], height: int, width: int,
                  cv2: Any) -> bool:
    """False for what is not an imaging area: a text band (wide and low), a strip (thin in one direction),
    a colour bar (mostly saturated colour)."""
    w, h = int(stat[cv2.CC_STAT_WIDTH]), int(stat[cv2.CC_STAT_HEIGHT])
    if w < 0.15 * width or h < 0.15 * height:
        return False  # a strip, a ruler, a text line, a small icon
    if w > 4 * h or h > 4 * w:
        return False  # a band
    if colour is not None and float(np.mean(colour[region] > 80)) > 0.5:
        return False  # a colour map legend or a Doppler colour box on its own
    return True


def _grey8(cv2, image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(np.asarray(image, dtype=np.float32) * 255.0, 0, 255).astype(np.uint8)
    if image.ndim == 3:
        if image.shape[2] == 1:
            return image[:, :, 0]
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        return cv2.cvtColor(image, code)
    return image


def clip_roi(roi: Sequence[int], frame_shape: Sequence[int], what: str = "ROI") -> Roi:
    """Clip ``(x, y, w, h)`` to the frame; raise RoiError if it starts outside it."""
    height, width = int(frame_shape[0]), int(frame_shape[1])
    x, y, w, h = (int(v) for v in roi)
    if x >= width or y >= height or w <= 0 or h <= 0:
        raise RoiError("%s %s lies outside the %dx%d frame; expected x < %d and y < %d (fix --roi or roi.mode)"
                       % (what, [x, y, w, h], width, height, width, height))
    clipped = (x, y, min(w, width - x), min(h, height - y))
    if clipped[2:] != (w, h):
        warn_clipped(what, [x, y, w, h], clipped, width, height)
    return clipped


class RoiPolicy:
    """Decides the ROI for a stream of frames, one of ``spec``, ``auto``, ``none`` or a fixed ``[x, y, w, h]``.

    ``auto`` needs the first ``auto_frames`` frames (:attr:`needs_frames`); the pipeline holds them back,
    calls :meth:`resolve` with them, and then sends them on in order. The ROI is re-resolved when the frame
    size changes (a reconnected source at another resolution).
    """

    def __init__(self, spec: Spec, mode: Union[str, Sequence[int]] = "spec", auto_frames: int = 3) -> None:
        if isinstance(mode, str) and mode not in ("spec", "auto", "none"):
            raise RoiError("ROI mode %r is unknown; expected auto, spec, none or [x, y, w, h]" % (mode,))
        self.spec = spec
        self.mode: Union[str, List[int]] = mode if isinstance(mode, str) else [int(v) for v in mode]
        self.auto_frames = max(1, int(auto_frames))
        self.roi: Optional[Roi] = None
        self._shape: Optional[Tuple[int, int]] = None

    @property
    def is_auto(self) -> bool:
        return self.mode == "auto"

    def current(self, frame_shape: Sequence[int]) -> Optional[Roi]:
        """The ROI for a frame of this shape, or None if it must be (re)resolved first."""
        if self.roi is not None and self._shape == (int(frame_shape[0]), int(frame_shape[1])):
            return self.roi
        return None

    def resolve(self, frames: Sequence[np.ndarray], known: Optional[Sequence[int]] = None) -> Roi:
        """Fix the ROI from these frames (``auto`` uses all of them, the other modes only their shape).

        ``known``: the imaging area the source reports (DICOM ultrasound regions); ``auto`` uses it instead
        of detecting one.
        """
        shape = frames[0].shape[:2]
        if self.mode == "auto" and known is not None:
            roi = clip_roi(known, shape, "the source's imaging area")
        elif self.mode == "auto":
            roi = detect_roi(frames)
        elif self.mode == "none":
            roi = (0, 0, int(shape[1]), int(shape[0]))
        elif self.mode == "spec":
            try:
                roi = self.spec.roi_for(shape)
            except JetsegError as exc:
                raise RoiError(str(exc)) from None
        else:
            assert isinstance(self.mode, list), "validated in __init__: auto, none, spec or [x, y, w, h]"
            roi = clip_roi(self.mode, shape, "--roi / roi.mode")
        self.roi = roi
        self._shape = (int(shape[0]), int(shape[1]))
        return roi
