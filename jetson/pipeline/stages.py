"""The pipeline's stages: each turns one item into zero or more items and knows nothing about threads.

A stage has one shape (as a Holoscan operator): :meth:`Stage.start`, :meth:`Stage.process` (one item in, a
list out), :meth:`Stage.flush` (at the end of the stream: items still held back), :meth:`Stage.stop`. The
loop in :mod:`jetseg.jetson.pipeline.loop` runs every stage; a scheduler decides which stages share a thread.

    ReadFrames -> Preprocess -> Infer -> Postprocess -> SinkWriter (one per sink)
    (None -> Item)  (Item -> Item)  (Item -> Item)  (Item -> Result)  (Result -> nothing)
"""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from jetseg.errors import JetsegError
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.frames.metrics import Metrics
from jetseg.jetson.frames.postprocess import AnyPostProcessor
from jetseg.jetson.frames.reference import Reference
from jetseg.jetson.frames.register import RegistrationPostProcessor
from jetseg.jetson.frames.result import Result
from jetseg.jetson.frames.roi import RoiError, RoiPolicy
from jetseg.jetson.frames.slot import END
from jetseg.jetson.pipeline.reader import SourceReader
from jetseg.jetson.runners.base import Runner
from jetseg.jetson.sinks.base import Sink
from jetseg.spec import Spec

log = logging.getLogger("jetseg.pipeline")


class PipelineError(JetsegError):
    """The pipeline was misconfigured or a stage failed."""


class Item:
    """One frame on its way through the pipeline: the frame, its ROI, tensors and per-stage time stamps."""

    __slots__ = ("frame", "roi", "roi_trusted", "tensor", "extra", "reference", "logits", "stamps", "inference_ms")

    def __init__(self, frame: Frame, stamps: Dict[str, float]) -> None:
        self.frame = frame
        self.roi: Tuple[int, int, int, int] = (0, 0, 0, 0)
        self.roi_trusted = True
        self.tensor: Optional[np.ndarray] = None
        self.extra: Optional[Dict[str, np.ndarray]] = None  # a registration model's fixed image, by input name
        self.reference = 0  # the generation of that fixed image (jetseg.jetson.frames.reference)
        self.logits: Optional[np.ndarray] = None
        self.stamps = stamps
        self.inference_ms = 0.0


class Stage:
    """Base of the stages. ``name`` labels the stage's metrics and heartbeat.

    Attributes:
        timed: the loop records the time :meth:`process` took per item it produced (``metrics.stage``).
        ended: a source stage (one without input) sets it when there is nothing more to read.
    """

    name = "stage"
    timed = True
    ended = False

    def __init__(self, metrics: Optional[Metrics] = None) -> None:
        self.metrics = metrics

    def start(self) -> None:
        """Called once, in the stage's thread, before the first item."""

    def process(self, item: Any) -> List[Any]:
        """Turn one item into zero or more items (a source stage gets None and reads one)."""
        raise NotImplementedError

    def flush(self) -> List[Any]:
        """At the end of the stream: the items still held back."""
        return []

    def stop(self) -> None:
        """Called once, in the stage's thread, after the last item (also after a failure)."""

    def inbox_dropped(self, count: int) -> None:
        """``count`` items meant for this stage were dropped (newest wins)."""
        if self.metrics is not None:
            self.metrics.drop("pipeline", count)


