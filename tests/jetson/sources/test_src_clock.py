"""Capture stamps from the source's own clock (jetson/sources/clock.py) and from a paced source's schedule."""
from __future__ import annotations

import time

import pytest

from jetseg.jetson.sources import open_source
from jetseg.jetson.sources.clock import CaptureClock


def test_v4l2_buffer_times_are_used_when_plausible():
    clock = CaptureClock(monotonic_source=True)
    assert clock.stamp(99_990.0, arrived=100.0) == pytest.approx(99.99) and clock.basis == "buffer"
    # a buffer time in the future or far in the past is not CLOCK_MONOTONIC: treated as a stream clock
    assert clock.stamp(200_000.0, arrived=100.5) == pytest.approx(100.5) and clock.basis == "stream"


def test_stream_times_are_mapped_by_the_earliest_arrival():
    clock = CaptureClock()
    assert clock.stamp(1000.0, arrived=50.010) == pytest.approx(50.010)  # first frame anchors: offset 49.01
    # an earlier arrival relative to the stream clock re-anchors: a stamp is never after its arrival
    assert clock.stamp(1033.3, arrived=50.040) == pytest.approx(50.040)  # offset now 49.0067
    # this frame waited 33 ms in a buffer: its stamp says so
    assert clock.stamp(1066.7, arrived=50.1067) == pytest.approx(50.0734) and clock.basis == "stream"
    # the stream clock jumps back (a restarted encoder): the mapping re-anchors instead of stamping the past
    assert clock.stamp(10.0, arrived=60.0) == pytest.approx(60.0)


def test_no_usable_time_means_the_arrival():
    clock = CaptureClock(monotonic_source=True)
    for pos in (None, 0.0, -1.0, float("nan")):
        assert clock.stamp(pos, arrived=7.0) == 7.0 and clock.basis == "arrival"


def test_paced_synthetic_frames_are_stamped_with_their_schedule():
    with open_source("synthetic://ultrasound?frames=8&fps=50&realtime=1&loop=2&width=96&height=64") as src:
        stamps = [f.timestamp for f in src]
    steps = [b - a for a, b in zip(stamps, stamps[1:])]
    # exactly on the schedule, whatever the reads cost (a late reader skips frames: newest wins)
    assert len(stamps) >= 2 and all(s > 0 and abs(s / 0.02 - round(s / 0.02)) < 1e-6 for s in steps)
    assert stamps[-1] <= time.monotonic()
