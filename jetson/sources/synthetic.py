"""``synthetic://KIND?frames=N&seed=S&width=W&height=H&fps=F&realtime=1&loop=L&start=K``

Synthetic ultrasound or endoscopy frames with ground truth (``Frame.label``) and the imaging area's
bounding box in ``Frame.meta["roi"]``.

Options:
    frames: number of frames; without it the stream is endless.
    seed: the "patient" (default 0).
    width, height: frame size (default 640x480).
    fps: pacing rate with ``realtime=1`` (default 30), also reported as the native rate.
    realtime: 1 behaves like a live scanner: frame k appears at open time + k/fps; a reader that falls
        behind gets the newest frame, and the skipped ones are counted in ``dropped`` (``Frame.index`` is
        the stream position, so it jumps). 0 (default) delivers every frame as fast as asked.
    loop: render only ``L`` distinct frames (cached) and cycle them: cheap streaming for benchmarks.
    start: index of the first frame (held-out sets use other indices or seeds than training).
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from jetseg.errors import SourceError
from jetseg.jetson.sources.base import Frame, Source

_OPTIONS = ("frames", "seed", "width", "height", "fps", "realtime", "loop", "start")


def _int(options: Dict[str, Any], key: str, default: Optional[int], low: int) -> Optional[int]:
    value = options.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        value = int(value)
    try:
        number = int(str(value))
    except ValueError:
        number = None
    if number is None or number < low:
        raise SourceError("synthetic source option %s=%r is invalid; expected an integer >= %d"
                          % (key, value, low))
    return number


class SyntheticSource(Source):
    """Frames from :func:`jetseg.models.synthetic.make_frame`, with labels and the field of view."""

    live = False

    def __init__(self, kind: str, **options: Any) -> None:
        from jetseg.models.synthetic import KINDS

        super().__init__("synthetic://" + kind, **options)
        kind = kind.strip("/")
        if kind not in KINDS:
            raise SourceError("synthetic source kind %r is unknown; expected synthetic://%s"
                              % (kind, " or synthetic://".join(KINDS)))
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise SourceError("synthetic source option %r is unknown; known options: %s"
                              % (unknown[0], ", ".join(_OPTIONS)))
        self.kind = kind
        self.frames = _int(options, "frames", None, 1)
        self.seed = int(_int(options, "seed", 0, 0) or 0)
        self.size: Tuple[int, int] = (int(_int(options, "height", 480, 64) or 480),
                                      int(_int(options, "width", 640, 64) or 640))
        self.rate = float(_int(options, "fps", 30, 1) or 30)
        self.realtime = bool(_int(options, "realtime", 0, 0))
        self.live = self.realtime  # paced like a scanner: the newest frame wins, drops are counted
        self.loop = _int(options, "loop", None, 1)
        self.start = int(_int(options, "start", 0, 0) or 0)
        self._next = 0
        self._due = 0.0
        self._cache: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
        self.roi: Tuple[int, int, int, int] = (0, 0, self.size[1], self.size[0])

    @property
    def fps(self) -> Optional[float]:
        return self.rate

    def __len__(self) -> int:
        if self.frames is None:
            raise TypeError("synthetic://%s without frames= is endless" % self.kind)
        return self.frames

    def _open(self) -> None:
        from jetseg.models.synthetic import field_of_view

        self.roi = field_of_view(self.kind, self.size)
        self._next = 0
        self._due = time.monotonic()  # the stream's start: frame k is due at _due + k / fps

    def _render(self, position: int) -> Tuple[np.ndarray, np.ndarray]:
        from jetseg.models.synthetic import make_frame

        if self.loop is None:
            return make_frame(self.kind, self.start + position, self.seed, self.size)
        slot = position % self.loop
        if slot not in self._cache:
            image, label = make_frame(self.kind, self.start + slot, self.seed, self.size)
            image.setflags(write=False)  # shared by every pass of the loop
            label.setflags(write=False)
            self._cache[slot] = (image, label)
        return self._cache[slot]

    def _read(self, timeout: Optional[float]) -> Optional[Frame]:
        if self.frames is not None and self._next >= self.frames:
            self.ended = True
            return None
        stamp = time.monotonic()
        if self.realtime:
            # a live scanner: frame k exists from start + k/fps on; the newest one wins
            current = int((time.monotonic() - self._due) * self.rate)
            if current > self._next:
                last = current if self.frames is None else min(current, self.frames - 1)
                self.dropped += last - self._next
                self._next = last
            stamp = self._due + self._next / self.rate
            wait = stamp - time.monotonic()
            if timeout is not None and wait > timeout:
                time.sleep(max(0.0, timeout))
                return None
            if wait > 0:
                time.sleep(wait)
        position = self._next
        image, label = self._render(position)
        self._next += 1
        if self.frames is not None and self._next >= self.frames:
            self.ended = True
        return Frame(index=position, image=image, timestamp=stamp, label=label,
                     source_id="synthetic://%s?seed=%d#%d" % (self.kind, self.seed, self.start + position),
                     meta={"roi": self.roi, "classes": self._classes()})

    def _classes(self) -> List[str]:
        from jetseg.models.synthetic import CLASSES

        return list(CLASSES[self.kind])

    def _close(self) -> None:
        self._cache.clear()
