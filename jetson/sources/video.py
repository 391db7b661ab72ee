"""Video files through OpenCV's ``VideoCapture``: a finite source that delivers every frame.

URI: a path (``scan.mp4``) or ``file://scan.mp4?realtime=1&loop=1``.

Options:
    realtime: ``1`` paces delivery at the container's frame rate (a replay that behaves like a scanner
        feed; it never skips frames: a slow reader falls behind the clock). Default ``0``: as fast as the
        reader asks.
    loop: ``1`` starts again at the first frame after the last one (the source then never ends).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from jetseg.errors import SourceError
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.sources.base import Source
from jetseg.optional import require

log = logging.getLogger("jetseg.sources.video")


class VideoFileSource(Source):
    """Every frame of a video file, ``HxWx3 uint8`` BGR, in order.

    ``fps`` and ``len()`` come from the container (``len()`` raises TypeError when the container does not
    say how many frames it holds). Frame ``meta`` holds ``file_frame`` (position in the file) and
    ``pos_ms`` (the frame's time in the file).
    """

    kind = "video"

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri)
        opts = self.read_options(options)
        self.realtime = opts.flag("realtime", False)
        self.loop = opts.flag("loop", False)
        opts.done()
        self.path = Path(uri)
        self.local_file = str(self.path)  # run --check says when it does not exist (Source.preflight)
        self._cap: Any = None
        self._fps: Optional[float] = None
        self._count = 0
        self._pending: Optional[np.ndarray] = None
        self._file_pos = 0
        self._t0: Optional[float] = None

    @property
    def fps(self) -> Optional[float]:
        if self._cap is None and not self.is_open:
            self._probe()
        return self._fps

    def __len__(self) -> int:
        if self._cap is None and not self.is_open:
            self._probe()
        if self._count <= 0:
            raise TypeError("video %s does not state its frame count" % self.path.name)
        return self._count

    # ------------------------------------------------------------------ hooks
    def _probe(self) -> None:
        cap = self._capture()
        cap.release()

    def _capture(self) -> Any:
        cv2 = require("cv2", "reading video files")
        if not self.path.is_file():
            raise SourceError("video file %s does not exist; expected a readable video file (.mp4, .avi, ...)"
                              % self.path)
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError("cannot open video %s: OpenCV cannot read it (not a video, an unsupported codec, "
                              "or a corrupt file); convert it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4"
                              % self.path.name)
        fps = cap.get(cv2.CAP_PROP_FPS)
        self._fps = float(fps) if fps and 0 < fps < 1000 else None
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self._count = int(count) if count and count > 0 else 0
        return cap

    def _open(self) -> None:
        self._cap = self._capture()
        ok, image = self._cap.read()
        if not ok or image is None:
            self._cap.release()
            self._cap = None
            raise SourceError("cannot decode video %s: OpenCV opened it but decoded no frame (corrupt file or "
                              "unsupported codec); convert it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4"
                              % self.path.name)
        self._pending = image
        self._file_pos = 0
        self._t0 = None
        self.ended = False

    def _next_image(self) -> Optional[np.ndarray]:
        if self._pending is not None:
            image, self._pending = self._pending, None
            return image
        ok, image = self._cap.read()
        if ok and image is not None:
            return image
        if self._count and self._file_pos < self._count:
            log.warning("video %s ended after %d of %d frames (truncated or corrupt)", self.path.name,
                        self._file_pos, self._count)
        if self.loop and self._file_pos > 0:
            self._cap.release()
            self._cap = self._capture()
            self._file_pos = 0
            ok, image = self._cap.read()
            if ok and image is not None:
                return image
        return None

    def _read(self, timeout: Optional[float]) -> Optional[Frame]:
        if self._t0 is None:
            self._t0 = time.monotonic()
        due = None
        if self.realtime and self._fps:
            due = self._t0 + self.delivered / self._fps  # paced: the frame exists from its due time on
            wait = due - time.monotonic()
            if wait > 0:
                if timeout is not None and wait > timeout:
                    time.sleep(max(timeout, 0.0))
                    return None
                time.sleep(wait)
        image = self._next_image()
        if image is None:
            self.ended = True
            return None
        pos_ms = self._file_pos * 1000.0 / self._fps if self._fps else None
        frame = Frame(index=self.delivered, image=image, timestamp=due if due is not None else time.monotonic(),
                      source_id=self.path.name,
                      meta={"file_frame": self._file_pos, "pos_ms": pos_ms, "fps": self._fps})
        self._file_pos += 1
        return frame

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self._pending = None

    def stats(self) -> dict:
        out = super().stats()
        out.update({"fps": self._fps, "frames": self._count or None, "position": self._file_pos})
        return out
