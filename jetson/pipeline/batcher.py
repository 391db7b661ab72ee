"""One runner for several streams: the batcher takes the newest frame of each stream that has one and runs
them as one batch.

Each stream's pipeline is built as for one stream; its runner is a :class:`StreamPort`, whose ``infer``
hands the frame's tensor to the :class:`Batcher` and waits for its logits. The batcher's thread collects, per
stream, the newest waiting tensor (a one-item :class:`~jetseg.jetson.frames.slot.Slot`: newest wins), and
runs a batch as soon as every stream has one, the batch is full, or ``max_delay_s`` has passed since the
oldest waiting tensor arrived; a stream that has nothing waiting (a slow or stalled one) delays the others by
at most ``max_delay_s``. When more streams wait than the batch holds, the streams left out go first in the
next batch (round robin), so none starves.

    stream a: capture -> preprocess -> [port a] --.                    .--> postprocess -> sinks (stream a)
    stream b: capture -> preprocess -> [port b] ---+-- batcher thread --+--> postprocess -> sinks (stream b)
    stream c: capture -> preprocess -> [port c] --'   runner.infer(N)  '--> postprocess -> sinks (stream c)

A model with more inputs (a registration model's fixed image, each stream its own) gets them batched alike:
every input is concatenated in the same stream order.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from jetseg.jetson.frames.metrics import Reservoir
from jetseg.jetson.frames.slot import EMPTY, END, Slot
from jetseg.jetson.pipeline.stages import PipelineError
from jetseg.jetson.runners.base import Runner

#: the default ``max_delay_s`` as a share of the frame period (at 30 fps: 8.3 ms)
DELAY_SHARE = 0.25


def default_max_delay_s(fps: Optional[float]) -> float:
    """A quarter of the frame period (``fps`` unknown: 30 fps): the longest a frame waits for a batch."""
    return DELAY_SHARE / (fps if fps else 30.0)


class _Request:
    """One frame's tensor waiting for its logits."""

    __slots__ = ("tensor", "extra", "arrived", "done", "logits", "error", "model_ms", "batch")

    def __init__(self, tensor: np.ndarray, extra: Optional[Dict[str, np.ndarray]] = None) -> None:
        self.tensor = tensor
        self.extra = extra or {}  # the model's other inputs (a registration model's fixed image), batched alike
        self.arrived = time.monotonic()
        self.done = threading.Event()
        self.logits: Optional[np.ndarray] = None
        self.error: Optional[BaseException] = None
        self.model_ms = 0.0
        self.batch = 0