class ReadFrames(Stage):
    """Source stage: one frame from a :class:`SourceReader` per call, until the source ends or a limit
    (``max_frames`` frames, ``duration_s`` seconds, both counted for this pipeline) is reached.

    :attr:`captured` is derived from the reader's count, which goes on across pipelines (a reload's new
    pipeline reads on from the same reader).
    """

    name = "capture"

    def __init__(self, reader: SourceReader, max_frames: Optional[int] = None,
                 duration_s: Optional[float] = None, metrics: Optional[Metrics] = None) -> None:
        super().__init__(metrics)
        self.reader = reader
        self.max_frames = max_frames
        self.duration_s = duration_s
        self.ended = False
        self._read_before = reader.read_count
        self._deadline: Optional[float] = None

    @property
    def captured(self) -> int:
        """Frames this pipeline read (the reader's count since :meth:`start`)."""
        return self.reader.read_count - self._read_before

    def start(self) -> None:
        self._read_before = self.reader.read_count
        self.reader.resume()
        if self.duration_s is not None:
            self._deadline = time.monotonic() + self.duration_s

    def process(self, item: Any = None) -> List[Item]:
        if self.max_frames is not None and self.captured >= self.max_frames:
            self.ended = True
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self.ended = True
        if self.ended:
            return []
        frame = self.reader.read()
        if frame is END:
            self.ended = True
            return []
        if not isinstance(frame, Frame):
            return []
        now = time.monotonic()
        stamp = frame.timestamp
        if stamp and abs(now - stamp) < 300.0:  # the source's own clock (docs/sources.md, "Capture time")
            if self.metrics is not None:
                self.metrics.source_delay.add(now - stamp)
        else:
            stamp = now
        return [Item(frame, {"captured": stamp, "read": now})]

    def stop(self) -> None:
        self.reader.stop()


class Preprocess(Stage):
    """ROI and :meth:`Spec.preprocess`: frame -> ``(1, C, H, W) float32``.

    With ``roi: auto`` the first frames are held back until the ROI is detected from them; they are then
    sent on in order. If no image area is found for sure (black frames while a scanner starts, a screen of
    text and bars), the whole frame is used for those frames, marked untrusted (``roi=1`` sinks refuse
    them rather than record burned-in text), and detection is retried on the next ones.

    A registration model's fixed image comes from ``reference`` (prepared alike, in frame order) and goes to
    the runner as an extra input named ``registration.fixed_input``.
    """

    name = "preprocess"

    def __init__(self, spec: Spec, roi: RoiPolicy, metrics: Optional[Metrics] = None,
                 reference: Optional[Reference] = None) -> None:
        super().__init__(metrics)
        self.spec = spec
        self.roi = roi
        self.reference = reference
        self._held: List[Item] = []
        self._warned = False
        self._trusted = True

    def process(self, item: Item) -> List[Item]:
        image = item.frame.image
        roi = self.roi.current(image.shape)
        if roi is None:
            if self.roi.is_auto:
                if self._held and self._held[0].frame.image.shape != image.shape:
                    out = self.flush()
                    return out + self.process(item)
                self._held.append(item)
                if len(self._held) < self.roi.auto_frames:
                    return []
                return self.flush()
            roi = self._resolve([item])
        item.roi = roi
        item.roi_trusted = self._trusted
        self._prepare(item)
        item.stamps["preprocessed"] = time.monotonic()
        return [item]

    def _prepare(self, item: Item) -> None:
        """The model's input(s) of one frame whose ROI is known."""
        item.tensor = tensor = self.spec.preprocess(item.frame.image, roi=item.roi)
        if self.reference is not None:
            assert self.spec.registration is not None
            fixed, item.reference = self.reference.fixed_for(tensor, item.frame.image.shape, item.roi,
                                                             item.frame.index)
            item.extra = {self.spec.registration.fixed_input: fixed}

    def _resolve(self, items: List[Item]) -> Tuple[int, int, int, int]:
        self._trusted = True
        images = [i.frame.image for i in items]
        meta = items[0].frame.meta or {}
        known = meta.get("roi") if meta.get("roi_source") else None
        try:
            roi = self.roi.resolve(images, known=known)
        except RoiError as exc:
            if not self.roi.is_auto:
                raise
            if not self._warned:
                log.warning("ROI auto-detection is not sure (%s); using the whole frame until it is (roi=1 sinks "
                            "refuse these frames)", exc)
                self._warned = True
            self._trusted = False
            return (0, 0, int(images[0].shape[1]), int(images[0].shape[0]))
        log.info("ROI %s for %dx%d frames (%s)", list(roi), images[0].shape[1], images[0].shape[0],
                 self.roi.origin(meta["roi_source"] if known is not None else None),
                 extra={"fields": {"event": "roi", "roi": list(roi), "kind": self.roi.kind}})
        if self.metrics is not None:
            self.metrics.roi = roi
        return roi

    def flush(self) -> List[Item]:
        """Release frames held back for ROI detection (at the end of the stream or when the size changes)."""
        held, self._held = self._held, []
        if not held:
            return []
        roi = self._resolve(held)
        now = time.monotonic()
        for h in held:
            h.roi = roi
            h.roi_trusted = self._trusted
            self._prepare(h)
            h.stamps["preprocessed"] = now
        return held


