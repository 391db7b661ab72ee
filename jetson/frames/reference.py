"""The fixed image of a registration model at run time: which frame every new frame is registered against.

``postprocess.reference`` (``jetseg run --reference``; docs/runtime.md, "Registration"):

- ``first`` (the default): the first frame after the pipeline starts (a start, a config reload), and again
  after the ROI or the frame size changes;
- ``previous``: each frame against the one before (motion tracking); the first frame against itself;
- a path to an image file: that image, prepared like the frames (cropped with the frame's ROI when it has the
  frame's size, taken whole otherwise, e.g. a picture saved with ``roi=1``);
- and at any time, the frame on screen: :meth:`Reference.use_frame` (the web viewer's ``POST /reference``)
  makes it the reference from the next frame on (refused with ``previous``, which has no single reference).

Both images go through the same :meth:`Spec.preprocess` (ROI, resize, normalisation). Each change of the
reference gets a new *generation* number, which the post-processing reads to restart the tracked landmarks.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Optional, Tuple

import numpy as np

from jetseg.errors import JetsegError
from jetseg.spec import Spec

#: The reference modes that are not a file.
REFERENCE_MODES = ("first", "previous")


class ReferenceError(JetsegError):
    """The reference image cannot be used (a file that is not an image, a key press with ``previous``)."""


def read_reference_image(path: str) -> np.ndarray:
    """The image file ``path`` as a frame (``HxW`` grey or ``HxWx3`` BGR, uint8 or uint16), or a
    ReferenceError that says what to give instead."""
    import cv2

    hint = "give postprocess.reference (--reference) first, previous or an image file (PNG, JPEG, TIFF, BMP)"
    if not Path(path).is_file():
        raise ReferenceError("postprocess.reference %r is not a file; %s" % (path, hint))
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ReferenceError("postprocess.reference %r is not an image OpenCV can read; %s" % (path, hint))
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def check_reference(reference: Any, task: str) -> None:
    """Refuse a reference a model cannot use: a file that is not an image; ``previous`` or a file for a
    model that is not a registration model (``first`` is the default of every task)."""
    if task != "registration":
        if reference != "first":
            raise ReferenceError("postprocess.reference is %r; only registration models have a reference image "
                                 "(this model's spec.task is %s: remove it)" % (reference, task))
        return
    if reference not in REFERENCE_MODES:
        read_reference_image(reference)


class Reference:
    """The fixed tensor for each frame of one stream (see the module docstring).

    :meth:`fixed_for` is called in frame order by the preprocessing stage; :meth:`use_frame` from any thread.

    Args:
        spec: the registration model's spec (both images are prepared by ``spec.preprocess``).
        mode: ``first``, ``previous`` or an image file's path.
    """

    def __init__(self, spec: Spec, mode: str = "first") -> None:
        check_reference(mode, spec.task)
        self.spec = spec
        self.mode = mode
        self._file = read_reference_image(mode) if mode not in REFERENCE_MODES else None
        self._key: Optional[Tuple[Any, ...]] = None
        self._fixed: Optional[np.ndarray] = None
        self._pending: Optional[Tuple[Tuple[Any, ...], np.ndarray, int]] = None
        self._lock = threading.Lock()
        self.generation = 0
        self.frame_index: Optional[int] = None  # the frame that is the reference (None: a file, or previous)

    def fixed_for(self, tensor: np.ndarray, image_shape: Tuple[int, ...], roi: Tuple[int, int, int, int],
                  index: int) -> Tuple[np.ndarray, int]:
        """``(fixed tensor, generation)`` for the frame ``index`` whose moving tensor is ``tensor``."""
        key = (tuple(roi), tuple(image_shape[:2]))
        with self._lock:
            pending, self._pending = self._pending, None
        if key != self._key:  # a new ROI or frame size: a reference of the old geometry means nothing
            self._key, self._fixed = key, None
            if self._file is not None:
                self._fixed = self._prepare_file(roi, image_shape)
                self._renew(None)
        if pending is not None and pending[0] == key:
            self._fixed = pending[1]
            self._renew(pending[2])
        if self._fixed is None:  # first: this frame; previous: the first frame against itself
            self._fixed = tensor
            self._renew(index if self.mode == "first" else None)
        fixed = self._fixed
        if self.mode == "previous":
            self._fixed = tensor
        return fixed, self.generation

    def _renew(self, index: Optional[int]) -> None:
        self.generation += 1
        self.frame_index = index

    def _prepare_file(self, roi: Tuple[int, int, int, int], image_shape: Tuple[int, ...]) -> np.ndarray:
        image = self._file
        assert image is not None
        if tuple(image.shape[:2]) == tuple(image_shape[:2]):
            return self.spec.preprocess(image, roi=roi)
        return self.spec.preprocess(image, roi=(0, 0, int(image.shape[1]), int(image.shape[0])))

    def use_frame(self, image: np.ndarray, roi: Tuple[int, int, int, int], index: int) -> None:
        """Make this frame (as captured, with the ROI it was processed with) the reference from the next frame on."""
        if self.mode == "previous":
            raise ReferenceError("reference=previous registers each frame against the one before, so there is no "
                                 "reference to set; run with reference=first (or a file) to pick one")
        tensor = self.spec.preprocess(image, roi=roi)
        with self._lock:
            self._pending = ((tuple(roi), tuple(image.shape[:2])), tensor, index)
