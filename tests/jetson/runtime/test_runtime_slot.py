"""The newest-wins Slot (live sources, the pipeline's hand-overs, sink queues) and the backpressure Queue."""
from __future__ import annotations

import threading
import time

import pytest

from jetseg.jetson.frames.slot import EMPTY, END, Queue, Slot


def test_one_item_slot_keeps_the_newest_and_counts_the_overwritten():
    slot = Slot()
    assert slot.get(0.0) is EMPTY
    assert slot.put("a") == 0 and slot.put("b") == 1 and slot.put("c") == 1
    assert slot.dropped == 2 and len(slot) == 1
    assert slot.get(0.0) == "c" and slot.get(0.0) is EMPTY


def test_get_waits_for_a_put_from_another_thread():
    slot = Slot()
    timer = threading.Timer(0.05, slot.put, args=("late",))
    timer.start()
    try:
        assert slot.get(5.0) == "late"
    finally:
        timer.join(5)


def test_wake_returns_a_waiting_reader_without_an_item():
    slot = Slot()
    got = []
    reader = threading.Thread(target=lambda: got.append(slot.get(None)))
    reader.start()
    time.sleep(0.05)
    slot.wake()
    reader.join(5)
    assert not reader.is_alive() and got == [EMPTY]


def test_peek_and_wait_newer_serve_many_readers_of_one_value():
    slot = Slot()
    assert slot.peek() == (0, None)
    slot.put("frame-1")
    version, item = slot.peek()
    assert (version, item) == (1, "frame-1")
    assert slot.peek() == (1, "frame-1")  # peeking does not take
    assert slot.wait_newer(version, 0.01) is False
    threading.Timer(0.05, slot.put, args=("frame-2",)).start()
    assert slot.wait_newer(version, 5.0) is True and slot.peek() == (2, "frame-2")


def test_close_drains_then_ends_and_abort_drops():
    slot = Slot(3)
    for i in range(3):
        slot.put(i)
    slot.close()
    assert slot.put(99) == 0  # ignored once closed
    assert [slot.get(0.0) for _ in range(4)] == [0, 1, 2, END]
    queue = Queue(2)
    queue.put("x")
    queue.abort()
    assert queue.get(0.0) is END and len(queue) == 0


def test_queue_never_drops_and_abort_releases_a_waiting_producer():
    queue = Queue(1)
    assert queue.put("a") == 0 and queue.dropped == 0
    assert queue.wait_room(0.01) is False
    done = threading.Event()
    producer = threading.Thread(target=lambda: (queue.put("b"), done.set()))
    producer.start()
    assert not done.wait(0.1)
    queue.abort()
    assert done.wait(5)
    producer.join(5)
    assert queue.get(0.0) is END


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="capacity must be at least 1, got 0"):
        Slot(0)