class Batcher:
    """Runs ``runner`` on batches of the newest frame of each stream (see the module docstring).

    Args:
        runner: an activated runner; its ``batch_size`` is the largest batch unless ``max_batch`` is smaller.
        max_batch: the most frames in one batch (None: ``runner.batch_size``).
        max_delay_s: the longest the oldest waiting frame waits for frames of other streams.

    Attributes:
        batches, frames: batches run and frames in them.
        sizes: ``{batch size: count}``.
        waited: seconds each frame waited from its arrival until its batch started.
    """

    def __init__(self, runner: Runner, max_batch: Optional[int] = None, max_delay_s: float = 0.0083) -> None:
        limit = runner.batch_size
        if max_batch is not None and (not isinstance(max_batch, int) or isinstance(max_batch, bool)
                                      or not 1 <= max_batch <= limit):
            raise PipelineError("batch size %r: expected an integer 1..%d (the runner's batch_size)"
                                % (max_batch, limit))
        if max_delay_s < 0:
            raise PipelineError("batch max delay %r s: expected a number of seconds >= 0" % max_delay_s)
        self.runner = runner
        self.max_batch = max_batch if max_batch is not None else limit
        self.max_delay_s = float(max_delay_s)
        self._slots: Dict[str, Slot] = {}
        self._order: List[str] = []  # round robin: streams left out of a full batch move to the front
        self._arrived = threading.Condition(threading.Lock())
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.error: Optional[BaseException] = None
        self.batches = 0
        self.frames = 0
        self.sizes: Dict[int, int] = {}
        self.waited = Reservoir()
        self.beat = time.monotonic()

    # ------------------------------------------------------------------ streams
    def port(self, stream: str) -> StreamPort:
        """The (activated) runner stream ``stream``'s pipeline uses (one per stream; names are unique)."""
        if stream in self._slots:
            raise PipelineError("stream %r has a port already; stream names must be unique" % stream)
        with self._arrived:
            self._slots[stream] = Slot(1)
            self._order.append(stream)
        return StreamPort(self, stream).activate()

    def submit(self, stream: str, tensor: np.ndarray, extra: Optional[Dict[str, np.ndarray]] = None) -> _Request:
        """Hand one frame's ``(1, C, H, W)`` tensor (and its other inputs by name) over (newest wins per stream);
        wait on the request."""
        if self._stop.is_set() or self._thread is None:
            raise PipelineError("the batcher is not running; start() it before the streams' pipelines")
        request = _Request(tensor, extra)
        with self._arrived:
            slot = self._slots[stream]
            waiting = slot.get(0) if len(slot) else None  # a frame the batch did not take yet: superseded
            slot.put(request)
            self._arrived.notify_all()
        if waiting is not None and waiting is not EMPTY and waiting is not END:
            waiting.error = PipelineError("stream %r: frame superseded by a newer one before its batch ran" % stream)
            waiting.done.set()
        return request

    # ------------------------------------------------------------------ the thread
    def start(self) -> Batcher:
        if self._thread is not None:
            raise PipelineError("this batcher was already started; build a new one")
        self._thread = threading.Thread(target=self._run, name="jetseg-batcher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread; frames still waiting get a PipelineError."""
        self._stop.set()
        with self._arrived:
            self._arrived.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        for slot in self._slots.values():
            while len(slot):
                request = slot.get(0)
                if isinstance(request, _Request):
                    request.error = PipelineError("the batcher stopped before this frame's batch ran")
                    request.done.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.beat = time.monotonic()
            batch = self._collect(0.1)
            if batch:
                self._infer(batch)

    def _collect(self, poll_s: float) -> List[_Request]:
        """Wait for the first frame (up to ``poll_s``), then for the other streams' frames until the batch is
        full, every stream has one, or the oldest has waited ``max_delay_s``; take them in round-robin order."""
        with self._arrived:
            if not self._waiting():
                self._arrived.wait(poll_s)
            ready = self._waiting()
            if not ready:
                return []
            deadline = min(self._slots[s].peek()[1].arrived for s in ready) + self.max_delay_s
            wanted = min(self.max_batch, len(self._order))
            while len(ready) < wanted and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._arrived.wait(left)
                ready = self._waiting()
            taken = [s for s in self._order if s in ready][:self.max_batch]
            self._order = [s for s in self._order if s not in taken] + taken
            return [self._slots[s].get(0) for s in taken]

    def _waiting(self) -> List[str]:
        return [s for s in self._order if len(self._slots[s])]

    def _infer(self, batch: List[_Request]) -> None:
        start = time.monotonic()
        for request in batch:
            self.waited.add(start - request.arrived)
        try:
            tensors = np.concatenate([r.tensor for r in batch])
            extra = {name: np.concatenate([r.extra[name] for r in batch]) for name in batch[0].extra}
            logits = self.runner.infer(tensors, extra) if extra else self.runner.infer(tensors)
        except BaseException as exc:  # every frame of the batch gets the failure; its stream stops with it
            self.error = exc
            for request in batch:
                request.error = exc
                request.done.set()
            return
        model_ms = self.runner.last_inference_ms
        for i, request in enumerate(batch):
            request.logits = logits[i:i + 1]
            request.model_ms = model_ms
            request.batch = len(batch)
            request.done.set()
        self.batches += 1
        self.frames += len(batch)
        self.sizes[len(batch)] = self.sizes.get(len(batch), 0) + 1

    def stats(self) -> Dict[str, Any]:
        """``{"batches", "frames", "mean_batch", "sizes": {n: count}, "max_batch", "max_delay_ms",
        "wait_ms": {mean, p50, ...}}``."""
        return {"batches": self.batches, "frames": self.frames,
                "mean_batch": round(self.frames / self.batches, 3) if self.batches else 0.0,
                "sizes": {str(k): v for k, v in sorted(self.sizes.items())}, "max_batch": self.max_batch,
                "max_delay_ms": round(self.max_delay_s * 1e3, 3), "wait_ms": self.waited.summary_ms()}


class StreamPort(Runner):
    """The runner one stream's pipeline sees: ``infer`` goes through the shared :class:`Batcher`.

    ``last_inference_ms`` is the model time of the batch the frame ran in (the wait for the batch is in
    :attr:`Batcher.waited` and in the stream's ``infer`` stage time).
    """

    def __init__(self, batcher: Batcher, stream: str) -> None:
        shared = batcher.runner
        super().__init__(shared.bundle, 1)
        self.name = shared.name
        self.batcher = batcher
        self.stream = stream
        self.last_batch = 0
        self._model_ms = 0.0

    @property
    def on_cpu(self) -> bool:
        return self.batcher.runner.on_cpu

    def infer(self, batch: np.ndarray, extra_inputs: Optional[Mapping[str, np.ndarray]] = None) -> np.ndarray:
        out = super().infer(batch, extra_inputs)
        self.last_inference_ms = self._model_ms
        return out

    def activate(self) -> StreamPort:
        super().activate()
        return self

    def _activate(self) -> None:
        if not self.batcher.runner.is_active:
            raise PipelineError("stream %r: the shared runner is not active" % self.stream)

    def _infer(self, batch: np.ndarray, extra_inputs: Dict[str, np.ndarray]) -> np.ndarray:
        request = self.batcher.submit(self.stream, batch, extra_inputs)
        while not request.done.wait(0.5):
            if not self.batcher.running:
                raise PipelineError("stream %r: the batcher stopped (%s)" % (self.stream, self.batcher.error
                                                                              or "no error"))
        if request.error is not None:
            raise request.error
        self._model_ms = request.model_ms
        self.last_batch = request.batch
        assert request.logits is not None
        return request.logits

    def describe(self) -> Dict[str, Any]:
        info = self.batcher.runner.describe()
        info.update(stream=self.stream, max_batch=self.batcher.max_batch,
                    max_delay_ms=round(self.batcher.max_delay_s * 1e3, 3))
        return info
