"""What ``jetseg bench`` measures on, checked before any timing: the frames (read once through the source
layer; a live source only with a bound), the ROI each file is cropped to (decided as ``calibrate`` and
``run`` decide it) and the bundles (every candidate must be the reference's model)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np

from jetseg import evaluate
from jetseg.bundle import Bundle
from jetseg.errors import JetsegError
from jetseg.jetson.frames.roi import Roi, RoiError, RoiMode, RoiPolicy, calibrated_mode, rois_per_file
from jetseg.spec import Spec

#: ``--roi`` of bench (and its default): the mode the bundles were calibrated with, else ``spec``
BUNDLE = "bundle"

#: How long a live --data source may stay silent while bench reads its frames.
LIVE_TIMEOUT_S = 30.0


def check_same_task(reference: Bundle, candidates: Sequence[Bundle]) -> None:
    """Refuse candidates whose spec turns frames into other inputs, another task or other outputs than the
    reference's: their scores against it would be meaningless."""
    ref = reference.spec
    ref.require_task("jetseg bench", "segmentation", "enhancement", "registration")
    for cand in candidates:
        spec = cand.spec
        for what, mine, theirs in (("task", spec.task, ref.task),
                                   ("classes", spec.classes, ref.classes),
                                   ("output.kind", spec.output.kind, ref.output.kind),
                                   ("enhancement", spec.enhancement, ref.enhancement),
                                   ("registration", spec.registration, ref.registration),
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


@dataclass
class FrameRois:
    """The ROI of every benchmark frame, decided once per file.

    Attributes:
        asked: ``--roi`` as given (``bundle``, ``auto``, ``spec``, ``none`` or ``[x, y, w, h]``).
        mode: the mode used (``bundle`` resolved to what the bundles were calibrated with).
        how: why that mode (``as given``, ``as <bundle> was calibrated``, ``no bundle records one``).
        boxes: ``(x, y, w, h)`` per frame, in the frames' order.
        files: per file ``{"roi", "frame", "how"}``, as calibration.json records them.
    """

    asked: RoiMode
    mode: RoiMode
    how: str
    boxes: List[Roi] = field(default_factory=list)
    files: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    def record(self) -> Dict[str, Any]:
        """What report.json's ``roi`` holds."""
        return {"asked": self.asked, "mode": self.mode, "how": self.how, "files": self.files}

    def inputs(self, spec: Spec, frames: Sequence[Any]) -> List[Any]:
        """Each frame through ``spec.preprocess`` cropped to its ROI: ``(1, C, H, W) float32`` per frame; for a
        registration model the pair of each such frame and its known deformation (the calibration gate's
        pairs: :func:`jetseg.evaluate.deformed_pairs`), run by :func:`infer_call`."""
        xs = [spec.preprocess(f.image, roi=box) for f, box in zip(frames, self.boxes)]
        return evaluate.deformed_pairs(xs) if spec.registration is not None else xs

    @staticmethod
    def batched(inputs: Sequence[Any], batch: int) -> List[Any]:
        """Batches of ``batch`` items of :meth:`inputs` (cycling through them), pairs batched per input."""
        def cat(items: List[Any]) -> Any:
            return tuple(np.concatenate(part) for part in zip(*items)) if isinstance(items[0], tuple) \
                else np.concatenate(items)

        if batch == 1:
            return list(inputs)
        return [cat([inputs[(i + j) % len(inputs)] for j in range(batch)]) for i in range(0, len(inputs), batch)]

    def labels(self, spec: Spec, frames: Sequence[Any]) -> List[Any]:
        """Each frame's label cropped and resized like its input (None where a frame has none)."""
        return [spec.preprocess_mask(f.label, roi=box) if f.label is not None else None
                for f, box in zip(frames, self.boxes)]


def infer_call(runner: Any) -> Callable[[Any], np.ndarray]:
    """``runner.infer`` on one item of :meth:`FrameRois.inputs` (or :meth:`FrameRois.batched`): a batch, or a
    registration pair ``(moving, fixed)``."""
    reg = runner.spec.registration
    if reg is None:
        return runner.infer
    return lambda pair: runner.infer(pair[0], {reg.fixed_input: pair[1]})


def roi_mode(asked: RoiMode, bundles: Sequence[Bundle]) -> Tuple[RoiMode, str]:
    """The ROI mode for ``--roi asked`` and why: ``bundle`` becomes the mode the bundles were calibrated with
    (calibration.json ``roi.mode``; ``spec`` when none records one, as ``run`` does).

    Raises:
        JetsegError: calibrated bundles disagree (their rows would see different pixels).
    """
    if asked != BUNDLE:  # a mode RoiPolicy takes as it is (a name or a box; RoiPolicy checks it)
        return asked if isinstance(asked, (str, dict)) else list(asked), "as given"
    records = [(str(b.path), b.calibration()) for b in bundles]
    modes = {path: calibrated_mode(record) for path, record in records if record is not None}
    distinct = {str(m) for m in modes.values()}
    if len(distinct) > 1:
        raise JetsegError("--roi bundle: the bundles were calibrated with different ROI modes (%s); give --roi "
                          "auto, spec, none or x,y,w,h to crop every row alike"
                          % ", ".join("%s: %s" % item for item in sorted(modes.items())))
    if not modes:
        return "spec", "no bundle records a calibration ROI"
    path, mode = sorted(modes.items())[0]
    return mode, "as %s was calibrated" % path


def frame_rois(frames: Sequence[Any], spec: Spec, asked: RoiMode, bundles: Sequence[Bundle],
               auto_frames: int = 3) -> FrameRois:
    """The ROI of each frame (:func:`jetseg.jetson.frames.roi.rois_per_file`, as ``calibrate`` decides it).

    Raises:
        JetsegError: the ROI of a file cannot be decided (the message names the file and the fix).
    """
    mode, how = roi_mode(asked, bundles)
    out = FrameRois(asked=asked if isinstance(asked, (str, dict)) else list(asked), mode=mode, how=how)
    try:
        out.boxes = [box for _, _, box in rois_per_file(enumerate(frames), RoiPolicy(spec, mode, auto_frames),
                                                         out.files)]
    except RoiError as exc:
        raise JetsegError("--roi %s: %s; give --roi x,y,w,h, --roi spec or --roi none" % (out.asked, exc)) from None
    return out