class Infer(Stage):
    """Runs the (activated) runner on the preprocessed tensor."""

    name = "infer"

    def __init__(self, runner: Runner, metrics: Optional[Metrics] = None) -> None:
        super().__init__(metrics)
        self.runner = runner

    def process(self, item: Item) -> List[Item]:
        if item.tensor is None:
            raise PipelineError("frame %d reached inference without an input tensor" % item.frame.index)
        if item.extra is None:
            item.logits = self.runner.infer(item.tensor)
        else:
            item.logits = self.runner.infer(item.tensor, extra_inputs=item.extra)
        item.inference_ms = self.runner.last_inference_ms
        item.tensor = item.extra = None
        item.stamps["inferred"] = time.monotonic()
        return [item]


class Postprocess(Stage):
    """Model output -> :class:`Result` with the task's post-processor (segmentation: mask and areas; enhancement:
    the enhanced frame; registration: the warped frame, flow and landmarks, and the frame's motion for the
    metrics); counts the frame as processed."""

    name = "postprocess"

    def __init__(self, spec: Spec, post: AnyPostProcessor, metrics: Optional[Metrics] = None) -> None:
        super().__init__(metrics)
        self.spec = spec
        self.post = post

    def process(self, item: Item) -> List[Result]:
        frame = item.frame
        spacing = frame.meta.get("pixel_spacing_mm") if frame.meta else None
        if item.logits is None:
            raise PipelineError("frame %d reached post-processing without model outputs" % frame.index)
        task: Dict[str, Any] = {"reference": item.reference} if isinstance(self.post, RegistrationPostProcessor) else {}
        result = self.post.result(item.logits, frame, item.roi, spacing, stamps=item.stamps,
                                  inference_ms=item.inference_ms, roi_trusted=item.roi_trusted, **task)
        now = item.stamps["postprocessed"] = time.monotonic()
        if self.metrics is not None:
            self.metrics.frame(now, item.stamps.get("captured"), item.inference_ms / 1e3)
            if result.motion is not None:
                self.metrics.motion.add(result.motion)
        result.stamps["sink"] = now
        return [result]


class SinkWriter(Stage):
    """Writes each :class:`Result` to one sink. A failing write is counted, logged and skipped: one broken
    sink must not stop the others."""

    timed = False  # writes are recorded per sink (write time and capture-to-sink latency)

    def __init__(self, label: str, sink: Sink, metrics: Metrics) -> None:
        super().__init__(metrics)
        self.label = label
        self.name = "sink:" + label
        self.sink = sink
        self.failures = 0

    @property
    def blocking_ok(self) -> bool:
        """The sink wants every frame of a finite source (recordings, mask writers)."""
        return bool(getattr(self.sink, "blocking_ok", False))

    def process(self, result: Result) -> List[Any]:
        metrics = self.metrics
        assert metrics is not None
        t0 = time.perf_counter()
        try:
            self.sink.write(result)
        except Exception as exc:  # a failing sink must not stop the others; counted, logged, degraded
            self.failures += 1
            metrics.sink_error(self.label)
            if self.failures == 1 or self.failures % 100 == 0:
                log.error("sink %s failed to write frame %d (%d failures so far): %s", self.label, result.index,
                          self.failures, exc, exc_info=self.failures == 1 and not isinstance(exc, JetsegError),
                          extra={"fields": {"event": "sink_error", "sink": self.label}})
            return []
        done = time.monotonic()
        metrics.sink_written(self.label, time.perf_counter() - t0, done - result.stamps["captured"])
        return []

    def inbox_dropped(self, count: int) -> None:
        assert self.metrics is not None
        self.metrics.sink_dropped(self.label, count)
