"""``synthetic://KIND?frames=N&seed=S&width=W&height=H&fps=F&realtime=1&loop=L&start=K&noise=NAME&level=X``

Synthetic ultrasound, endoscopy or CT frames with ground truth (``Frame.label``) and the imaging area's
bounding box in ``Frame.meta["roi"]``.

Options:
    frames: number of frames; without it the stream is endless.
    seed: the "patient" (default 0).
    width, height: frame size (default 640x480).
    fps: pacing rate with ``realtime=1`` (default 30), also reported as the native rate.
    realtime: 1 behaves like a live scanner: frame k appears k/fps after the first read (a pipeline that
        takes a while to start is not charged for it on its first frame; with ``loop``, the pictures are all
        made when the source opens); a reader that falls
        behind gets the newest frame, and the skipped ones are counted in ``dropped`` (``Frame.index`` is
        the stream position, so it jumps). 0 (default) delivers every frame as fast as asked.
    loop: render only ``L`` distinct frames (cached) and cycle them: cheap streaming for benchmarks.
    start: index of the first frame (held-out sets use other indices or seeds than training).
    noise: noisy/clean pairs for enhancement models (:mod:`jetseg.models.synthetic.noise`): ``speckle`` or
        ``lowgain`` (ultrasound), ``lowdose`` (ct), several joined by a comma. The frame is the noisy image and
        ``Frame.meta["clean"]`` the clean full frame (what ``jetseg calibrate`` and ``jetseg bench`` score
        against).
    level: strength of the noise (default 1.0).
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from jetseg.errors import JetsegError, SourceError
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.sources.base import Source

#: one synthetic picture: the frame, its label, and its clean version when noise was added (else None)
Picture = Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]


class SyntheticSource(Source):
    """Frames from :func:`jetseg.models.synthetic.make_frame`, with labels and the field of view."""

    kind = "synthetic"
    live = False

    def __init__(self, scene: str, **options: Any) -> None:
        from jetseg.models.synthetic import KINDS

        super().__init__("synthetic://" + scene)
        scene = scene.strip("/")
        if scene not in KINDS:
            raise SourceError("synthetic source kind %r is unknown; expected synthetic://%s"
                              % (scene, " or synthetic://".join(KINDS)))
        #: ``ultrasound``, ``endoscopy`` or ``ct``
        self.scene = scene
        opts = self.read_options(options)
        self.frames = opts.integer("frames", None, minimum=1)
        self.seed = opts.integer("seed", 0, minimum=0)
        self.size: Tuple[int, int] = (opts.integer("height", 480, minimum=64),
                                      opts.integer("width", 640, minimum=64))
        self.rate = float(opts.integer("fps", 30, minimum=1))
        self.realtime = opts.flag("realtime", False)
        self.live = self.realtime  # paced like a scanner: the newest frame wins, drops are counted
        self.loop = opts.integer("loop", None, minimum=1)
        self.start = opts.integer("start", 0, minimum=0)
        noise = opts.text("noise", None)
        self.level = opts.number("level", 1.0, positive=True)
        opts.done()
        #: the noises added to each frame (``Frame.meta["clean"]`` then holds the clean frame), or ()
        self.noise: Tuple[str, ...] = ()
        if noise is not None:
            from jetseg.models.synthetic.noise import parse_noise

            try:
                self.noise = parse_noise(noise, scene)
            except JetsegError as exc:
                raise SourceError(str(exc)) from None
        self._next = 0
        self._due = 0.0
        self._cache: Dict[int, Picture] = {}
        self._ahead: Optional[Tuple[int, Picture]] = None
        self.roi: Tuple[int, int, int, int] = (0, 0, self.size[1], self.size[0])

    @property
    def fps(self) -> Optional[float]:
        return self.rate

    def __len__(self) -> int:
        if self.frames is None:
            raise TypeError("synthetic://%s without frames= is endless" % self.scene)
        return self.frames

    def _open(self) -> None:
        from jetseg.models.synthetic import field_of_view

        self.roi = field_of_view(self.scene, self.size)
        self._next, self._ahead = 0, None
        self._due = 0.0  # the stream's start, set by the first read: frame k is due at _due + k / fps
        if self.realtime and self.loop is not None:  # a paced replay: every picture made before the stream starts
            for position in range(self.loop if self.frames is None else min(self.loop, self.frames)):
                self._render(position)

    def _picture(self, index: int) -> Picture:
        """``(image, label, clean)`` of frame ``index``: with ``noise``, the image is noisy and ``clean`` the frame
        as made; otherwise ``clean`` is None."""
        from jetseg.models.synthetic import make_frame

        image, label = make_frame(self.scene, index, self.seed, self.size)
        if not self.noise:
            return image, label, None
        from jetseg.models.synthetic.noise import add_noise

        return add_noise(image, self.scene, self.noise, index, self.seed, self.level), label, image

    def _render(self, position: int) -> Picture:
        """Frame ``position``: rendered once (a paced read renders it ahead of its time, then may wait for it
        more than once); with ``loop``, from the cache of the loop's pictures."""
        if self.loop is None:
            if self._ahead is None or self._ahead[0] != position:
                self._ahead = (position, self._picture(self.start + position))
            return self._ahead[1]
        slot = position % self.loop
        if slot not in self._cache:
            picture = self._picture(self.start + slot)
            for array in picture:
                if array is not None:
                    array.setflags(write=False)  # shared by every pass of the loop
            self._cache[slot] = picture
        return self._cache[slot]

    def _read(self, timeout: Optional[float]) -> Optional[Frame]:
        if self.frames is not None and self._next >= self.frames:
            self.ended = True
            return None
        stamp = time.monotonic()
        if self.realtime:
            if not self._due:
                self._render(0)
                self._due = time.monotonic()  # the first picture exists now
            # a live scanner: frame k exists from start + k/fps on; the newest one wins
            current = int((time.monotonic() - self._due) * self.rate)
            if current > self._next:
                last = current if self.frames is None else min(current, self.frames - 1)
                self.dropped += last - self._next
                self._next = last
            self._render(self._next)  # made before its time, as a scanner has its picture ready when it is due
            stamp = self._due + self._next / self.rate
            wait = stamp - time.monotonic()
            if timeout is not None and wait > timeout:
                time.sleep(max(0.0, timeout))
                return None
            if wait > 0:
                time.sleep(wait)
        position = self._next
        image, label, clean = self._render(position)
        self._next += 1
        if self.frames is not None and self._next >= self.frames:
            self.ended = True
        meta: Dict[str, Any] = {"roi": self.roi, "classes": self._classes()}
        if clean is not None:
            meta["clean"] = clean
        return Frame(index=position, image=image, timestamp=stamp, label=label,
                     source_id="synthetic://%s?seed=%d#%d" % (self.scene, self.seed, self.start + position),
                     meta=meta)

    def _classes(self) -> List[str]:
        from jetseg.models.synthetic import CLASSES

        return list(CLASSES[self.scene])

    def _close(self) -> None:
        self._cache.clear()
        self._ahead = None
