"""The region of interest: the part of the frame the model looks at.

Scanner video (an ultrasound machine's HDMI output, an endoscopy tower) shows the image in a sector or a
circle surrounded by black, with burned-in text (patient name, date, depth, gain) around it. The ROI is
cropped before preprocessing (``Spec.preprocess(frame, roi=...)``) and masks are mapped back onto the full
frame (``Spec.mask_to_frame``). It comes from, in order of precedence:

- the config / ``--roi x,y,w,h`` (frame pixels) or ``--roi relative:x,y,w,h`` (fractions of the frame, so
  that one box fits frames of every size: ``{relative: [x, y, w, h]}`` in YAML and calibration.json),
- ``auto``: the imaging area the source knows (``Frame.meta["roi"]`` with a ``roi_source``: DICOM's validated
  SequenceOfUltrasoundRegions), else detected from the first frames by :func:`detect_roi`,
- ``spec``: the bundle's ``input.roi`` (or the whole frame),
- ``none``: the whole frame.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from jetseg.errors import JetsegError
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.frames.screen import ImagingArea, find_imaging_area, grey8
from jetseg.records import CalibrationRecord
from jetseg.roibox import RELATIVE_RULE, is_relative, relative_box
from jetseg.spec import Spec, warn_clipped

Roi = Tuple[int, int, int, int]
#: a ROI mode: a name (``auto``, ``spec``, ``none``), ``[x, y, w, h]`` in frame pixels, or
#: ``{"relative": [x, y, w, h]}`` in fractions of the frame
RoiMode = Union[str, List[int], Dict[str, List[float]]]
MODE_NAMES = ("auto", "spec", "none")

log = logging.getLogger("jetseg.roi")


class RoiError(JetsegError):
    """The ROI does not fit the frames, or none could be detected."""


def detect_imaging_area(frames: Sequence[np.ndarray], min_fraction: float = 0.05) -> ImagingArea:
    """Find the imaging area of scanner video (sector, rectangle, circle, octagon, views; see
    :mod:`jetseg.jetson.frames.screen`), never the burned-in text, rulers or bars around it.

    Args:
        frames: one or more frames of the same shape (``HxW`` or ``HxWx3`` BGR, uint8/uint16/float).
        min_fraction: the area must cover at least this fraction of the frame.

    Returns:
        The :class:`ImagingArea` (``box`` is the largest view's ``(x, y, w, h)`` in frame pixels).

    Raises:
        RoiError: no frames, frames of several sizes, or no imaging area (all dark, only text and bars).
    """
    if len(frames) == 0:
        raise RoiError("ROI detection needs at least one frame; received none")
    shape = frames[0].shape[:2]
    for image in frames:
        if image.shape[:2] != shape:
            raise RoiError("ROI detection needs frames of one size; received %s and %s"
                           % (shape, image.shape[:2]))
    area = find_imaging_area(frames, min_fraction)
    if area is not None:
        return area
    if max(int(grey8(image).max()) for image in frames) == int(grey8(frames[0]).min()):
        raise RoiError("no image area found in the first frames (all dark); use --roi x,y,w,h or roi: spec")
    raise RoiError("no imaging area found: no region of at least %.0f%% of the %dx%d frame that is not text, a "
                   "band or a strip; use --roi x,y,w,h or roi: spec" % (100 * min_fraction, shape[1], shape[0]))


def detect_roi(frames: Sequence[np.ndarray], min_fraction: float = 0.05) -> Roi:
    """The box of :func:`detect_imaging_area`: ``(x, y, w, h)`` in frame pixels (raises RoiError likewise)."""
    return detect_imaging_area(frames, min_fraction).box


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


def as_mode(mode: Any, names: Sequence[str] = MODE_NAMES) -> Optional[RoiMode]:
    """``mode`` in its one normal form, or None when it is none of the ROI modes.

    Args:
        mode: a name in ``names``, ``[x, y, w, h]`` in frame pixels (integers, x, y >= 0, w, h > 0), or
            ``{"relative": [x, y, w, h]}`` in fractions of the frame (:func:`jetseg.spec.is_relative`).
        names: the names allowed (the daemon's config adds ``bundle``).

    Returns:
        The name, a list of 4 ints, or ``{"relative": [4 floats]}``; None when ``mode`` is not valid.
    """
    if isinstance(mode, str):
        return mode if mode in names else None
    if isinstance(mode, dict):
        fractions = mode.get("relative")
        if set(mode) == {"relative"} and fractions is not None and is_relative(fractions):
            return {"relative": [float(v) for v in fractions]}
        return None
    if (isinstance(mode, (list, tuple)) and len(mode) == 4
            and all(isinstance(v, int) and not isinstance(v, bool) for v in mode)
            and mode[0] >= 0 and mode[1] >= 0 and mode[2] > 0 and mode[3] > 0):
        return [int(v) for v in mode]
    return None


def expected_mode(mode: Any, names: Sequence[str] = MODE_NAMES) -> str:
    """What :func:`as_mode` expected, for an error about ``mode``: the rule of the form it was given in."""
    if isinstance(mode, (list, tuple)):
        return "[x, y, width, height] in frame pixels (x, y >= 0; width, height > 0)"
    if isinstance(mode, dict):
        return "{relative: [x, y, width, height]} as " + RELATIVE_RULE
    plain = [name for name in MODE_NAMES if name in names]
    extra = [name for name in names if name not in MODE_NAMES]
    return "%s or [x, y, width, height] (frame pixels) or {relative: [x, y, width, height]} (fractions of the " \
           "frame)%s" % (", ".join(plain), "".join(", or %s" % name for name in extra))


def calibrated_mode(record: Optional[CalibrationRecord]) -> RoiMode:
    """The ROI mode a bundle was calibrated with (calibration.json ``roi.mode``: ``auto``, ``spec``, ``none``,
    ``[x, y, w, h]`` or ``{relative: [x, y, w, h]}``), or ``spec`` when it records none (FP32 bundles, older
    calibrations): the daemon's default ``roi: bundle``, so that run crops what calibration cropped, without a
    re-export."""
    mode = as_mode(record.roi.get("mode")) if record is not None else None
    return mode if mode is not None else "spec"


class RoiPolicy:
    """Decides the ROI for a stream of frames, one of ``spec``, ``auto``, ``none``, a fixed ``[x, y, w, h]`` or
    ``{"relative": [x, y, w, h]}`` (fractions of each frame size).

    ``auto`` needs the first ``auto_frames`` frames (:attr:`needs_frames`); the pipeline holds them back,
    calls :meth:`resolve` with them, and then sends them on in order. The ROI is re-resolved when the frame
    size changes (a reconnected source at another resolution).
    """

    def __init__(self, spec: Spec, mode: Union[RoiMode, Sequence[int]] = "spec", auto_frames: int = 3) -> None:
        normal = as_mode(mode)
        if normal is None:
            raise RoiError("ROI mode %r is unknown; expected %s" % (mode, expected_mode(mode)))
        self.spec = spec
        self.mode: RoiMode = normal
        self.auto_frames = max(1, int(auto_frames))
        self.roi: Optional[Roi] = None
        self.area: Optional[ImagingArea] = None  # what ``auto`` detected last (None: known, or another mode)
        self._shape: Optional[Tuple[int, int]] = None

    @property
    def is_auto(self) -> bool:
        return self.mode == "auto"

    @property
    def kind(self) -> Optional[str]:
        """The shape ``auto`` detected last (sector, rectangle, circle, ...), None when not detected."""
        return self.area.kind if self.area is not None else None

    def origin(self, source: Optional[str] = None) -> str:
        """How the last ROI was decided, for the log: ``auto: found a sector 585x284 at 168,66``, ``auto:
        from <source>`` (``source``: what the source's known imaging area came from), ``spec``, ``none`` or
        ``fixed`` or ``relative``."""
        if self.area is not None:
            return "auto: found a %s" % self.area.describe()
        if self.is_auto and source:
            return "auto: from %s" % source
        if isinstance(self.mode, dict):
            return "relative %s" % self.mode["relative"]
        return self.mode if isinstance(self.mode, str) else "fixed"

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
        self.area = None
        if self.mode == "auto" and known is not None:
            roi = clip_roi(known, shape, "the source's imaging area")
        elif self.mode == "auto":
            self.area = detect_imaging_area(frames)
            roi = self.area.box
        elif self.mode == "none":
            roi = (0, 0, int(shape[1]), int(shape[0]))
        elif self.mode == "spec":
            try:
                roi = self.spec.roi_for(shape)
            except JetsegError as exc:
                raise RoiError(str(exc)) from None
        elif isinstance(self.mode, dict):
            roi = relative_box(self.mode["relative"], shape)
        else:
            assert isinstance(self.mode, list), "validated in __init__ by as_mode"
            roi = clip_roi(self.mode, shape, "--roi / roi.mode")
        self.roi = roi
        self._shape = (int(shape[0]), int(shape[1]))
        return roi


def file_of(frame: Frame, position: int) -> str:
    """The file or sequence a frame of a finite source belongs to: its source id without the ``#frame``
    suffix (its stream position when the source gives no id)."""
    return str(frame.source_id or position).split("#", 1)[0]


def rois_per_file(frames: Iterable[Tuple[int, Frame]], policy: RoiPolicy,
                  rois: Dict[str, Dict[str, Any]]) -> Iterator[Tuple[int, Frame, Roi]]:
    """``(position, Frame, roi)`` for the frames of a finite source, the ROI decided once per file (or
    sequence) by ``policy`` from the file's first ``policy.auto_frames`` frames (``auto``: its DICOM region
    tags first, else the imaging area they show; the other modes: from its first frame), as the pipeline
    decides it at the start of a stream. ``calibrate`` and ``bench`` both crop their frames this way.

    Args:
        frames: ``(position in the stream, Frame)`` in stream order.
        policy: the :class:`RoiPolicy` of the mode asked for.
        rois: filled with ``{file: {"roi": [x, y, w, h], "frame": [w, h], "how": ...}}`` (``how``:
            :meth:`RoiPolicy.origin`); a file seen again at the same frame size keeps its ROI.

    Raises:
        RoiError: the ROI of a file cannot be decided (``auto`` not sure, a box outside the frame); the
            message starts with the file's name.
    """
    held: List[Tuple[int, Frame]] = []

    def release() -> Iterator[Tuple[int, Frame, Roi]]:
        position, first = held[0]
        name = file_of(first, position)
        meta = first.meta or {}
        known = meta.get("roi") if meta.get("roi_source") else None
        try:
            box = policy.resolve([f.image for _, f in held], known=known)
        except RoiError as exc:
            raise RoiError("%s: %s" % (name, exc)) from None
        how = policy.origin(meta.get("roi_source") if known is not None else None)
        rois[name] = {"roi": list(box), "frame": [int(first.image.shape[1]), int(first.image.shape[0])],
                      "how": how}
        log.info("%s: ROI %s (%s)", name, list(box), how)
        for item in held:
            yield item[0], item[1], box
        del held[:]

    needed = policy.auto_frames if policy.is_auto else 1
    for position, frame in frames:
        name = file_of(frame, position)
        seen = rois.get(name)
        if seen is not None and seen["frame"] == [int(frame.image.shape[1]), int(frame.image.shape[0])]:
            x, y, w, h = (int(v) for v in seen["roi"])
            yield position, frame, (x, y, w, h)
            continue
        if held and (file_of(held[0][1], held[0][0]) != name or held[0][1].image.shape != frame.image.shape):
            yield from release()
        held.append((position, frame))
        if len(held) >= needed:
            yield from release()
    if held:
        yield from release()
