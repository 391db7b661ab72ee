"""Schedulers: how the graph's stages are put on threads, and the hand-over policy between them.

- :class:`ThreadedScheduler`: capture+preprocess | infer (+ postprocess) | postprocess | one thread per sink.
  Capture and preprocessing of frame n+1 overlap inference of frame n. For a live source every hand-over is
  a one-item :class:`~jetseg.jetson.frames.slot.Slot` (newest frame wins, drops counted); for a finite source a
  :class:`~jetseg.jetson.frames.slot.Queue` (nothing lost, frames read just in time). Each sink has its own bounded
  queue: newest wins (a slow sink drops, counted per sink, and never stalls the others), except sinks with
  ``blocking_ok`` on a finite source, which get a larger blocking queue and see every frame. Which stages
  start a thread of their own is its ``own_thread``: with none, a frame goes from capture to mask in the
  source's thread and only the sinks have threads of their own (the pipeline's ``latency`` schedule).
- :class:`SerialScheduler`: everything in the calling thread, one frame at a time through every stage
  (``for frame in source: preprocess, infer, postprocess, write``): one core, tests, a reading of the flow.

Both run :func:`jetseg.jetson.pipeline.loop.run_part`; they differ only in where the hand-overs are.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Collection, Dict, List, Optional

from jetseg.errors import JetsegError
from jetseg.jetson.frames.metrics import Metrics
from jetseg.jetson.frames.slot import Queue, Slot
from jetseg.jetson.pipeline.graph import Node
from jetseg.jetson.pipeline.loop import run_part
from jetseg.jetson.pipeline.settings import PipelineConfig
from jetseg.jetson.pipeline.stages import SinkWriter

log = logging.getLogger("jetseg.pipeline")


class Scheduler:
    """Runs a graph: :meth:`start`, then :meth:`wait`; :meth:`stop` (drain) or :meth:`abort` (drop)."""

    def __init__(self) -> None:
        self.beats: Dict[str, float] = {}
        self.error: Optional[BaseException] = None
        self._stop = threading.Event()
        self._root: Optional[Node] = None
        self._metrics: Optional[Metrics] = None

    def plan(self, root: Node) -> None:
        """Decide the hand-overs (sets each node's ``inbox``)."""
        raise NotImplementedError

    def start(self, root: Node, metrics: Metrics) -> None:
        """Plan the hand-overs and run the graph (see the subclasses for when this returns)."""
        raise NotImplementedError

    def _prepare(self, root: Node, metrics: Metrics) -> None:
        self._root, self._metrics = root, metrics
        self.plan(root)
        for node in root.walk():
            if node.stage.timed:
                metrics.add_stage(node.stage.name)

    def stop(self) -> None:
        """Stop reading the source; items already read still go through every stage (drain)."""
        self._stop.set()

    def abort(self) -> None:
        """Stop at once, dropping the items in flight."""
        self._stop.set()
        if self._root is not None:
            for node in self._root.walk():
                if node.inbox is not None:
                    node.inbox.abort()

    @property
    def running(self) -> bool:
        raise NotImplementedError

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until finished (False if still running after ``timeout`` s); raises the first stage failure."""
        raise NotImplementedError

    def responsive(self, limit: float, excused: Collection[str] = ()) -> bool:
        """Every part went round its loop within ``limit`` seconds (parts named in ``excused`` aside)."""
        raise NotImplementedError

    def _failed(self, name: str, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
            if not isinstance(exc, JetsegError):
                log.error("pipeline stage %s failed", name, exc_info=exc)
        self.abort()


class SerialScheduler(Scheduler):
    """Every stage in the calling thread: :meth:`start` runs the whole stream and returns at its end."""

    def __init__(self) -> None:
        super().__init__()
        self._running = False

    def plan(self, root: Node) -> None:
        for node in root.walk():
            node.inbox = None

    def start(self, root: Node, metrics: Metrics) -> None:
        self._prepare(root, metrics)
        self._running = True
        try:
            run_part(root, metrics, self.beats, self._stop)
        except BaseException as exc:  # kept for wait(), as the threaded scheduler does
            self._failed(root.name, exc)
        finally:
            self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def wait(self, timeout: Optional[float] = None) -> bool:
        if self.error is not None:
            raise self.error
        return not self._running

    def responsive(self, limit: float, excused: Collection[str] = ()) -> bool:
        now = time.monotonic()
        return self._running and all(now - beat < limit for name, beat in list(self.beats.items())
                                     if name not in excused)


class ThreadedScheduler(Scheduler):
    """A thread per part of the graph; see the module docstring for the hand-over policy.

    Args:
        live: the source is live (or paced): newest-wins hand-overs everywhere.
        settings: the capacities of the hand-overs (``queue_size`` between stages for a finite source,
            ``sink_queue`` / ``sink_queue_blocking`` for a sink: dropping / ``blocking_ok`` with a finite
            source); default: :class:`PipelineConfig`'s.
        own_thread: names of the (non-sink) stages that start a thread of their own.
    """

    def __init__(self, live: bool, settings: Optional[PipelineConfig] = None,
                 own_thread: Collection[str] = ("infer", "postprocess")) -> None:
        super().__init__()
        self.live = live
        self.settings = settings if settings is not None else PipelineConfig()
        self.own_thread = set(own_thread)
        self._threads: List[threading.Thread] = []
        self._stop_time: Optional[float] = None

    def plan(self, root: Node) -> None:
        for node in root.walk():
            stage = node.stage
            if node is root:
                node.inbox = None
            elif isinstance(stage, SinkWriter):
                blocking = not self.live and stage.blocking_ok
                size = self.settings.sink_queue_blocking if blocking else self.settings.sink_queue
                node.inbox = Queue(size) if blocking else Slot(size)
            elif stage.name in self.own_thread:
                node.inbox = Slot(1) if self.live else Queue(self.settings.queue_size)
            else:
                node.inbox = None

    def start(self, root: Node, metrics: Metrics) -> None:
        self._prepare(root, metrics)
        parts = [root] + [node for node in root.walk() if node.inbox is not None]
        now = time.monotonic()
        for part in parts:
            self.beats[part.name] = now
            thread = threading.Thread(target=self._guarded, args=(part, metrics), name="jetseg-" + part.name,
                                      daemon=True)
            self._threads.append(thread)
        for thread in self._threads:
            thread.start()

    def _guarded(self, part: Node, metrics: Metrics) -> None:
        try:
            run_part(part, metrics, self.beats, self._stop if part is self._root else None)
        except BaseException as exc:  # a failed stage stops the whole pipeline; wait() re-raises it
            self._failed(part.name, exc)

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def responsive(self, limit: float, excused: Collection[str] = ()) -> bool:
        if not self._threads or not all(t.is_alive() for t in self._threads):
            return False
        now = time.monotonic()
        return all(now - beat < limit for name, beat in list(self.beats.items()) if name not in excused)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """A source thread stuck in a blocking source call is not waited for once :meth:`stop` was called:
        after 2 s the rest of the pipeline drains without it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        source = self._threads[0] if self._threads else None
        while True:
            alive = [t for t in self._threads if t.is_alive()]
            if alive == [source] and self._stop.is_set():
                break  # everything downstream has drained; do not wait for a blocked source
            if not alive:
                break
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if source in alive and self._stop.is_set():
                self._stuck_source()
            alive[-1].join(0.1)
        if self.error is not None:
            raise self.error
        return True

    def _stuck_source(self) -> None:
        if self._stop_time is None:
            self._stop_time = time.monotonic()
        elif time.monotonic() - self._stop_time > 2.0 and self._root is not None:
            boxes = [node.inbox for node in self._root.handovers() if node.inbox is not None]
            if boxes and not boxes[0].closed:
                log.warning("capture did not stop within 2 s (blocked in the source); draining without it")
                for box in boxes:
                    box.close()
