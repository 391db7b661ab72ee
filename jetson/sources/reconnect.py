"""Reconnection with backoff, in the source layer: :class:`Backoff` and the :class:`Reconnecting` wrapper.

The live capture sources (:mod:`jetseg.jetson.sources.live`) reconnect by themselves in their grabber thread.
Any other endless live source (one without a ``reconnects`` counter nor a length) is wrapped in :class:`Reconnecting` by
:func:`self_healing`, so the pipeline above never reopens a source: it only reports what the source says.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, Optional

from jetseg.errors import JetsegError
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.sources.base import Source

log = logging.getLogger("jetseg.sources.reconnect")


class Backoff:
    """Exponential backoff: ``first`` seconds, doubling up to ``largest``; :meth:`reset` after a success."""

    def __init__(self, first: float = 0.5, largest: float = 10.0) -> None:
        if not 0 < first <= largest:
            raise ValueError("backoff must be 0 < first <= largest, got %r and %r" % (first, largest))
        self.first, self.largest = float(first), float(largest)
        self.delay = self.first

    def next(self) -> float:
        """The wait before the next attempt (then the following one doubles)."""
        delay = self.delay
        self.delay = min(self.delay * 2.0, self.largest)
        return delay

    def reset(self) -> None:
        self.delay = self.first


def reconnects_by_itself(source: Source) -> bool:
    """The source reconnects on its own (it keeps an integer ``reconnects`` counter)."""
    return isinstance(getattr(source, "reconnects", None), int)


def has_an_end(source: Source) -> bool:
    """The source has a fixed number of frames (``len()`` works): a recording, or a paced replay of one
    (``synthetic://...?frames=90&realtime=1``, ``file://scan.mp4?realtime=1``). Its end is the end of the run,
    not a lost connection: it is never reopened (``loop=1`` asks a file source to start again by itself)."""
    try:
        len(source)
    except TypeError:
        return False
    return True


def self_healing(source: Source, backoff: float = 0.5, backoff_max: float = 10.0,
                 stall_timeout_s: Optional[float] = 5.0) -> Source:
    """``source`` itself when it is not live, has an end (:func:`has_an_end`) or reconnects by itself, else
    wrapped in :class:`Reconnecting`."""
    if not source.live or has_an_end(source) or reconnects_by_itself(source):
        return source
    return Reconnecting(source, backoff, backoff_max, stall_timeout_s)


class Reconnecting(Source):
    """A live source that is closed and reopened with backoff when it fails, ends or stalls.

    ``read()`` returns None while the source is away. Attributes as for the live capture sources:
    ``state`` (running, reconnecting), ``reconnects`` (successful reopens), ``failures``, ``last_error``.

    Args:
        inner: the live source to keep open.
        backoff, backoff_max: first and largest wait between reopen attempts (seconds, doubling).
        stall_timeout_s: no frame for this long counts as a loss (None: never).
    """

    live = True

    def __init__(self, inner: Source, backoff: float = 0.5, backoff_max: float = 10.0,
                 stall_timeout_s: Optional[float] = 5.0) -> None:
        super().__init__(inner.uri)
        self.inner = inner
        self.backoff = Backoff(backoff, backoff_max)
        self.stall_timeout_s = stall_timeout_s
        self.state = "closed"
        self.reconnects = 0
        self.failures = 0
        self.last_error = ""
        self._retry_at: Optional[float] = None  # set while the inner source is away
        self._last_frame = 0.0
        self._dropped_before = 0  # drops of earlier connections of the inner source

    @property
    def fps(self) -> Optional[float]:
        return self.inner.fps

    def _open(self) -> None:
        try:
            self.inner.open()
        except (JetsegError, OSError) as exc:
            self._lost("cannot open: %s" % exc)
            return
        self.state = "running"
        self._last_frame = time.monotonic()

    def _close(self) -> None:
        self.inner.close()
        self.state = "closed"

    def _lost(self, why: str) -> None:
        delay = self.backoff.next()
        self.failures += 1
        self.last_error = why
        self.state = "reconnecting"
        self._retry_at = time.monotonic() + delay
        log.warning("source %s lost (%s); reopening in %.1f s", self.uri, why, delay,
                    extra={"fields": {"event": "source_lost", "reason": why}})

    def _reopen(self, timeout: Optional[float]) -> None:
        assert self._retry_at is not None
        delay = self._retry_at - time.monotonic()
        if delay > 0:
            time.sleep(min(delay, 0.25 if timeout is None else max(0.0, min(timeout, 0.25))))
            return
        self._dropped_before += self.inner.dropped
        self.inner.close()
        self.inner.ended = False
        try:
            self.inner.open()
        except (JetsegError, OSError) as exc:
            self._lost("reopen failed: %s" % exc)
            return
        self._retry_at = None
        self.reconnects += 1
        self.backoff.reset()
        self._last_frame = time.monotonic()
        self.state = "running"
        log.info("source %s reopened (%d)", self.uri, self.reconnects,
                 extra={"fields": {"event": "source_reconnected"}})

    def _read(self, timeout: Optional[float]) -> Optional[Frame]:
        if self._retry_at is not None:
            self._reopen(timeout)
            return None
        try:
            frame = self.inner.read(timeout)
        except (JetsegError, OSError) as exc:
            self._lost(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return None
        finally:
            self.dropped = self._dropped_before + self.inner.dropped
        if frame is not None:
            self._last_frame = time.monotonic()
            return frame
        if self.inner.ended:
            self._lost("stream ended")
        elif self.stall_timeout_s is not None and time.monotonic() - self._last_frame > self.stall_timeout_s:
            self._lost("no frame for %.1f s" % (time.monotonic() - self._last_frame))
        return None

    def stats(self) -> Dict[str, Any]:
        out = super().stats()
        out.update({"state": self.state, "reconnects": self.reconnects, "failures": self.failures,
                    "last_error": self.last_error})
        return out
