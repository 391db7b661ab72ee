"""A relative ROI: ``[x, y, w, h]`` in fractions of the frame, the one rule spec.yaml's ``input.roi:
{relative: ...}`` and ``--roi relative:x,y,w,h`` share, and its scaling to a frame's pixels."""
from __future__ import annotations

from typing import Any, Sequence, Tuple

#: what a relative ROI must be, for error messages (spec.yaml's ``{relative: ...}``, ``--roi relative:...``)
RELATIVE_RULE = ("fractions of the frame (x, y in [0, 1), width, height in (0, 1], x + width and y + height at "
                 "most 1)")


def is_relative(fractions: Any) -> bool:
    """True for a relative ROI ``[x, y, w, h]``: fractions of the frame's width (x, w) and height (y, h), see
    :data:`RELATIVE_RULE`."""
    return (isinstance(fractions, (list, tuple)) and len(fractions) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in fractions)
            and all(0.0 <= v < 1.0 for v in fractions[:2]) and all(0.0 < v <= 1.0 for v in fractions[2:])
            and fractions[0] + fractions[2] <= 1.0 + 1e-6 and fractions[1] + fractions[3] <= 1.0 + 1e-6)


def relative_box(fractions: Sequence[float], frame_shape: Sequence[int]) -> Tuple[int, int, int, int]:
    """A relative ROI (checked by :func:`is_relative`) in the pixels of a frame of this shape (``(H, W, ...)``):
    ``round(fraction x size)``, at least one pixel, inside the frame."""
    height, width = int(frame_shape[0]), int(frame_shape[1])
    fx, fy, fw, fh = (float(v) for v in fractions)
    x, y = min(width - 1, int(round(fx * width))), min(height - 1, int(round(fy * height)))
    w = max(1, min(width - x, int(round(fw * width))))
    return x, y, w, max(1, min(height - y, int(round(fh * height))))
