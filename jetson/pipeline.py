"""The streaming pipeline: capture -> preprocess -> infer -> postprocess -> sinks.

What each stage does is separate from how stages are threaded and queued (as Holoscan separates operators
from schedulers):

- stages (:class:`Capture`, :class:`Preprocess`, :class:`Infer`, :class:`Postprocess`) are plain objects
  that turn one item into zero or more items and know nothing about threads;
- :class:`Channel` is the hand-over between two threads, with a policy: ``block`` (bounded, the producer
  waits: every frame of a finite source arrives, in order) or ``latest`` (bounded, the oldest item is
  dropped and counted: a live source never builds a backlog, the newest frame wins);
- :class:`Pipeline` wires them into threads: capture+preprocess | infer | postprocess+fan-out | one thread
  per sink. Capture and preprocessing of frame n+1 overlap inference of frame n.

Every sink has its own bounded queue. A slow sink drops frames (counted per sink) and never stalls capture
or inference; with a finite source, sinks that set ``blocking_ok`` (recordings, mask writers) get a larger
blocking queue instead, so they see every frame.

:func:`run_pipeline` is the one-call form used by the benchmarks: it returns frames, elapsed time, fps,
capture-to-sink latency percentiles, per-stage latencies and drops.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from jetseg.errors import JetsegError
from jetseg.jetson.metrics import Metrics
from jetseg.jetson.postprocess import PostProcessor
from jetseg.jetson.result import Result
from jetseg.jetson.roi import RoiError, RoiPolicy
from jetseg.jetson.sinks.base import Sink, SinkContext, open_sink, parse_sink_uri
from jetseg.jetson.sources.base import Frame, Source, open_source
from jetseg.spec import Spec

log = logging.getLogger("jetseg.pipeline")

END = object()  # end of stream, travels through channels after the last item
_EMPTY = object()  # nothing arrived within the timeout


class PipelineError(JetsegError):
    """The pipeline was misconfigured or a stage failed."""


# ====================================================================== channels (queue policy)
class Channel:
    """A bounded hand-over between two threads.

    Args:
        capacity: the most items waiting at once.
        policy: ``block`` (``put`` waits for room: backpressure) or ``latest`` (``put`` never waits; when
            full, the oldest waiting item is dropped and counted in :attr:`dropped`).
    """

    def __init__(self, capacity: int, policy: str = "block") -> None:
        if policy not in ("block", "latest"):
            raise ValueError("channel policy must be 'block' or 'latest', got %r" % policy)
        self.capacity = max(1, int(capacity))
        self.policy = policy
        self.dropped = 0
        self._items: Deque[Any] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self._aborted = False

    def put(self, item: Any) -> int:
        """Hand ``item`` over; returns how many waiting items were dropped to make room (``latest`` only)."""
        with self._cond:
            if self._closed:
                return 0
            dropped = 0
            if self.policy == "latest":
                while len(self._items) >= self.capacity:
                    self._items.popleft()
                    dropped += 1
                self.dropped += dropped
            else:
                while len(self._items) >= self.capacity and not self._aborted:
                    self._cond.wait(0.1)
                if self._aborted:
                    return 0
            self._items.append(item)
            self._cond.notify_all()
            return dropped

    def wait_room(self, timeout: float = 0.1) -> bool:
        """Wait up to ``timeout`` seconds until a ``put`` would not block; False if there is still no room.

        A producer that waits *before* it makes its next item (reads the next frame) keeps that item fresh:
        frames of a finite source are read just in time, not early, which keeps their latency low.
        """
        with self._cond:
            if len(self._items) >= self.capacity and not self._closed:
                self._cond.wait(timeout)
            return len(self._items) < self.capacity or self._closed

    def get(self, timeout: float = 0.1) -> Any:
        """The next item, :data:`END` once closed and drained, or ``_EMPTY`` after ``timeout`` seconds."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            return END if self._closed else _EMPTY

    def close(self) -> None:
        """No more items: the consumer gets END after the waiting ones."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abort(self) -> None:
        """Drop everything waiting and close (no drain)."""
        with self._cond:
            self._aborted = True
            self._closed = True
            self._items.clear()
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)


# ====================================================================== stages
class _Item:
    """One frame on its way through the pipeline (internal)."""

    __slots__ = ("frame", "roi", "tensor", "logits", "stamps", "inference_ms")

    def __init__(self, frame: Frame, stamps: Dict[str, float]) -> None:
        self.frame = frame
        self.roi: Tuple[int, int, int, int] = (0, 0, 0, 0)
        self.tensor: Optional[np.ndarray] = None
        self.logits: Optional[np.ndarray] = None
        self.stamps = stamps
        self.inference_ms = 0.0


class Capture:
    """Capture stage: reads frames from a :class:`Source`.

    Finite sources are read to their end. With ``realtime``, a file or synthetic source is paced at its
    native frame rate (``fps`` when it has none) and treated as live.

    A live source is never allowed to end the run. Sources that reconnect by themselves (they expose a
    ``reconnects`` counter, like the live capture sources) are left to do so: this stage only mirrors their
    state (``reconnecting`` after ``stall_timeout_s`` without a frame, ``running`` again at the next frame)
    and counts their reconnections. Any other live source that fails, ends or stalls is closed and reopened
    here with exponential backoff (``reconnect_initial_s`` doubling to ``reconnect_max_s``). Frames of a live
    source are renumbered so that indices keep increasing across reconnections.
    """

    name = "capture"

    def __init__(self, source: Source, realtime: bool = False, fps: Optional[float] = None,
                 stall_timeout_s: float = 5.0, reconnect_initial_s: float = 0.5, reconnect_max_s: float = 10.0,
                 metrics: Optional[Metrics] = None) -> None:
        self.source = source
        self.realtime = bool(realtime)
        self._fps = fps
        self.stall_timeout_s = float(stall_timeout_s)
        self.backoff = (float(reconnect_initial_s), float(reconnect_max_s))
        self.metrics = metrics
        self.state = "opening"
        self.seq = 0
        self._reopen = False  # this stage has to reopen the source
        self._next_backoff = self.backoff[0]
        self._retry_at = 0.0
        self._last_frame = 0.0
        self._seen_dropped = 0
        self._seen_reconnects = 0
        self._pace_start: Optional[float] = None

    @property
    def live(self) -> bool:
        """True when frames may be dropped (a live source, or a paced one)."""
        return bool(self.source.live or self.realtime)

    @property
    def self_healing(self) -> bool:
        """The source reconnects by itself (it keeps a ``reconnects`` counter)."""
        return isinstance(getattr(self.source, "reconnects", None), int)

    @property
    def fps(self) -> Optional[float]:
        native = self.source.fps if self.source.is_open else None
        return native or self._fps or (30.0 if self.realtime else None)

    def open(self) -> None:
        """Open the source. A live source that cannot be opened yet is retried (state ``reconnecting``)."""
        try:
            self.source.open()
        except (JetsegError, OSError) as exc:
            if not self.source.live:
                raise
            self._lost("cannot open: %s" % exc)
            return
        self._seen_reconnects = self._source_reconnects()
        self._set_state("running")
        self._last_frame = time.monotonic()

    def _set_state(self, state: str, note: str = "") -> None:
        self.state = state
        if self.metrics is not None:
            self.metrics.set_source_state(state, note)

    def _source_reconnects(self) -> int:
        value = getattr(self.source, "reconnects", 0)
        return value if isinstance(value, int) else 0

    def _lost(self, why: str) -> None:
        """This stage reopens the source after a backoff."""
        log.warning("source %s lost (%s); reopening in %.1f s", self.source.uri, why, self._next_backoff,
                    extra={"fields": {"event": "source_lost", "reason": why}})
        self._set_state("reconnecting", why)
        self._reopen = True
        self._retry_at = time.monotonic() + self._next_backoff
        self._next_backoff = min(self._next_backoff * 2.0, self.backoff[1])

    def _reconnect(self, stop: threading.Event) -> None:
        delay = self._retry_at - time.monotonic()
        if delay > 0:
            stop.wait(min(delay, 0.25))
            return
        self.source.close()
        try:
            self.source.open()
        except (JetsegError, OSError) as exc:
            self._lost("reopen failed: %s" % exc)
            return
        log.info("source %s reopened", self.source.uri, extra={"fields": {"event": "source_reconnected"}})
        if self.metrics is not None:
            self.metrics.reconnected()
        self._reopen = False
        self._seen_dropped = self.source.dropped
        self._seen_reconnects = self._source_reconnects()
        self._next_backoff = self.backoff[0]
        self._last_frame = time.monotonic()
        self._set_state("running")

    def read(self, stop: threading.Event) -> Any:
        """The next frame, None if nothing arrived yet, or END when a finite source is exhausted."""
        if self._reopen:
            self._reconnect(stop)
            return None
        if self.state in ("ended", "stopped"):
            return END
        live = self.source.live
        try:
            frame = self.source.read(timeout=0.2)
        except (JetsegError, OSError) as exc:
            if not live:
                raise
            self._lost(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return None
        self._count_source_drops()
        if live:
            self._count_source_reconnects()
        if frame is None:
            return self._nothing(live)
        self._last_frame = time.monotonic()
        if live:
            frame.index = self.seq
            if self.state != "running":
                self._set_state("running")
        self.seq += 1
        if self.realtime and not live:
            self._pace(stop)
        return frame

    def _nothing(self, live: bool) -> Any:
        if self.source.ended:
            if live:
                self._lost("stream ended")
                return None
            self._set_state("ended")
            return END
        if not live:
            return None
        idle = time.monotonic() - self._last_frame
        if idle > self.stall_timeout_s:
            if not self.self_healing:
                self._lost("no frame for %.1f s" % idle)
            elif self.state == "running":
                note = str(getattr(self.source, "last_error", "") or "no frame for %.1f s" % idle)
                log.warning("source %s: no frame for %.1f s (%s); it is reconnecting", self.source.uri, idle, note,
                            extra={"fields": {"event": "source_lost", "reason": note}})
                self._set_state("reconnecting", note)
        return None

    def _pace(self, stop: threading.Event) -> None:
        now = time.monotonic()
        if self._pace_start is None:
            self._pace_start = now
        due = self._pace_start + (self.seq - 1) / float(self.fps or 30.0)
        if due > now:
            stop.wait(due - now)

    def _count_source_reconnects(self) -> None:
        reconnects = self._source_reconnects()
        if reconnects > self._seen_reconnects and self.metrics is not None:
            for _ in range(reconnects - self._seen_reconnects):
                self.metrics.reconnected()
        self._seen_reconnects = reconnects

    def _count_source_drops(self) -> None:
        dropped = self.source.dropped
        if dropped > self._seen_dropped and self.metrics is not None:
            self.metrics.drop("source", dropped - self._seen_dropped)
        self._seen_dropped = dropped

    def stop(self) -> None:
        """The pipeline stopped reading (the source stays open for a following pipeline)."""
        if self.state not in ("ended", "reconnecting"):
            self._set_state("stopped")

    def resume(self) -> None:
        """Continue reading after :meth:`stop` (a new pipeline after a config reload reuses the source)."""
        if self.state == "stopped":
            self._set_state("running" if self.source.is_open else "reconnecting")
            if not self.source.is_open:
                self._reopen = True
            self._last_frame = time.monotonic()


class Preprocess:
    """ROI and :meth:`Spec.preprocess`: frame -> ``(1, C, H, W) float32``.

    With ``roi: auto`` the first frames are held back until the ROI is detected from them; they are then
    sent on in order. If no image area is found (black frames while a scanner starts), the spec's ROI is
    used for those frames and detection is retried on the next ones.
    """

    name = "preprocess"

    def __init__(self, spec: Spec, roi: RoiPolicy, metrics: Optional[Metrics] = None) -> None:
        self.spec = spec
        self.roi = roi
        self.metrics = metrics
        self._held: List[_Item] = []
        self._warned = False

    def __call__(self, item: _Item) -> List[_Item]:
        image = item.frame.image
        roi = self.roi.current(image.shape)
        if roi is None:
            if self.roi.is_auto:
                if self._held and self._held[0].frame.image.shape != image.shape:
                    out = self.flush()
                    return out + self(item)
                self._held.append(item)
                if len(self._held) < self.roi.auto_frames:
                    return []
                return self.flush()
            roi = self._resolve([image])
        item.roi = roi
        item.tensor = self.spec.preprocess(image, roi=roi)
        item.stamps["preprocessed"] = time.monotonic()
        return [item]

    def _resolve(self, images: List[np.ndarray]) -> Tuple[int, int, int, int]:
        try:
            roi = self.roi.resolve(images)
        except RoiError as exc:
            if not self.roi.is_auto:
                raise
            if not self._warned:
                log.warning("ROI auto-detection failed (%s); using the spec's ROI until it succeeds", exc)
                self._warned = True
            return self.spec.roi_for(images[0].shape)
        log.info("ROI %s for %dx%d frames (%s)", list(roi), images[0].shape[1], images[0].shape[0],
                 self.roi.mode if isinstance(self.roi.mode, str) else "fixed",
                 extra={"fields": {"event": "roi", "roi": list(roi)}})
        if self.metrics is not None:
            self.metrics.roi = roi
        return roi

    def flush(self) -> List[_Item]:
        """Release frames held back for ROI detection (at the end of the stream or when the size changes)."""
        held, self._held = self._held, []
        if not held:
            return []
        roi = self._resolve([h.frame.image for h in held])
        now = time.monotonic()
        for h in held:
            h.roi = roi
            h.tensor = self.spec.preprocess(h.frame.image, roi=roi)
            h.stamps["preprocessed"] = now
        return held


class Infer:
    """Runs the (activated) runner on the preprocessed tensor."""

    name = "infer"

    def __init__(self, runner: Any) -> None:
        self.runner = runner

    def __call__(self, item: _Item) -> List[_Item]:
        item.logits = self.runner.infer(item.tensor)
        item.inference_ms = self.runner.last_inference_ms
        item.tensor = None
        item.stamps["inferred"] = time.monotonic()
        return [item]


class Postprocess:
    """Logits -> :class:`Result` (full-frame mask, areas) with a :class:`PostProcessor`."""

    name = "postprocess"

    def __init__(self, spec: Spec, post: PostProcessor) -> None:
        self.spec = spec
        self.post = post

    def __call__(self, item: _Item) -> List[Result]:
        frame = item.frame
        spacing = frame.meta.get("pixel_spacing_mm") if frame.meta else None
        mask, areas_px, areas_mm2 = self.post.process(item.logits, frame.image.shape, item.roi, spacing)
        item.stamps["postprocessed"] = time.monotonic()
        cls = Result if isinstance(mask, np.ndarray) else _DeferredMaskResult
        return [cls(frame=frame, mask=mask, roi=item.roi, spec=self.spec, areas_px=areas_px,
                    areas_mm2=areas_mm2, stamps=item.stamps, inference_ms=item.inference_ms)]


class _DeferredMaskResult(Result):
    """A :class:`Result` whose full-frame ``mask`` is made on first use, once, by whichever sink reads it
    first (in that sink's thread). Sinks that never look at the mask (``null://``, a web viewer nobody
    watches) cost the pipeline nothing for it; the areas were computed from the model-size mask."""

    @property  # type: ignore[override]
    def mask(self) -> np.ndarray:
        value = self.__dict__["_mask"]
        if callable(value):
            with _MASK_LOCK:
                value = self.__dict__["_mask"]
                if callable(value):
                    value = value()
                    self.__dict__["_mask"] = value
        return value  # type: ignore[no-any-return]

    @mask.setter
    def mask(self, value: Any) -> None:
        self.__dict__["_mask"] = value


_MASK_LOCK = threading.Lock()


# ====================================================================== the pipeline (threads and queues)
def runs_on_cpu(runner: Any) -> bool:
    """True when the runner computes on the CPU (ONNX Runtime's CPU provider, PyTorch eager)."""
    return getattr(runner, "provider", None) == "cpu" or getattr(runner, "name", "") == "torch"


def sink_names(uris: Sequence[str]) -> List[str]:
    """Metric labels for sinks: the URI scheme, numbered when repeated (``file``, ``file-2``)."""
    names: List[str] = []
    for uri in uris:
        kind = parse_sink_uri(uri)[0]
        name, n = kind, 2
        while name in names:
            name, n = "%s-%d" % (kind, n), n + 1
        names.append(name)
    return names


class Pipeline:
    """Runs capture -> preprocess -> infer -> postprocess -> sinks in threads until stopped or exhausted.

    The pipeline does not own its components: the caller opens the source (or :class:`Capture`), activates
    the runner and opens the sinks before :meth:`start`, and closes them after :meth:`wait`.

    Args:
        capture: a :class:`Capture` (or a plain :class:`Source`, wrapped with defaults).
        runner: an activated runner (``jetseg.jetson.runners``).
        sinks: ``[(name, sink), ...]`` of opened sinks.
        spec: the model's spec (default: the runner's).
        roi: a :class:`RoiPolicy` (default: the spec's ROI).
        post: a :class:`PostProcessor` (default: decode only).
        metrics: where events go (default: a new :class:`Metrics`).
        queue_size: capacity of the hand-overs between stages for finite sources (frames are read when there
            is room, so 1 keeps capture-to-sink latency near two inference periods while still overlapping
            capture and preprocessing with inference).
        sink_queue / sink_queue_blocking: capacity of a sink's queue (dropping / blocking_ok with a finite source).
        max_frames / duration_s: stop capturing after this many frames / seconds (then drain).
        post_thread: post-process in a thread of its own (True) or right after inference in the inference
            thread (False). None (default): its own thread when the model runs on an accelerator, where it
            overlaps with inference for free; in the inference thread when the model runs on the CPU,
            where a separate thread would only take cores from the inference (measured: a few % of fps).
    """

    def __init__(self, capture: Union[Capture, Source], runner: Any, sinks: Sequence[Tuple[str, Sink]],
                 spec: Optional[Spec] = None, roi: Optional[RoiPolicy] = None, post: Optional[PostProcessor] = None,
                 metrics: Optional[Metrics] = None, queue_size: int = 1, sink_queue: int = 4,
                 sink_queue_blocking: int = 16, max_frames: Optional[int] = None,
                 duration_s: Optional[float] = None, post_thread: Optional[bool] = None) -> None:
        self.metrics = metrics if metrics is not None else Metrics()
        if not isinstance(capture, Capture):
            capture = Capture(capture, metrics=self.metrics)
        self.capture = capture
        if capture.metrics is None:
            capture.metrics = self.metrics
        self.runner = runner
        self.spec = spec if spec is not None else runner.spec
        self.sinks = list(sinks)
        self.max_frames = max_frames
        self.duration_s = duration_s
        self.preprocess = Preprocess(self.spec, roi if roi is not None else RoiPolicy(self.spec), self.metrics)
        self.infer = Infer(runner)
        self.postprocess = Postprocess(self.spec, post if post is not None else PostProcessor(self.spec))
        live = capture.live
        policy = "latest" if live else "block"
        self._to_infer = Channel(1 if live else queue_size, policy)
        self._to_post = Channel(1 if live else queue_size, policy)
        self._to_sinks: List[Channel] = []
        for _, sink in self.sinks:
            blocking = not live and bool(getattr(sink, "blocking_ok", False))
            self._to_sinks.append(Channel(sink_queue_blocking if blocking else sink_queue,
                                          "block" if blocking else "latest"))
        self.post_thread = (not runs_on_cpu(runner)) if post_thread is None else bool(post_thread)
        self._sink_channels = list(zip([name for name, _ in self.sinks], self._to_sinks))
        self._fan_out = _FanOut(self)
        for name in ("capture", "preprocess", "infer", "postprocess"):
            self.metrics.add_stage(name)
        for name, _ in self.sinks:
            self.metrics.add_sink(name)
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []
        self._error: Optional[BaseException] = None
        self._error_lock = threading.Lock()
        self.started: Optional[float] = None
        self.finished: Optional[float] = None
        self.captured = 0
        self._stop_time: Optional[float] = None
        self.beats: Dict[str, float] = {}

    # ------------------------------------------------------------------ control
    def start(self) -> Pipeline:
        """Start the threads (returns at once)."""
        if self._threads:
            raise PipelineError("this pipeline was already started; build a new one")
        self.started = time.monotonic()
        self.capture.resume()
        targets: List[Tuple[str, Callable[[], None]]] = [("capture", self._capture_loop)]
        if self.post_thread:
            targets.append(("infer", lambda: self._stage_loop(self._to_infer, self.infer, self._to_post)))
            targets.append(("postprocess", self._post_loop))
        else:  # post-processing right after inference, in the same thread (no hand-over)
            targets.append(("infer", lambda: self._stage_loop(self._to_infer, self.infer, self._fan_out)))
        for (name, sink), channel in zip(self.sinks, self._to_sinks):
            targets.append(("sink:" + name, self._sink_loop_for(name, sink, channel)))
        for name, target in targets:
            thread = threading.Thread(target=self._guard(name, target), name="jetseg-" + name, daemon=True)
            self._threads.append(thread)
        for name, _ in targets:
            self.beats[name] = self.started
        for thread in self._threads:
            thread.start()
        return self

    def responsive(self, limit: float) -> bool:
        """Every thread is alive and went round its loop within ``limit`` seconds (for the systemd watchdog).

        A capture thread blocked while reopening a lost source is not counted as stuck."""
        if not self._threads or not all(t.is_alive() for t in self._threads):
            return False
        now = time.monotonic()
        reconnecting = self.capture.state == "reconnecting"
        return all(now - beat < limit for name, beat in list(self.beats.items())
                   if not (name == "capture" and reconnecting))

    def stop(self) -> None:
        """Stop capturing; frames already captured still go through every stage (drain)."""
        self._stop.set()

    def abort(self) -> None:
        """Stop at once, dropping frames in flight."""
        self._stop.set()
        for channel in [self._to_infer, self._to_post] + self._to_sinks:
            channel.abort()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    @property
    def error(self) -> Optional[BaseException]:
        return self._error

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait for the pipeline to finish (source exhausted, or stopped and drained).

        Returns False if still running after ``timeout`` seconds. Raises the first stage failure.
        A capture thread stuck in a blocking source call is not waited for once :meth:`stop` was called:
        the rest of the pipeline drains without it.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        capture = self._threads[0] if self._threads else None
        while True:
            alive = [t for t in self._threads if t.is_alive()]
            if alive == [capture] and self._stop.is_set():
                self._stuck_capture()  # everything downstream has drained; do not wait for a blocked source
                break
            if not alive:
                break
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if capture in alive and self._stop.is_set():
                self._stuck_capture()
            alive[-1].join(0.1)
        if self._error is not None:
            raise self._error
        if self.finished is None:
            self.finished = time.monotonic()
        return True

    def _stuck_capture(self) -> None:
        """After stop(), give a capture thread blocked inside the source 2 s, then drain without it."""
        if self._stop_time is None:
            self._stop_time = time.monotonic()
        elif time.monotonic() - self._stop_time > 2.0 and not self._to_infer.closed:
            log.warning("capture did not stop within 2 s (blocked in the source); draining without it")
            self._to_infer.close()

    # ------------------------------------------------------------------ thread bodies
    def _guard(self, name: str, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # a failed stage stops the whole pipeline; wait() re-raises it
                with self._error_lock:
                    if self._error is None:
                        self._error = exc
                        if not isinstance(exc, JetsegError):
                            log.error("pipeline stage %s failed", name, exc_info=True)
                self.abort()
        return run

    def _capture_loop(self) -> None:
        capture, metrics, stop = self.capture, self.metrics, self._stop
        out = self._to_infer
        deadline = None if self.duration_s is None else self.started + self.duration_s  # type: ignore[operator]
        beats = self.beats
        just_in_time = out.policy == "block"
        try:
            while not stop.is_set():
                beats["capture"] = time.monotonic()
                if self.max_frames is not None and self.captured >= self.max_frames:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if just_in_time and not out.wait_room():
                    continue  # inference is still busy: read the next frame when it can be taken
                t0 = time.perf_counter()
                frame = capture.read(stop)
                if frame is END:
                    break
                if frame is None:
                    continue
                metrics.stage("capture", time.perf_counter() - t0)
                self.captured += 1
                now = time.monotonic()
                stamp = frame.timestamp
                stamps = {"captured": stamp if stamp and abs(now - stamp) < 300.0 else now}
                t1 = time.perf_counter()
                items = self.preprocess(_Item(frame, stamps))
                if items:
                    metrics.stage("preprocess", (time.perf_counter() - t1) / len(items))
                for item in items:
                    metrics.drop("pipeline", out.put(item))
            for item in self.preprocess.flush():
                metrics.drop("pipeline", out.put(item))
        finally:
            capture.stop()
            out.close()

    def _stage_loop(self, inbox: Channel, stage: Callable[[Any], List[Any]], outbox: Channel) -> None:
        metrics, name, beats = self.metrics, stage.name, self.beats  # type: ignore[attr-defined]
        try:
            while True:
                item = inbox.get()
                beats[name] = time.monotonic()
                if item is _EMPTY:
                    continue
                if item is END:
                    return
                t0 = time.perf_counter()
                results = stage(item)
                metrics.stage(name, time.perf_counter() - t0)
                for result in results:
                    metrics.drop("pipeline", outbox.put(result))
        finally:
            outbox.close()

    def _post_loop(self) -> None:
        inbox, beats = self._to_post, self.beats
        try:
            while True:
                item = inbox.get()
                beats["postprocess"] = time.monotonic()
                if item is _EMPTY:
                    continue
                if item is END:
                    return
                self._deliver(item)
        finally:
            self._fan_out.close()

    def _deliver(self, item: _Item) -> int:
        """Post-process one item and hand the Result to every sink's queue (drops counted per sink)."""
        metrics = self.metrics
        t0 = time.perf_counter()
        result = self.postprocess(item)[0]
        now = time.monotonic()
        metrics.stage("postprocess", time.perf_counter() - t0)
        metrics.frame(now)
        result.stamps["sink"] = now
        for name, channel in self._sink_channels:
            dropped = channel.put(result)
            if dropped:
                metrics.sink_dropped(name, dropped)
        return 0

    def _sink_loop_for(self, name: str, sink: Sink, inbox: Channel) -> Callable[[], None]:
        def loop() -> None:
            metrics, failures, beats, key = self.metrics, 0, self.beats, "sink:" + name
            while True:
                result = inbox.get()
                beats[key] = time.monotonic()
                if result is _EMPTY:
                    continue
                if result is END:
                    return
                t0 = time.perf_counter()
                try:
                    sink.write(result)
                except Exception as exc:  # a failing sink must not stop the others; counted, logged, degraded
                    failures += 1
                    metrics.sink_error(name)
                    if failures == 1 or failures % 100 == 0:
                        log.error("sink %s failed to write frame %d (%d failures so far): %s", name,
                                  result.index, failures, exc, exc_info=failures == 1 and not
                                  isinstance(exc, JetsegError),
                                  extra={"fields": {"event": "sink_error", "sink": name}})
                    continue
                done = time.monotonic()
                metrics.sink_written(name, time.perf_counter() - t0, done - result.stamps["captured"])
        return loop

    # ------------------------------------------------------------------ results
    def summary(self) -> Dict[str, Any]:
        """Frames, elapsed seconds, fps, latency percentiles (ms), drops, per-sink counts."""
        m = self.metrics
        stats = m.stats(recent=False)
        end = self.finished or time.monotonic()
        elapsed = end - self.started if self.started is not None else 0.0
        span = (m.last_frame - m.first_frame) if m.first_frame is not None and m.last_frame is not None else 0.0
        steady = (m.frames - 1) / span if m.frames > 1 and span > 0 else 0.0
        return {
            "frames": m.frames,
            "captured": self.captured,
            "elapsed_s": round(elapsed, 4),
            "fps": round(steady, 3),
            "fps_wall": round(m.frames / elapsed, 3) if elapsed > 0 else 0.0,
            "latency_ms": stats["latency_ms"],
            "dropped": dict(stats["dropped"]),
            "sinks": stats["sinks"],
            "roi": stats["roi"],
            "live": self.capture.live,
            "source": {"uri": self.capture.source.uri, "state": self.capture.state,
                       "reconnects": m.reconnects},
        }


class _FanOut:
    """The infer thread's outbox when post-processing runs in that thread: deliver at once."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def put(self, item: Any) -> int:
        return self.pipeline._deliver(item)

    def close(self) -> None:
        for _, channel in self.pipeline._sink_channels:
            channel.close()


# ====================================================================== one-call form (benchmarks)
def run_pipeline(bundle: Any, source_uri: str, sink_uris: Sequence[str] = ("null://",), backend: str = "onnxrt",
                 duration: Optional[float] = None, max_frames: Optional[int] = None,
                 backend_options: Optional[Dict[str, Any]] = None, source_options: Optional[Dict[str, Any]] = None,
                 realtime: bool = False, roi: Union[str, Sequence[int]] = "spec", smoothing: float = 0.0,
                 min_area_px: int = 0, queue_size: int = 1, sink_queue: int = 4, runner: Any = None,
                 metrics: Optional[Metrics] = None, roi_only: bool = False,
                 post_thread: Optional[bool] = None) -> Dict[str, Any]:
    """Run the full pipeline once and return its statistics (see docs/runtime.md).

    Args:
        bundle: a :class:`~jetseg.bundle.Bundle` or its path.
        source_uri: any source URI (``synthetic://ultrasound?frames=200``, a video file, ...).
        sink_uris: sink URIs (``null://`` measures the pipeline itself).
        backend: runner name; ``backend_options`` are passed to it. Ignored when ``runner`` is given
            (an already activated runner, reused as is, e.g. the one the bare-runner timing used).
        duration / max_frames: stop after this many seconds / frames; a source without an end needs one.
        realtime: pace the source at its frame rate and drop frames like a live source.
        roi, smoothing, min_area_px: as in the daemon config.
        post_thread: see :class:`Pipeline` (None: chosen from where the runner computes).

    Returns:
        ``{"frames", "captured", "elapsed_s", "fps", "fps_wall", "latency_ms": {"stages": {name: {count,
        mean, p50, p90, p95, p99, max}}, "capture_to_sink": {...}}, "dropped": {"source", "pipeline"},
        "sinks": {name: {"written", "dropped", "errors", "latency_ms"}}, "roi", "live", "source",
        "backend"}``. ``fps`` is the steady rate from the first to the last processed frame.
    """
    from jetseg.bundle import Bundle
    from jetseg.jetson.runners import open_runner

    bundle = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    source = open_source(source_uri, **dict(source_options or {}))
    if duration is None and max_frames is None:
        try:
            len(source)
        except TypeError:
            raise PipelineError("source %s has no end; give duration or max_frames" % source_uri) from None
    names = sink_names(sink_uris)
    sinks = [(name, open_sink(uri)) for name, uri in zip(names, sink_uris)]
    own_runner = runner is None
    if own_runner:
        runner = open_runner(backend, bundle, **dict(backend_options or {}))
    metrics = metrics if metrics is not None else Metrics(info={"model": bundle.name, "backend": runner.name,
                                                                "source": source_uri})
    capture = Capture(source, realtime=realtime, metrics=metrics)
    opened: List[Sink] = []
    pipeline: Optional[Pipeline] = None
    try:
        if own_runner:
            runner.activate()
        capture.open()
        context = SinkContext(spec=bundle.spec, fps=capture.fps, roi_only=roi_only, health=metrics.health,
                              metrics=metrics.exposition, stats=metrics.stats)
        for _, sink in sinks:
            sink.open(context)
            opened.append(sink)
        pipeline = Pipeline(capture, runner, sinks, spec=bundle.spec,
                            roi=RoiPolicy(bundle.spec, roi), post=PostProcessor(bundle.spec, smoothing, min_area_px),
                            metrics=metrics, queue_size=queue_size, sink_queue=sink_queue,
                            max_frames=max_frames, duration_s=duration, post_thread=post_thread)
        pipeline.start()
        try:
            pipeline.wait()
        except KeyboardInterrupt:
            pipeline.stop()
            pipeline.wait(timeout=10.0)
            raise
    finally:
        if pipeline is not None and pipeline.running:
            pipeline.abort()
        metrics.stopped = True
        for sink in opened:
            sink.close()
        source.close()
        if own_runner:
            runner.deactivate()
    summary = pipeline.summary()
    summary["backend"] = runner.describe()
    return summary
