"""Frozen input: a live source that keeps delivering the same picture (a capture card whose input froze, a
scanner's output stuck) is not live, even though frames arrive on time.

:class:`FrozenInput` keeps a cheap digest of each frame (CRC-32 of its bytes; for pictures over
:data:`DIGEST_BYTES`, of every k-th row so that about that much is read) and reports the input as frozen
once the digest has stayed the same for ``after_s`` seconds and at least :data:`MIN_FRAMES` frames. Only
bit-identical pictures count: a digital capture of a frozen screen repeats exactly, while a live scan's
speckle or sensor noise changes every frame (so does an analog capture's noise: a frozen picture behind an
analog link is not detected).
"""
from __future__ import annotations

import zlib
from typing import Optional

import numpy as np

#: bytes of a picture the digest reads at most (about 0.6 ms per frame on this project's x86 machine)
DIGEST_BYTES = 1 << 20
#: identical frames in a row needed besides the time, so that a slow source is not called frozen at once
MIN_FRAMES = 3
#: seconds of identical pictures before the input counts as frozen (``source.frozen_after_s``)
DEFAULT_AFTER_S = 1.0


def digest(image: np.ndarray) -> int:
    """CRC-32 of ``image``'s bytes (every k-th row of a picture larger than :data:`DIGEST_BYTES`)."""
    step = max(1, -(-int(image.nbytes) // DIGEST_BYTES))
    rows = image[::step] if step > 1 else image
    return zlib.crc32(np.ascontiguousarray(rows).data)


class FrozenInput:
    """Tells how long a stream has repeated the same picture.

    Args:
        after_s: seconds of identical pictures before :meth:`see` reports the input frozen; 0 turns the check
            off.
    """

    def __init__(self, after_s: float = DEFAULT_AFTER_S) -> None:
        self.after_s = float(after_s)
        self._digest: Optional[int] = None
        self._since = 0.0  # when the current picture first arrived (monotonic seconds)
        self._repeats = 0

    def see(self, image: np.ndarray, now: float) -> Optional[float]:
        """Take the next frame's picture, captured at ``now``; return the seconds the input has shown this
        same picture when that makes it frozen, else None."""
        if self.after_s <= 0:
            return None
        value = digest(image)
        if value != self._digest:
            self._digest, self._since, self._repeats = value, now, 0
            return None
        self._repeats += 1
        held = now - self._since
        return held if held >= self.after_s and self._repeats >= MIN_FRAMES else None

    def reset(self) -> None:
        """Forget the last picture (after a reconnection the next one starts afresh)."""
        self._digest = None
