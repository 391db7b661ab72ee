"""Synthetic scans with ground truth, for demos, tests, training and benchmarks.

    from jetseg.models.synthetic import make_frame, field_of_view
    image, mask = make_frame("ultrasound", index=0, seed=0)       # HxWx3 uint8 BGR, HxW uint8
    x, y, w, h = field_of_view("ultrasound", (480, 640))          # the sector's bounding box

Frames are deterministic from ``(seed, index)``. Within a scene of ``CLIP_LENGTH`` frames everything moves
smoothly (a cine loop); each scene has its own tissue, lesions or polyps. Different seeds are different
"patients": train on some seeds or index ranges, hold out others. Noisy/clean pairs for enhancement
models: :mod:`jetseg.models.synthetic.noise`.
"""
from __future__ import annotations

import importlib
from typing import Any, Dict, List, Tuple

import numpy as np

from jetseg.errors import JetsegError
from jetseg.models.synthetic.common import CLIP_LENGTH

KINDS = ("ultrasound", "endoscopy", "ct")

#: class names per kind (index 0 is background)
CLASSES: Dict[str, List[str]] = {"ultrasound": ["background", "lesion"], "endoscopy": ["background", "polyp"],
                                  "ct": ["background", "lesion"]}


def _module(kind: str) -> Any:
    if kind not in KINDS:
        raise JetsegError("unknown synthetic kind %r; expected one of %s" % (kind, ", ".join(KINDS)))
    return importlib.import_module("jetseg.models.synthetic." + kind)


def _check_size(size: Any) -> Tuple[int, int]:
    ok = (isinstance(size, (list, tuple)) and len(size) == 2
          and all(isinstance(v, (int, np.integer)) and v >= 64 for v in size))
    if not ok:
        raise JetsegError("synthetic frame size %r is invalid; expected (height, width), each at least 64 "
                          "pixels" % (size,))
    return int(size[0]), int(size[1])


def make_frame(kind: str, index: int, seed: int = 0,
               size: Tuple[int, int] = (480, 640)) -> Tuple[np.ndarray, np.ndarray]:
    """One synthetic frame with its ground truth.

    Args:
        kind: ``ultrasound``, ``endoscopy`` or ``ct`` (an axial slice in a soft-tissue window).
        index: frame index (>= 0); consecutive indices move smoothly within a scene.
        seed: the "patient"; frames are a pure function of ``(seed, index)``.
        size: ``(height, width)`` of the frame.

    Returns:
        ``(image, mask)``: ``HxWx3 uint8`` BGR and ``HxW uint8`` class indices (0 background, 1 target).
    """
    if int(index) < 0:
        raise JetsegError("synthetic frame index %r is negative; expected 0 or more" % (index,))
    return _module(kind).make_frame(int(index), int(seed), _check_size(size))


def field_of_view(kind: str, size: Tuple[int, int] = (480, 640)) -> Tuple[int, int, int, int]:
    """The bounding box ``(x, y, w, h)`` of the imaging area (ultrasound sector, endoscope or CT circle)."""
    return _module(kind).field_of_view(_check_size(size))


__all__ = ["CLASSES", "CLIP_LENGTH", "KINDS", "field_of_view", "make_frame"]
