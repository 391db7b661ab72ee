"""``masks://DIR``: one mask PNG per frame and one JSON line per frame, for analysis after a run.

Layout::

    DIR/masks/000123.png   class indices (0 = background), or 0..255 with ``scale=1`` so they are visible
    DIR/frames.jsonl       one Result.record() per line: frame index, ROI, timings, class areas px / mm^2

Options: ``every=N`` keeps every N-th result the sink receives (default 1), ``png=0`` writes the JSON lines
only, ``scale=1`` writes visible masks. An existing ``frames.jsonl`` is appended to, never truncated (a
restarted daemon keeps its earlier lines; each line carries the wall-clock ``time``); a PNG of the same
frame index is replaced. Every PNG is written under a temporary name and renamed, and every line is
flushed, so a stopped run leaves no half-written file.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any, Optional

import numpy as np

from jetseg.errors import SinkError
from jetseg.jetson.sinks.base import Sink, SinkContext
from jetseg.optional import require


class MaskSink(Sink):
    """Writes ``DIR/masks/<index>.png`` and ``DIR/frames.jsonl``."""

    blocking_ok = True

    kind = "masks"

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri)
        opts = self.read_options(options)
        self.every = opts.integer("every", 1, minimum=1)
        self.png = opts.flag("png", True)
        self.scale = opts.flag("scale", False)
        opts.done()
        if not uri:
            raise SinkError("masks:// needs a directory, for example masks://out/run1")
        self.directory = Path(uri).expanduser()
        self.received = 0
        self._lines: Optional[IO[str]] = None
        self._cv2: Any = None

    @property
    def target(self) -> Optional[str]:
        return str(self.directory.resolve())

    def _open(self, context: SinkContext) -> None:
        if self.png and context.spec.task != "segmentation":
            raise SinkError("masks://%s writes class masks, and this model's spec.task is %s (no mask); use "
                            "masks://%s?png=0 for the per-frame JSON lines, or file://out.mp4 to record the "
                            "pictures" % (self.uri, context.spec.task, self.uri))
        if self.png:
            self._cv2 = require("cv2", "writing mask PNGs")
        try:
            (self.directory / "masks" if self.png else self.directory).mkdir(parents=True, exist_ok=True)
            self._lines = open(str(self.directory / "frames.jsonl"), "a", encoding="utf-8")
        except OSError as exc:
            raise SinkError("cannot write masks to %s: %s; choose a writable directory"
                            % (self.directory, exc.strerror or exc)) from None

    def _write(self, result: Any) -> None:
        assert self._lines is not None, "opened by _open"
        self.received += 1
        if (self.received - 1) % self.every:
            return
        record = result.record()
        record["time"] = round(time.time(), 3)
        try:
            if self.png:
                record["mask"] = "masks/%06d.png" % result.index
                self._write_png(self.directory / record["mask"], result.mask, result.spec.num_classes)
            self._lines.write(json.dumps(record) + "\n")
            self._lines.flush()
        except OSError as exc:
            raise SinkError("cannot write masks to %s: %s" % (self.directory, exc.strerror or exc)) from None
        self.written += 1

    def _write_png(self, path: Path, mask: np.ndarray, num_classes: int) -> None:
        data = np.ascontiguousarray(mask, dtype=np.uint8)
        if self.scale:
            data = (data.astype(np.uint16) * (255 // max(1, num_classes - 1))).clip(0, 255).astype(np.uint8)
        ok, buf = self._cv2.imencode(".png", data)
        if not ok:
            raise SinkError("could not encode the mask of frame %s as PNG" % path.stem)
        tmp = path.with_name("." + path.name + ".tmp")
        try:
            with open(str(tmp), "wb") as handle:
                handle.write(buf.tobytes())
            os.replace(str(tmp), str(path))
        except BaseException:  # a full disk: no empty or half-written temporary file is left behind
            if tmp.exists():
                tmp.unlink()
            raise

    def _close(self) -> None:
        if self._lines is not None:
            self._lines.close()
            self._lines = None


def read_mask(path: Any) -> np.ndarray:
    """Read a mask PNG written by this sink back as ``HxW uint8`` (unchanged values)."""
    cv2 = require("cv2", "reading mask PNGs")
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise SinkError("cannot read mask %s; expected a PNG written by masks://" % path)
    return mask
