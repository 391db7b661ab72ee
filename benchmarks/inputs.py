"""What ``jetseg bench`` measures on, checked before any timing: the frames (read once through the source
layer; a live source only with a bound) and the bundles (every candidate must be the reference's model)."""
from __future__ import annotations

import time
from typing import Any, List, Sequence

from jetseg.bundle import Bundle
from jetseg.errors import JetsegError

#: How long a live --data source may stay silent while bench reads its frames.
LIVE_TIMEOUT_S = 30.0


def check_same_task(reference: Bundle, candidates: Sequence[Bundle]) -> None:
    """Refuse candidates whose spec turns frames into other inputs, another task or other outputs than the
    reference's: their scores against it would be meaningless."""
    ref = reference.spec
    ref.require_task("jetseg bench", "segmentation", "enhancement")  # registration: docs/tasks.md
    for cand in candidates:
        spec = cand.spec
        for what, mine, theirs in (("task", spec.task, ref.task),
                                   ("classes", spec.classes, ref.classes),
                                   ("output.kind", spec.output.kind, ref.output.kind),
                                   ("enhancement", spec.enhancement, ref.enhancement),
                                   ("input.size", list(spec.input.size), list(ref.input.size)),
                                   ("input.channels", spec.input.channels, ref.input.channels),
                                   ("input.color_order", spec.input.color_order, ref.input.color_order),
                                   ("input.mean", spec.input.mean, ref.input.mean),
                                   ("input.std", spec.input.std, ref.input.std),
                                   ("input.roi", spec.input.roi, ref.input.roi)):
            if mine != theirs:
                raise JetsegError("bundle %s has %s %s but the --reference %s has %s; compare bundles of the same "
                                  "model (the reference is the FP32 bundle the others were made from)"
                                  % (cand.path, what, mine, reference.path, theirs))


def load_frames(data: str, count: int, live_ok: bool = False) -> List[Any]:
    """Read up to ``count`` frames from a source URI (through the one source layer).

    A live source (camera, stream) never ends by itself: it is refused unless ``live_ok`` (the user bounded
    the read with ``--frames N``), and then a stream silent for ``LIVE_TIMEOUT_S`` is an error.
    """
    from jetseg.jetson.sources import open_source

    frames: List[Any] = []
    source = open_source(data)
    if source.live and not live_ok:
        raise JetsegError("--data %s is a live source, which never ends; give --frames N to read N frames from "
                          "it, or record it to a video file first" % data)
    with source:
        deadline = time.monotonic() + LIVE_TIMEOUT_S
        while len(frames) < count and not source.ended:
            frame = source.read(timeout=0.5)
            if frame is not None:
                frames.append(frame)
                deadline = time.monotonic() + LIVE_TIMEOUT_S
            elif time.monotonic() > deadline:
                raise JetsegError("--data %s delivered no frame for %.0f s (%d of %d read); check the stream"
                                  % (data, LIVE_TIMEOUT_S, len(frames), count))
    if not frames:
        raise JetsegError("source %s delivered no frames; give a source with at least one frame" % data)
    return frames
