"""The pipeline's view of a source: :class:`SourceReader` reads frames and reports the source's state.

Reconnection is the source layer's job: a live source either reconnects by itself (the live capture sources)
or is wrapped in :class:`~jetseg.jetson.sources.reconnect.Reconnecting` here. The reader only mirrors what the
source says into the metrics: ``reconnecting`` (at once when the source says so, or after ``stall_timeout_s``
without a frame), ``running`` again at the next frame, reconnections and source-side drops.
"""
from __future__ import annotations

import logging
import time
from typing import Optional, Union

from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.frames.metrics import Metrics
from jetseg.jetson.frames.slot import END
from jetseg.jetson.pipeline.frozen import DEFAULT_AFTER_S, FrozenInput
from jetseg.jetson.sources.base import Source
from jetseg.jetson.sources.reconnect import self_healing

log = logging.getLogger("jetseg.pipeline")

ReadResult = Union[Frame, None, object]


class SourceReader:
    """Reads frames from a :class:`Source` for a pipeline; outlives pipelines (a config reload reuses it).

    Finite sources are read to their end. With ``realtime``, a file or synthetic source is paced at its
    native frame rate (``fps`` when it has none) and treated as live.

    Counting: the source's ``delivered`` is the one count of frames read; the reader derives from it
    :attr:`read_count` (frames read through this reader) and each frame's index, ``first_index +`` the
    frames read before it, so that indices keep increasing across reconnections and pipelines. A pipeline's
    own count (:attr:`ReadFrames.captured`) is derived from :attr:`read_count` in turn.

    Args:
        source: the source (a live one without its own reconnection is wrapped in ``Reconnecting`` with
            ``reconnect_initial_s`` doubling to ``reconnect_max_s``).
        realtime, fps: pace a finite source (see above).
        stall_timeout_s: a live source without a frame for this long is reported as reconnecting.
        frozen_after_s: a live source that repeats the same picture for this long is reported as frozen
            (:mod:`~jetseg.jetson.pipeline.frozen`; each frame then carries ``meta["frozen_s"]``); 0: never.
        metrics: where the source state, drops, reconnections and a frozen input go.

    ``first_index`` is the index of the first frame: :meth:`continue_after` sets it, so that a reader built by
    a config reload (or by a restart after a failed one) continues the numbering of the one before it (mask
    files and JSON lines are never overwritten).
    """

    def __init__(self, source: Source, realtime: bool = False, fps: Optional[float] = None,
                 stall_timeout_s: float = 5.0, reconnect_initial_s: float = 0.5, reconnect_max_s: float = 10.0,
                 metrics: Optional[Metrics] = None, frozen_after_s: float = DEFAULT_AFTER_S) -> None:
        self.source = self_healing(source, reconnect_initial_s, reconnect_max_s, stall_timeout_s)
        self.realtime = bool(realtime)
        self._fps = fps
        self.stall_timeout_s = float(stall_timeout_s)
        self.metrics = metrics
        self.frozen = FrozenInput(frozen_after_s)
        self.state = "opening"
        self.first_index = 0
        self._delivered_before = self.source.delivered  # frames the source delivered to someone else
        self._last_frame = 0.0
        self._seen_dropped = 0
        self._seen_captured = 0
        self._seen_reconnects = 0
        self._pace_start: Optional[float] = None
        self._paced_before = 0  # read_count when pacing (re)started

    @property
    def read_count(self) -> int:
        """Frames read through this reader, over every pipeline that used it (from the source's count)."""
        return self.source.delivered - self._delivered_before

    @property
    def next_index(self) -> int:
        """The index the next frame gets (one past the last one handed out)."""
        return self.first_index + self.read_count

    @property
    def live(self) -> bool:
        """True when frames may be dropped (a live source, or a paced one)."""
        return bool(self.source.live or self.realtime)

    @property
    def fps(self) -> Optional[float]:
        native = self.source.fps if self.source.is_open else None
        return native or self._fps or (30.0 if self.realtime else None)

    def open(self) -> None:
        """Open the source (a live one that cannot connect yet keeps trying by itself)."""
        self.source.open()
        self._seen_dropped = self.source.dropped
        self._seen_reconnects = self._source_reconnects()
        self._seen_captured = self._source_captured()
        self._set_state("reconnecting" if self._source_says_reconnecting() else "running", self._note())
        self._last_frame = time.monotonic()

    def _set_state(self, state: str, note: str = "") -> None:
        self.state = state
        if self.metrics is not None:
            self.metrics.set_source_state(state, note)

    def _source_reconnects(self) -> int:
        value = getattr(self.source, "reconnects", 0)
        return value if isinstance(value, int) else 0

    def _source_captured(self) -> int:
        """Frames the source captured: its ``captured`` counter (live capture), else delivered + dropped."""
        value = getattr(self.source, "captured", None)
        return value if isinstance(value, int) else self.source.delivered + self.source.dropped

    def _source_says_reconnecting(self) -> bool:
        return getattr(self.source, "state", None) == "reconnecting"

    def _note(self) -> str:
        return str(getattr(self.source, "last_error", "") or "")

    def read(self) -> ReadResult:
        """The next frame, None if nothing arrived yet, or :data:`~jetseg.jetson.frames.slot.END` when a finite
        source is exhausted. Waits at most about 0.2 s."""
        if self.state in ("ended", "stopped"):
            return END
        live = self.source.live
        if self.realtime and not live and not self._due():
            return None
        frame = self.source.read(timeout=0.2)
        self._mirror_source()
        if frame is None:
            return self._nothing(live)
        self._last_frame = time.monotonic()
        frame.index = self.next_index - 1  # the source counted this frame already
        if self.live:
            self._check_frozen(frame)
        if live and self.state != "running":
            self._set_state("running")
        return frame

    def _check_frozen(self, frame: Frame) -> None:
        held = self.frozen.see(frame.image, frame.timestamp)
        was = self.metrics.input_frozen_s if self.metrics is not None else None
        if held is not None:
            frame.meta["frozen_s"] = round(held, 3)
            if was is None:
                log.warning("source %s: the same picture for %.1f s; the input is frozen (not live)",
                            self.source.uri, held, extra={"fields": {"event": "input_frozen"}})
        elif was is not None:
            log.info("source %s: the picture changes again; live", self.source.uri,
                     extra={"fields": {"event": "input_live"}})
        if self.metrics is not None:
            self.metrics.set_frozen(held)

    def _nothing(self, live: bool) -> ReadResult:
        if self.source.ended:  # a finite source, paced like a scanner or not, ends the run at its end
            self._set_state("ended")
            return END
        if not live:
            return None
        idle = time.monotonic() - self._last_frame
        if self.state == "running" and (self._source_says_reconnecting() or idle > self.stall_timeout_s):
            note = self._note() or "no frame for %.1f s" % idle
            log.warning("source %s: no frame for %.1f s (%s); it is reconnecting", self.source.uri, idle, note,
                        extra={"fields": {"event": "source_lost", "reason": note}})
            self._set_state("reconnecting", note)
        return None

    def _due(self) -> bool:
        """Pacing of a realtime finite source: True when the next frame is due (waits up to 50 ms for it)."""
        now = time.monotonic()
        if self._pace_start is None:
            self._pace_start, self._paced_before = now, self.read_count
        due = self._pace_start + (self.read_count - self._paced_before) / float(self.fps or 30.0)
        if due > now:
            time.sleep(min(due - now, 0.05))
        return due <= time.monotonic()

    def _mirror_source(self) -> None:
        """Count the source's captured frames, its own drops and its reconnections in the metrics."""
        dropped, reconnects, captured = self.source.dropped, self._source_reconnects(), self._source_captured()
        if self.metrics is not None:
            self.metrics.source_captured(captured - self._seen_captured)
            if dropped > self._seen_dropped:
                self.metrics.drop("source", dropped - self._seen_dropped)
            for _ in range(reconnects - self._seen_reconnects):
                self.metrics.reconnected()
        self._seen_dropped, self._seen_reconnects, self._seen_captured = dropped, reconnects, captured

    def continue_after(self, previous: SourceReader) -> None:
        """Number frames on from ``previous`` (a reload's new reader, set once the old pipeline has stopped)."""
        self.first_index = previous.next_index - self.read_count

    def stop(self) -> None:
        """The pipeline stopped reading (the source stays open for a following pipeline)."""
        if self.state not in ("ended", "reconnecting"):
            self._set_state("stopped")

    def resume(self) -> None:
        """Continue reading after :meth:`stop` (a new pipeline after a config reload reuses the reader)."""
        if self.state == "stopped":
            if not self.source.is_open:
                self.source.open()
            self._set_state("running")
            self._last_frame = time.monotonic()
            self._pace_start = None  # pace from now on, not catch up the time the reload took
