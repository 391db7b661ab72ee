"""Newest-wins hand-over between threads: the one place where "the newest frame wins" is implemented.

A :class:`Slot` holds at most ``capacity`` items (1: a mailbox). :meth:`Slot.put` never waits: when the slot is
full, the oldest waiting item is dropped and counted. Readers either take items (:meth:`Slot.get`, each item
read once, in order) or look at the newest one without taking it (:meth:`Slot.peek` with a version number,
:meth:`Slot.wait_newer`, for many readers of one value). A live source's grabber thread, the pipeline's
hand-overs for live sources and the per-sink queues all use it.

:class:`Queue` is its counterpart for finite sources: bounded, ``put`` waits for room (backpressure), nothing
is ever dropped.
"""
from __future__ import annotations

import collections
import threading
from typing import Any, Deque, Optional, Tuple


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


END = _Marker("END")  #: returned by ``get`` once the hand-over is closed and drained
EMPTY = _Marker("EMPTY")  #: returned by ``get`` when nothing arrived within the timeout (or on :meth:`wake`)


class _HandOver:
    """Bounded FIFO shared by :class:`Slot` and :class:`Queue`: ``get``, ``close``, ``abort``, ``wake``."""

    def __init__(self, capacity: int) -> None:
        if int(capacity) < 1:
            raise ValueError("capacity must be at least 1, got %r" % capacity)
        self.capacity = int(capacity)
        self._items: Deque[Any] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._closed = False

    def get(self, timeout: Optional[float] = 0.1) -> Any:
        """The oldest waiting item; :data:`END` once closed and drained; :data:`EMPTY` after ``timeout``
        seconds without an item (None: wait until an item, the end or :meth:`wake`)."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            return END if self._closed else EMPTY

    def wait_room(self, timeout: float = 0.1) -> bool:
        """Wait up to ``timeout`` seconds until there is room; False if there still is none."""
        with self._cond:
            if len(self._items) >= self.capacity and not self._closed:
                self._cond.wait(timeout)
            return len(self._items) < self.capacity or self._closed

    def wake(self) -> None:
        """Return waiting readers at once (they get :data:`EMPTY` and can look at their own state)."""
        with self._cond:
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._items.clear()
            self._cond.notify_all()

    def close(self) -> None:
        """No more items: readers get :data:`END` after the waiting ones."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abort(self) -> None:
        """Drop everything waiting and close (no drain); a waiting ``put`` returns."""
        with self._cond:
            self._closed = True
            self._items.clear()
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)


class Slot(_HandOver):
    """Newest wins: ``put`` never waits; when full, the oldest waiting item is dropped and counted.

    Args:
        capacity: the most items waiting at once (1, the default: only the newest item is kept).

    Attributes:
        dropped: items dropped, over the slot's life.
        version: how many items were put, over the slot's life (for :meth:`peek` / :meth:`wait_newer`).
    """

    def __init__(self, capacity: int = 1) -> None:
        super().__init__(capacity)
        self.dropped = 0
        self.version = 0
        self._newest: Any = None

    def put(self, item: Any) -> int:
        """Hand ``item`` over; returns how many unread items were dropped to make room (0 after close)."""
        with self._cond:
            if self._closed:
                return 0
            dropped = 0
            while len(self._items) >= self.capacity:
                self._items.popleft()
                dropped += 1
            self.dropped += dropped
            self.version += 1
            self._newest = item
            self._items.append(item)
            self._cond.notify_all()
            return dropped

    def peek(self) -> Tuple[int, Any]:
        """``(version, newest item put)`` without taking it (``(0, None)`` before the first ``put``)."""
        with self._cond:
            return self.version, self._newest

    def wait_newer(self, version: int, timeout: float) -> bool:
        """Wait until an item newer than ``version`` was put (True), or ``timeout`` / close / :meth:`wake`."""
        with self._cond:
            if self.version <= version and not self._closed:
                self._cond.wait(timeout)
            return self.version > version


class Queue(_HandOver):
    """Backpressure: ``put`` waits for room, so every item arrives, in order (finite sources)."""

    dropped = 0  # a Queue never drops; the same attribute as Slot for the pipeline's reports

    def put(self, item: Any) -> int:
        """Hand ``item`` over, waiting for room; returns 0 (nothing dropped). Returns at once after abort."""
        with self._cond:
            while len(self._items) >= self.capacity and not self._closed:
                self._cond.wait(0.1)
            if self._closed:
                return 0
            self._items.append(item)
            self._cond.notify_all()
            return 0
